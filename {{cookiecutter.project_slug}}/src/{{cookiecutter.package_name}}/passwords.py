{%- set argon2, bcrypt = "Argon2Hasher(parallelism=1)", "BcryptHasher()" -%}
{%- set primary, secondary = (argon2, bcrypt) if cookiecutter.password_hashing == "argon2" else (bcrypt, argon2) -%}
{%- set other = "bcrypt" if cookiecutter.password_hashing == "argon2" else "argon2" -%}
"""Password hashing with pwdlib.

New hashes use {{ cookiecutter.password_hashing }}. Hashes made with {{ other }} still verify, and are
replaced by a {{ cookiecutter.password_hashing }} hash at the next successful login.
"""

import contextlib
import os
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cache

from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

MIN_LENGTH = 8
{%- if cookiecutter.password_hashing == "bcrypt" %}
#: bcrypt only reads the first 72 bytes: longer passwords are refused, never truncated.
MAX_BYTES = 72
{%- else %}
#: Longer passwords are refused before any hashing, so they cannot be used to burn CPU.
MAX_BYTES = 4096
{%- endif %}

#: The first hasher makes new hashes; the others only verify existing ones. Argon2
#: runs on one thread per hash (parallelism=1, as OWASP recommends), so that
#: HASHERS alone decides how many cores password checks may take.
password_hash = PasswordHash(({{ primary }}, {{ secondary }}))


def _lower_priority() -> None:
    """Let every other thread of the machine go first (where the OS allows it)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


#: Hashing is slow on purpose. It runs on these threads only: at most one fewer than
#: the cores, at low priority, so that a burst of logins never stalls other requests
#: (logins queue for a hasher instead).
HASHERS = ThreadPoolExecutor(
    max_workers=max(1, (os.cpu_count() or 1) - 1),
    thread_name_prefix="password-hashing",
    initializer=_lower_priority,
)


def hash_password(password: str) -> str:
    return HASHERS.submit(password_hash.hash, password).result()


def verify_password(password: str, hashed: str | None) -> tuple[bool, str | None]:
    """Check ``password`` against ``hashed``.

    Returns whether it matches and, when it does and the hash is outdated, a new
    hash to store. ``hashed=None`` (no such user) costs the same as a real check,
    so response times do not tell which usernames exist.
    """
    if len(password.encode()) > MAX_BYTES:
        return False, None
    return HASHERS.submit(_verify, password, hashed).result()


def _verify(password: str, hashed: str | None) -> tuple[bool, str | None]:
    if hashed is None:
        password_hash.verify(password, _dummy_hash(password_hash))
        return False, None
    try:
        return password_hash.verify_and_update(password, hashed)
    except (UnknownHashError, ValueError):
        # An unreadable stored hash, or bcrypt refusing a password over 72 bytes.
        return False, None


@cache
def _dummy_hash(hasher: PasswordHash) -> str:
    return hasher.hash(secrets.token_urlsafe(16))
