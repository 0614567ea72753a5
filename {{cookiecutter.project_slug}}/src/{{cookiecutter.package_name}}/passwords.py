{%- set primary, secondary = ("Argon2Hasher", "BcryptHasher") if cookiecutter.password_hashing == "argon2" else ("BcryptHasher", "Argon2Hasher") -%}
{%- set other = "bcrypt" if cookiecutter.password_hashing == "argon2" else "argon2" -%}
"""Password hashing with pwdlib.

New hashes use {{ cookiecutter.password_hashing }}. Hashes made with {{ other }} still verify, and are
replaced by a {{ cookiecutter.password_hashing }} hash at the next successful login.
"""

import secrets
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

#: The first hasher makes new hashes; the others only verify existing ones.
password_hash = PasswordHash(({{ primary }}(), {{ secondary }}()))


def hash_password(password: str) -> str:
    return password_hash.hash(password)


def verify_password(password: str, hashed: str | None) -> tuple[bool, str | None]:
    """Check ``password`` against ``hashed``.

    Returns whether it matches and, when it does and the hash is outdated, a new
    hash to store. ``hashed=None`` (no such user) costs the same as a real check,
    so response times do not tell which usernames exist.
    """
    if len(password.encode()) > MAX_BYTES:
        return False, None
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
