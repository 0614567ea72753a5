"""Signing and verifying JWTs with joserfc: the signature, the configured algorithm
only, issuer, audience, expiry and the presence of the claims asked for. The
tokens module checks the rest."""

from typing import Any

from joserfc import jwt
from joserfc.jwk import OctKey

{{ imports(config="settings") }}


def encode(header: dict[str, str], claims: dict[str, Any]) -> str:
    # Named explicitly: joserfc allows only its recommended algorithms (HS256 of
    # these three) unless told which.
    header = {"alg": settings.algorithm, **header}
    return jwt.encode(header, claims, _key(), algorithms=[settings.algorithm])


def decode(token: str, required: tuple[str, ...]) -> dict[str, Any]:
    """The claims of a valid token; raises joserfc's errors for any other."""
    decoded = jwt.decode(token, _key(), algorithms=[settings.algorithm])
    # joserfc's decode checks the signature; a claims registry checks the claims.
    essential = {claim: {"essential": True} for claim in required}
    essential["iss"]["value"] = settings.jwt_issuer
    essential["aud"]["value"] = settings.jwt_audience
    jwt.JWTClaimsRegistry(**essential).validate(decoded.claims)
    return decoded.claims


def _key() -> OctKey:
    return OctKey.import_key(settings.secret_key.get_secret_value())
