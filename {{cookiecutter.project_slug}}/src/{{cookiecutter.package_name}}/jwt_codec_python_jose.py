"""Signing and verifying JWTs with python-jose: the signature, the key's
algorithm only, issuer, audience, expiry and the presence of the claims asked for.
The tokens module checks the rest (python-jose ignores ``crit``: the tokens module
refuses any header field it does not write)."""

from typing import Any

from jose import jwt

{{ imports(config="settings", keys="SigningKey") }}


def encode(key: SigningKey, header: dict[str, str], claims: dict[str, Any]) -> str:
    return jwt.encode(claims, key.private, algorithm=key.algorithm, headers=header)


def decode(key: SigningKey, token: str, required: tuple[str, ...]) -> dict[str, Any]:
    """The claims of a valid token; raises python-jose's errors for any other."""
    return jwt.decode(
        token,
        key.public,
        algorithms=[key.algorithm],
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        options={f"require_{claim}": True for claim in required},
    )
