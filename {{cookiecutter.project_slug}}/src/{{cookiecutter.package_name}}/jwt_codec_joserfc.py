"""Signing and verifying JWTs with joserfc: the signature, the configured algorithm
only, issuer, audience, expiry and the presence of the claims asked for. The
tokens module checks the rest."""

import warnings
from functools import lru_cache
from typing import Any

from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

{{ imports(config="settings", keys="SigningKey, current_key") }}

# "EdDSA" is the name verifiers know (PyJWT has no "Ed25519", RFC 9864's newer
# name); joserfc would warn about it on every token.
warnings.filterwarnings("ignore", "EdDSA is deprecated", SecurityWarning)

#: joserfc's key class for each algorithm.
KEY_CLASSES = {
    "HS256": OctKey,
    "HS384": OctKey,
    "HS512": OctKey,
    "RS256": RSAKey,
    "ES256": ECKey,
    "EdDSA": OKPKey,
}


def encode(header: dict[str, str], claims: dict[str, Any]) -> str:
    # Named explicitly: joserfc allows only its recommended algorithms (HS256 of
    # these three) unless told which.
    header = {"alg": settings.algorithm, **header}
    key = _key(current_key(), settings.algorithm, private=True)
    return jwt.encode(header, claims, key, algorithms=[settings.algorithm])


def decode(token: str, required: tuple[str, ...]) -> dict[str, Any]:
    """The claims of a valid token; raises joserfc's errors for any other."""
    key = _key(current_key(), settings.algorithm, private=False)
    decoded = jwt.decode(token, key, algorithms=[settings.algorithm])
    # joserfc's decode checks the signature; a claims registry checks the claims.
    essential = {claim: {"essential": True} for claim in required}
    essential["iss"]["value"] = settings.jwt_issuer
    essential["aud"]["value"] = settings.jwt_audience
    jwt.JWTClaimsRegistry(**essential).validate(decoded.claims)
    return decoded.claims


@lru_cache(maxsize=8)
def _key(signing: SigningKey, algorithm: str, *, private: bool) -> Any:
    """joserfc's form of the signing key (or its public half), made once."""
    return KEY_CLASSES[algorithm].import_key(
        signing.private if private else signing.public
    )
