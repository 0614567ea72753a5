{%- set argon2, bcrypt = "Argon2Hasher(parallelism=1)", "BcryptHasher()" -%}
{%- set primary, secondary = (argon2, bcrypt) if cookiecutter.password_hashing == "argon2" else (bcrypt, argon2) -%}
{%- set other = "bcrypt" if cookiecutter.password_hashing == "argon2" else "argon2" -%}
"""Password hashing with pwdlib.

New hashes use {{ cookiecutter.password_hashing }}. Hashes made with {{ other }} still verify, and are
replaced by a {{ cookiecutter.password_hashing }} hash at the next successful login.
"""

import asyncio
import contextlib
import os
import secrets
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from typing import TypeVar

from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

T = TypeVar("T")

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
#: (logins queue for a hasher instead, without holding a thread of their own).
HASHERS = ThreadPoolExecutor(
    max_workers=max(1, (os.cpu_count() or 1) - 1),
    thread_name_prefix="password-hashing",
    initializer=_lower_priority,
)
#: Hashes running or waiting for a hasher, per process; beyond it, HashingBusyError.
MAX_PENDING = 32
_pending = threading.BoundedSemaphore(MAX_PENDING)


class HashingBusyError(Exception):
    """Too many password checks are waiting already; try again in a moment."""


def normalize(password: str) -> str:
    """The password as hashed: Unicode NFKC (NIST SP 800-63B), so that it matches
    however the keyboard composed its characters."""
    return unicodedata.normalize("NFKC", password)


def too_long(password: str) -> bool:
    return len(normalize(password).encode()) > MAX_BYTES


async def hash_password(password: str) -> str:
    return await _hashed(password_hash.hash, normalize(password))


def hash_password_blocking(password: str) -> str:
    """hash_password for start-up and the command line, which have a thread to
    spare: waits for the hash on this one."""
    return HASHERS.submit(password_hash.hash, normalize(password)).result()


async def verify_password(password: str, hashed: str | None) -> tuple[bool, str | None]:
    """Check ``password`` against ``hashed``.

    Returns whether it matches and, when it does and the hash is outdated, a new
    hash to store. ``hashed=None`` (no such user) costs the same as a real check,
    so response times do not tell which usernames exist.
    """
    if too_long(password):
        return False, None
    return await _hashed(_verify, password, hashed)


async def _hashed(work: Callable[..., T], *arguments: str | None) -> T:
    """Run ``work`` on a hasher; the caller waits without holding a thread."""
    if not _pending.acquire(blocking=False):
        raise HashingBusyError
    future: Future[T] = HASHERS.submit(work, *arguments)
    future.add_done_callback(lambda _: _pending.release())
    return await asyncio.wrap_future(future)


def _verify(password: str, hashed: str | None) -> tuple[bool, str | None]:
    normalized = normalize(password)
    # Hashes made before passwords were normalised hold the password as typed: one
    # more check for those (and the same for unknown users), then an upgrade.
    candidates = [normalized] if normalized == password else [normalized, password]
    if hashed is None:
        for candidate in candidates:
            password_hash.verify(candidate, _dummy_hash(password_hash))
        return False, None
    for candidate in candidates:
        try:
            valid, new_hash = password_hash.verify_and_update(candidate, hashed)
        except (UnknownHashError, ValueError):
            # An unreadable stored hash, or bcrypt refusing a password over 72 bytes.
            return False, None
        if valid:
            if candidate != normalized:
                new_hash = password_hash.hash(normalized)
            return True, new_hash
    return False, None


@cache
def _dummy_hash(hasher: PasswordHash) -> str:
    return hasher.hash(secrets.token_urlsafe(16))
