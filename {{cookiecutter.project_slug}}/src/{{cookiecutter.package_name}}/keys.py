"""The keys that sign access tokens, the ids tokens name them by, and the public
keys other services verify them with.

- HMAC (HS256/384/512) signs with SECRET_KEY: nothing is published, and only
  holders of the secret can verify.
- RS256, ES256{% if cookiecutter.jwt_library != "python-jose" %} and EdDSA{% endif %} sign with the private key in PRIVATE_KEY or
  PRIVATE_KEY_FILE (PEM) when one is given: a key kept in a secret manager.
- Otherwise they sign with keys the service makes itself and keeps in the
  database, the first at start-up, the next with ``rotate-keys``. Their private
  halves are encrypted there (AES-256-GCM, with a key derived from SECRET_KEY,
  which is never stored). The newest key signs, read at each login, so a new key
  signs at once on every worker; a retired key verifies until every token it
  signed has expired, then it leaves the published set and the database.

Public keys are published as a JWK set (RFC 7517), each named by its RFC 7638
thumbprint, so that other services verify tokens without being able to make them.
"""

import base64
import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec{% if cookiecutter.jwt_library != "python-jose" %}, ed25519{% endif %}, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_der_private_key,
    load_pem_private_key,
    load_pem_public_key,
)
from sqlalchemy import Select, delete, or_, select, update
from sqlalchemy.orm import Session

{{ imports(auth_models="StoredKey", config="derived_key, settings", database="SessionLocal, lock_database, utcnow") }}

#: The kind of private key each asymmetric algorithm signs with.
KEY_TYPES: dict[str, type] = {
    "RS256": rsa.RSAPrivateKey,
    "ES256": ec.EllipticCurvePrivateKey,
{%- if cookiecutter.jwt_library != "python-jose" %}
    "EdDSA": ed25519.Ed25519PrivateKey,
{%- endif %}
}
#: RSA keys shorter than this are refused (RFC 7518, section 3.3); the service
#: makes keys of this size.
MIN_RSA_BITS = 2048
#: A token naming a key this process does not know makes it read the stored keys
#: again (a key made since by another process), at most this often (seconds).
RELOAD_INTERVAL = 1.0
#: A retired key verifies this long after the tokens it signed before retirement
#: have expired: logins under way may still have signed with it.
RETIREMENT_GRACE = timedelta(minutes=1)
#: What the key that encrypts stored private keys is derived for (HKDF's info).
ENCRYPTION_PURPOSE = b"signing keys at rest"
NONCE_BYTES = 12
_UNDECRYPTABLE = (
    "the newest stored signing key was encrypted with another SECRET_KEY: set that "
    "SECRET_KEY again, or sign with a new key: python -m {{ cookiecutter.package_name }} rotate-keys"
)


class SigningKeyError(ValueError):
    """No key can sign: the configured private key cannot sign with ALGORITHM, or
    the stored one cannot be decrypted (the message says why)."""


@dataclass(frozen=True, eq=False)
class SigningKey:
    """What signs tokens (``private``: None for a stored key that no longer signs),
    what verifies them (``public``), and the ``kid`` and ``algorithm`` they carry;
    ``jwk`` is the published public key (none for HMAC). A stored key verifies
    until ``verifying_time()`` after ``retired_at``."""

    kid: str
    algorithm: str
    private: Any = field(repr=False)
    public: Any = field(repr=False)
    jwk: dict[str, str] | None
    retired_at: datetime | None = None


@dataclass(frozen=True, eq=False)
class KeyRing:
    """The stored keys as this process last read them."""

    signing: SigningKey | None
    verifying: dict[str, SigningKey]


#: Stored keys in the order they were made, newest first.
NEWEST_FIRST = (StoredKey.created_at.desc(), StoredKey.kid)

_ring = KeyRing(None, {})
_read_at = -RELOAD_INTERVAL


def keys_are_stored() -> bool:
    """Whether the service signs with keys of its own, kept in the database."""
    return not settings.algorithm.startswith("HS") and (
        settings.private_key is None and settings.private_key_file is None
    )


def signing_key(session: Session) -> SigningKey:
    """The key that signs new tokens. A stored key is the newest one, looked up in
    ``session`` each time, so that a new key signs at once, on every worker."""
    if not keys_are_stored():
        return configured_key()
    newest = session.scalar(_newest_signing(StoredKey.kid))
    ring = _ring
    if ring.signing is None or ring.signing.kid != newest:
        ring = _read_keys(session)
    if ring.signing is None:
        raise SigningKeyError(
            "no signing key is stored: run `python -m {{ cookiecutter.package_name }} rotate-keys`"
        )
    return ring.signing


def find_key(kid: str) -> SigningKey | None:
    """The key that verifies tokens naming ``kid``, if it still may."""
    if not keys_are_stored():
        key = configured_key()
        return key if key.kid == kid else None
    key = _ring.verifying.get(kid)
    if key is None or key.retired_at is None:
        return key
    return key if key.retired_at > utcnow() - verifying_time() else None


def key_version() -> object:
    """Changes whenever the keys that verify tokens change."""
    return _ring if keys_are_stored() else configured_key()


def reload_keys() -> bool:
    """Read the stored keys again, unless that was done less than RELOAD_INTERVAL
    ago; whether they were read."""
    if not keys_are_stored() or time.monotonic() - _read_at < RELOAD_INTERVAL:
        return False
    with SessionLocal() as session:
        _read_keys(session)
    return True


def public_keys(session: Session) -> list[dict[str, str]]:
    """The JWK set's keys: the public half of every key that verifies tokens."""
    if not keys_are_stored():
        jwk = configured_key().jwk
        return [jwk] if jwk else []
    rows = session.execute(
        select(StoredKey.algorithm, StoredKey.public_key)
        .where(_verifies())
        .order_by(*NEWEST_FIRST)
    )
    return [
        _published(load_pem_public_key(row.public_key.encode()), row.algorithm)
        for row in rows
    ]


def prepare_signing_key() -> None:
    """Check the configured key, or make sure a stored key of ALGORITHM signs:
    the first one is made here (under the migration lock, so workers and replicas
    starting at once make one between them). Raises SigningKeyError."""
    if not keys_are_stored():
        configured_key()
        return
    with SessionLocal.begin() as session:
        lock_database(session.connection())
        newest = session.scalar(_newest_signing(StoredKey))
        if newest is None or newest.algorithm != settings.algorithm:
            _add_key(session)
        elif not _can_decrypt(newest):
            if settings.environment == "production":
                raise SigningKeyError(_UNDECRYPTABLE)
            # A new SECRET_KEY (without one, a random one at each start): a new key.
            _add_key(session)
    with SessionLocal() as session:
        _read_keys(session)


def rotate_keys() -> SigningKey:
    """A new stored key that signs from now on; the others are retired (they verify
    until every token they signed has expired). Raises SigningKeyError where keys
    are not stored."""
    if settings.algorithm.startswith("HS"):
        raise SigningKeyError(
            f"ALGORITHM {settings.algorithm} signs with SECRET_KEY: a new SECRET_KEY "
            "is a new key (and ends every access token)"
        )
    if not keys_are_stored():
        raise SigningKeyError(
            "the signing key comes from PRIVATE_KEY or PRIVATE_KEY_FILE: rotate it "
            "where it is kept"
        )
    with SessionLocal.begin() as session:
        lock_database(session.connection())
        return _add_key(session)


def forget_retired_keys(session: Session) -> int:
    """Delete the stored keys that no unexpired token can carry; how many went."""
    return session.execute(
        delete(StoredKey).where(StoredKey.retired_at <= utcnow() - verifying_time())
    ).rowcount


def configured_key() -> SigningKey:
    """The signing key the settings describe (read once per distinct setting):
    SECRET_KEY, or PRIVATE_KEY(_FILE)."""
    if settings.algorithm.startswith("HS"):
        return _hmac_key(settings.secret_key.get_secret_value(), settings.algorithm)
    return _asymmetric_key(settings.algorithm, _private_pem())


def verifying_time() -> timedelta:
    """How long a retired key verifies: as long as a token lives, and a little
    more for logins under way when it was retired (and for clocks that differ)."""
    return timedelta(minutes=settings.access_token_expire_minutes) + RETIREMENT_GRACE


def _newest_signing(*columns: Any) -> Select[Any]:
    """The key that signs: the newest that is not retired."""
    return (
        select(*columns)
        .where(StoredKey.retired_at.is_(None))
        .order_by(*NEWEST_FIRST)
        .limit(1)
    )


def _verifies() -> Any:
    """Stored keys that verify: those that sign, and those retired too recently
    for every token they signed to have expired."""
    return or_(
        StoredKey.retired_at.is_(None),
        StoredKey.retired_at > utcnow() - verifying_time(),
    )


def _read_keys(session: Session) -> KeyRing:
    """Read the stored keys that verify into this process's ring; the newest one
    that is not retired signs (decrypted once, then kept)."""
    global _ring, _read_at
    rows = session.scalars(
        select(StoredKey).where(_verifies()).order_by(*NEWEST_FIRST)
    ).all()
    known = _ring.verifying
    signing = None
    verifying = {}
    for row in rows:
        key = known.get(row.kid)
        if key is None or key.retired_at != row.retired_at:
            key = _stored_key(row, private=False)
        if signing is None and row.retired_at is None:
            if key.private is None:
                key = _stored_key(row, private=True)
            signing = key
        verifying[row.kid] = key
    unchanged = signing is _ring.signing and verifying.keys() == known.keys()
    if not unchanged or any(key is not known[kid] for kid, key in verifying.items()):
        _ring = KeyRing(signing, verifying)
    _read_at = time.monotonic()
    return _ring


def _add_key(session: Session) -> SigningKey:
    """Make a key for ALGORITHM, store it encrypted, and retire the others."""
    algorithm = settings.algorithm
    private = _new_private_key(algorithm)
    key = _key_pair(private, algorithm)
    der = private.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    nonce = os.urandom(NONCE_BYTES)
    encrypted = AESGCM(_encryption_key()).encrypt(nonce, der, key.kid.encode())
    session.execute(
        update(StoredKey)
        .where(StoredKey.retired_at.is_(None))
        .values(retired_at=utcnow())
    )
    session.add(
        StoredKey(
            kid=key.kid,
            algorithm=algorithm,
            public_key=key.public.public_bytes(
                Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
            ).decode(),
            encrypted_private_key=nonce + encrypted,
        )
    )
    return key


def _new_private_key(algorithm: str) -> Any:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS)
{%- if cookiecutter.jwt_library != "python-jose" %}
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
{%- endif %}
    return ec.generate_private_key(ec.SECP256R1())


def _stored_key(row: StoredKey, *, private: bool) -> SigningKey:
    """A stored key as it verifies, or (``private``) decrypted to sign too."""
    public = load_pem_public_key(row.public_key.encode())
    return SigningKey(
        kid=row.kid,
        algorithm=row.algorithm,
        private=_decrypt(row) if private else None,
        public=public,
        jwk=_published(public, row.algorithm),
        retired_at=row.retired_at,
    )


def _decrypt(row: StoredKey) -> Any:
    nonce = row.encrypted_private_key[:NONCE_BYTES]
    encrypted = row.encrypted_private_key[NONCE_BYTES:]
    try:
        der = AESGCM(_encryption_key()).decrypt(nonce, encrypted, row.kid.encode())
    except InvalidTag:
        raise SigningKeyError(_UNDECRYPTABLE) from None
    # The cipher proved it is the key made here: RSA's slow consistency checks
    # would add nothing.
    return load_der_private_key(der, password=None, unsafe_skip_rsa_key_validation=True)


def _can_decrypt(row: StoredKey) -> bool:
    try:
        _decrypt(row)
    except SigningKeyError:
        return False
    return True


def _encryption_key() -> bytes:
    """The AES-256 key stored private keys are encrypted with."""
    return derived_key(ENCRYPTION_PURPOSE)


@lru_cache(maxsize=4)
def _hmac_key(secret: str, algorithm: str) -> SigningKey:
    # A one-way digest names the key without telling anything about it.
    name = f"access token key id, {algorithm}".encode()
    digest = hmac.new(secret.encode(), name, hashlib.sha256).digest()
    kid = base64.urlsafe_b64encode(digest[:12]).decode()
    return SigningKey(kid, algorithm, private=secret, public=secret, jwk=None)


def _private_pem() -> str:
    if settings.private_key is not None:
        pem = settings.private_key.get_secret_value()
        # A PEM kept on one line, its line breaks written as \n (as some secret
        # stores and orchestrators keep it).
        return pem if "\n" in pem else pem.replace("\\n", "\n")
    if settings.private_key_file is not None:
        return _read(settings.private_key_file)
    raise SigningKeyError(
        f"ALGORITHM {settings.algorithm} signs with a private key: "
        "set PRIVATE_KEY (PEM) or PRIVATE_KEY_FILE"
    )


@lru_cache(maxsize=4)
def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii")
    except OSError as error:
        message = f"PRIVATE_KEY_FILE cannot be read: {error.strerror}"
        raise SigningKeyError(message) from None
    except UnicodeDecodeError:
        raise SigningKeyError("PRIVATE_KEY_FILE does not hold a PEM key") from None


@lru_cache(maxsize=4)
def _asymmetric_key(algorithm: str, pem: str) -> SigningKey:
    try:
        private = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        message = "the private key is not an unencrypted PEM private key"
        raise SigningKeyError(message) from None
    if not isinstance(private, KEY_TYPES[algorithm]):
        raise SigningKeyError(f"the private key is not a key for {algorithm}")
    if isinstance(private, rsa.RSAPrivateKey) and private.key_size < MIN_RSA_BITS:
        raise SigningKeyError(f"RSA keys need at least {MIN_RSA_BITS} bits")
    if isinstance(private, ec.EllipticCurvePrivateKey) and not isinstance(
        private.curve, ec.SECP256R1
    ):
        raise SigningKeyError("ES256 signs with a P-256 key")
    return _key_pair(private, algorithm)


def _key_pair(private: Any, algorithm: str) -> SigningKey:
    public = private.public_key()
    jwk = _published(public, algorithm)
    return SigningKey(jwk["kid"], algorithm, private, public, jwk)


def _published(public: Any, algorithm: str) -> dict[str, str]:
    """``public`` as it is published: its JWK, named by its thumbprint, for
    signatures with ``algorithm``."""
    jwk = _public_jwk(public)
    return {**jwk, "kid": _thumbprint(jwk), "use": "sig", "alg": algorithm}


def _public_jwk(public: Any) -> dict[str, str]:
    """The members of ``public`` as a JWK (RFC 7518, section 6; RFC 8037)."""
    if isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()
        return {"kty": "RSA", "n": _b64_int(numbers.n), "e": _b64_int(numbers.e)}
{%- if cookiecutter.jwt_library != "python-jose" %}
    if isinstance(public, ed25519.Ed25519PublicKey):
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64(public.public_bytes_raw())}
{%- endif %}
    numbers = public.public_numbers()  # a P-256 key: the only kind left
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
    }


def _thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638: SHA-256 of the required members, sorted, without spaces."""
    canonical = json.dumps(jwk, sort_keys=True, separators=(",", ":"))
    return _b64(hashlib.sha256(canonical.encode()).digest())


def _b64_int(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
