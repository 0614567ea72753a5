"""The key that signs access tokens, the id tokens name it by, and the public keys
other services verify them with.

HMAC (HS256/384/512) signs with SECRET_KEY: nothing is published, and only holders
of the secret can verify. RS256, ES256{% if cookiecutter.jwt_library != "python-jose" %} and EdDSA{% endif %} sign with the private key in
PRIVATE_KEY or PRIVATE_KEY_FILE (PEM); its public half is published as a JWK set
(RFC 7517) named by its RFC 7638 thumbprint, so that other services verify tokens
without being able to make them.
"""

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec{% if cookiecutter.jwt_library != "python-jose" %}, ed25519{% endif %}, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

{{ imports(config="settings") }}

#: The kind of private key each asymmetric algorithm signs with.
KEY_TYPES: dict[str, type] = {
    "RS256": rsa.RSAPrivateKey,
    "ES256": ec.EllipticCurvePrivateKey,
{%- if cookiecutter.jwt_library != "python-jose" %}
    "EdDSA": ed25519.Ed25519PrivateKey,
{%- endif %}
}
#: RSA keys shorter than this are refused (RFC 7518, section 3.3).
MIN_RSA_BITS = 2048


class SigningKeyError(ValueError):
    """The configured private key cannot sign with ALGORITHM (the message says why)."""


@dataclass(frozen=True, eq=False)
class SigningKey:
    """What signs tokens (``private``), what verifies them (``public``), and the
    ``kid`` they carry; ``jwk`` is the published public key (none for HMAC)."""

    kid: str
    private: Any = field(repr=False)
    public: Any = field(repr=False)
    jwk: dict[str, str] | None


def current_key() -> SigningKey:
    """The signing key the settings describe (read once per distinct setting)."""
    if settings.algorithm.startswith("HS"):
        return _hmac_key(settings.secret_key.get_secret_value(), settings.algorithm)
    return _asymmetric_key(settings.algorithm, _private_pem())


def public_keys() -> list[dict[str, str]]:
    """The JWK set's keys: the signing key's public half, if it has one."""
    jwk = current_key().jwk
    return [jwk] if jwk else []


@lru_cache(maxsize=4)
def _hmac_key(secret: str, algorithm: str) -> SigningKey:
    # A one-way digest names the key without telling anything about it.
    name = f"access token key id, {algorithm}".encode()
    digest = hmac.new(secret.encode(), name, hashlib.sha256).digest()
    kid = base64.urlsafe_b64encode(digest[:12]).decode()
    return SigningKey(kid=kid, private=secret, public=secret, jwk=None)


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
    public = private.public_key()
    jwk = _public_jwk(public)
    kid = _thumbprint(jwk)
    return SigningKey(
        kid=kid,
        private=private,
        public=public,
        jwk={**jwk, "kid": kid, "use": "sig", "alg": algorithm},
    )


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
