"""Signing and verifying JWTs with joserfc: the signature, the key's algorithm
only, issuer, audience, expiry and the presence of the claims asked for. The
tokens module checks the rest."""

import warnings
from functools import lru_cache
from typing import Any

from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

{{ imports(config="settings", keys="SigningKey") }}

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


def encode(key: SigningKey, header: dict[str, str], claims: dict[str, Any]) -> str:
    # Named explicitly: joserfc allows only its recommended algorithms (HS256 of
    # these three) unless told which.
    header = {"alg": key.algorithm, **header}
    private = _joserfc_key(key, private=True)
    return jwt.encode(header, claims, private, algorithms=[key.algorithm])


def decode(key: SigningKey, token: str, required: tuple[str, ...]) -> dict[str, Any]:
    """The claims of a valid token; raises joserfc's errors for any other."""
    public = _joserfc_key(key, private=False)
    decoded = jwt.decode(token, public, algorithms=[key.algorithm])
    # joserfc's decode checks the signature; a claims registry checks the claims.
    essential = {claim: {"essential": True} for claim in required}
    essential["iss"]["value"] = settings.jwt_issuer
    essential["aud"]["value"] = settings.jwt_audience
    jwt.JWTClaimsRegistry(**essential).validate(decoded.claims)
    return decoded.claims


@lru_cache(maxsize=16)
def _joserfc_key(key: SigningKey, *, private: bool) -> Any:
    """joserfc's form of ``key`` (or its public half), made once."""
    return KEY_CLASSES[key.algorithm].import_key(key.private if private else key.public)
