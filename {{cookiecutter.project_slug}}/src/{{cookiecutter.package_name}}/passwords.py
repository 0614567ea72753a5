{%- set argon2, bcrypt = "Argon2Hasher(parallelism=1)", "BcryptHasher()" -%}
{%- set primary, secondary = (argon2, bcrypt) if cookiecutter.password_hashing == "argon2" else (bcrypt, argon2) -%}
{%- set other = "bcrypt" if cookiecutter.password_hashing == "argon2" else "argon2" -%}
"""Password hashing with pwdlib.

New hashes use {{ cookiecutter.password_hashing }}. Hashes made with {{ other }} still verify, and are
replaced by a {{ cookiecutter.password_hashing }} hash at the next successful login.
"""

import os
import secrets
import threading
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
#: HASHING_SLOTS alone decides how many cores password checks may take.
password_hash = PasswordHash(({{ primary }}, {{ secondary }}))

#: Hashing is slow on purpose. At most this many run at once in a process, so that a
#: burst of logins leaves a core to every other request (the rest wait their turn).
HASHING_SLOTS = threading.BoundedSemaphore(max(1, (os.cpu_count() or 1) - 1))


def hash_password(password: str) -> str:
    with HASHING_SLOTS:
        return password_hash.hash(password)


def verify_password(password: str, hashed: str | None) -> tuple[bool, str | None]:
    """Check ``password`` against ``hashed``.

    Returns whether it matches and, when it does and the hash is outdated, a new
    hash to store. ``hashed=None`` (no such user) costs the same as a real check,
    so response times do not tell which usernames exist.
    """
    if len(password.encode()) > MAX_BYTES:
        return False, None
    with HASHING_SLOTS:
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
