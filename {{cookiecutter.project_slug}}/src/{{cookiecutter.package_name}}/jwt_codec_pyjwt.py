"""Signing and verifying JWTs with PyJWT: the signature, the key's algorithm
only, issuer, audience, expiry and the presence of the claims asked for. The
tokens module checks the rest."""

from typing import Any

import jwt

{{ imports(config="settings", keys="SigningKey") }}


def encode(key: SigningKey, header: dict[str, str], claims: dict[str, Any]) -> str:
    return jwt.encode(claims, key.private, algorithm=key.algorithm, headers=header)


def decode(key: SigningKey, token: str, required: tuple[str, ...]) -> dict[str, Any]:
    """The claims of a valid token; raises PyJWT's errors for any other."""
    return jwt.decode(
        token,
        key.public,
        algorithms=[key.algorithm],
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        options={"require": list(required)},
    )
