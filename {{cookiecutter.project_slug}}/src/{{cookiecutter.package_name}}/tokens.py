"""JWT access tokens, made and checked with {{ {"pyjwt": "PyJWT", "python-jose": "python-jose", "joserfc": "joserfc"}[cookiecutter.jwt_library] }}.

Only the configured algorithm is accepted; ``exp``, ``iat`` and ``sub`` are
required, ``exp`` and ``nbf`` are enforced and a ``crit`` header is refused.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

{% if cookiecutter.jwt_library == "pyjwt" -%}
import jwt
{%- elif cookiecutter.jwt_library == "python-jose" -%}
from jose import JWTError, jwt
{%- else -%}
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
{%- endif %}

{{ imports(config="settings") }}

REQUIRED_CLAIMS = ("exp", "iat", "sub")


class InvalidTokenError(Exception):
    """The token is malformed, expired, signed with another key or algorithm, or
    not one of ours."""


def create_access_token(subject: str, expires_delta: timedelta | None = None) -> str:
    """A signed token for ``subject`` that expires after ``expires_delta``
    (default: ACCESS_TOKEN_EXPIRE_MINUTES)."""
    now = datetime.now(UTC)
    lifetime = expires_delta or timedelta(minutes=settings.access_token_expire_minutes)
    claims = {
        "sub": subject,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }
    return _encode(claims)


def decode_access_token(token: str) -> str:
    """The subject of a valid token; raises InvalidTokenError for anything else."""
    claims = _decode(token)
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise InvalidTokenError("token has no subject")
    return subject


def _secret() -> str:
    return settings.secret_key.get_secret_value()
{%- if cookiecutter.jwt_library == "pyjwt" %}


def _encode(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, _secret(), algorithm=settings.algorithm)


def _decode(token: str) -> dict[str, Any]:
    try:
        return jwt.decode(
            token,
            _secret(),
            algorithms=[settings.algorithm],
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.PyJWTError as error:
        raise InvalidTokenError(str(error)) from error
{%- elif cookiecutter.jwt_library == "python-jose" %}


def _encode(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, _secret(), algorithm=settings.algorithm)


def _decode(token: str) -> dict[str, Any]:
    try:
        # python-jose ignores "crit": refuse extensions we would not understand.
        if "crit" in jwt.get_unverified_header(token):
            raise InvalidTokenError("critical header extensions are not supported")
        return jwt.decode(
            token,
            _secret(),
            algorithms=[settings.algorithm],
            options={f"require_{claim}": True for claim in REQUIRED_CLAIMS},
        )
    except JWTError as error:
        raise InvalidTokenError(str(error)) from error
{%- else %}


def _key() -> OctKey:
    return OctKey.import_key(_secret())


def _encode(claims: dict[str, Any]) -> str:
    return jwt.encode({"alg": settings.algorithm, "typ": "JWT"}, claims, _key())


_claims_registry = jwt.JWTClaimsRegistry(
    **{claim: {"essential": True} for claim in REQUIRED_CLAIMS}
)


def _decode(token: str) -> dict[str, Any]:
    try:
        decoded = jwt.decode(token, _key(), algorithms=[settings.algorithm])
        # joserfc's decode only checks the signature; the registry checks exp/nbf/iat.
        _claims_registry.validate(decoded.claims)
    except (JoseError, ValueError) as error:
        raise InvalidTokenError(str(error)) from error
    return decoded.claims
{%- endif %}
