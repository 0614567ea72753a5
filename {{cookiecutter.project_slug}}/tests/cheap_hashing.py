"""Password hashing at its lowest cost: the same algorithms, in the same order, as
production. For tests about the API rather than about hashing (the template's own
checks use it too)."""

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

CHEAPEST = {
    Argon2Hasher: Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1),
    BcryptHasher: BcryptHasher(rounds=4),
}


def cheap(production: PasswordHash) -> PasswordHash:
    """``production``'s hashers at their lowest cost."""
    return PasswordHash(tuple(CHEAPEST[type(hasher)] for hasher in production.hashers))
