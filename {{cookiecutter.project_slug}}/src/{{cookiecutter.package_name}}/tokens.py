"""JWT access tokens: what they say, and every check they must pass.

jwt_codec signs and verifies them with the chosen JWT library.

Access tokens are JWTs of the profile for OAuth 2.0 access tokens (RFC 9068:
``typ: at+jwt``) that name their signing key in ``kid``. Only a key the service
knows is accepted, with the algorithm it signs with, and a header holding
anything but ``alg``, ``typ`` and ``kid`` (``crit`` included) is refused; ``exp``, ``iat``, ``sub``,
``jti``, ``iss``, ``aud``, ``sid`` and ``type`` are required, each of the type this
service writes, issuer and audience must be ours, and ``exp`` and ``nbf`` are
enforced. ``amr`` says how the user signed in (RFC 8176: ``["pwd"]``, or
``["pwd", "otp", "mfa"]`` with a second factor), for other services to require.
Any token that fails any of this, however malformed, is invalid: never
an error. (Refresh tokens are not JWTs: see the auth service.)
"""

import base64
import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

{{ imports(config="settings", jwt_codec="decode, encode", keys="SigningKey, find_key, key_version") }}

ACCESS = "access"
REQUIRED_CLAIMS = ("exp", "iat", "sub", "jti", "iss", "aud")
#: What this service puts in ``sub`` (a user id), and in ``sid`` and ``jti`` (ids).
SUBJECT = re.compile(r"[1-9][0-9]{0,17}")
ID = re.compile(r"[0-9a-f]{32}")
#: The header fields this service writes; any other could change how a token
#: must be read.
HEADER_FIELDS = frozenset({"alg", "typ", "kid"})
#: The ``typ`` of JWT access tokens (RFC 9068).
AT_JWT = "at+jwt"
TIMES = ("exp", "iat", "nbf")


class InvalidTokenError(Exception):
    """The token is malformed, expired, signed with another key or algorithm, or
    not one of our access tokens."""


class UnknownKeyError(InvalidTokenError):
    """The token names a key this process does not know (perhaps not yet: see
    keys.reload_keys)."""


@dataclass(frozen=True)
class AccessToken:
    """What a valid access token says: whose it is and which login issued it."""

    user_id: int
    session_id: str
    expires_at: float


def create_access_token(
    key: SigningKey,
    subject: str,
    session_id: str,
    amr: str = "pwd",
    expires_delta: timedelta | None = None,
) -> str:
    """An access token signed with ``key`` for ``subject``, issued by login
    ``session_id`` that was signed in as ``amr`` says (RFC 8176 methods,
    space-separated), that expires after ``expires_delta`` (default:
    ACCESS_TOKEN_EXPIRE_MINUTES)."""
    now = datetime.now(UTC)
    lifetime = expires_delta or timedelta(minutes=settings.access_token_expire_minutes)
    claims = {
        "sub": subject,
        "sid": session_id,
        "amr": amr.split(),
        "type": ACCESS,
        "jti": uuid.uuid4().hex,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }
    return encode(key, {"typ": AT_JWT, "kid": key.kid}, claims)


def decode_access_token(token: str) -> AccessToken:
    """What a valid access token says; raises InvalidTokenError for anything else.

    The signature and claims of a token are checked once and remembered (for a
    bounded number of tokens); its expiry is checked again on every use.
    """
    access = _verify(token, key_version())
    if access.expires_at <= time.time():
        raise InvalidTokenError("token has expired")
    return access


@lru_cache(maxsize=4096)
def _verify(token: str, _key_version: object) -> AccessToken:
    # Remembered per token and version of the keys: new keys check every token again.
    try:
        return _read(token)
    except InvalidTokenError:
        raise
    except Exception as error:
        # A token is untrusted input: whatever a library fails on in it (a header
        # or claim of an unexpected type), it is not a valid token.
        raise InvalidTokenError(type(error).__name__) from error


def _read(token: str) -> AccessToken:
    header = _header(token)
    if not HEADER_FIELDS.issuperset(header) or header.get("typ") != AT_JWT:
        raise InvalidTokenError("unexpected header")
    kid = header.get("kid")
    key = find_key(kid) if isinstance(kid, str) else None
    if key is None:
        raise UnknownKeyError("unknown key")
    if header.get("alg") != key.algorithm:
        raise InvalidTokenError("another algorithm than its key's")
    claims = decode(key, token, REQUIRED_CLAIMS)
    # Checked even where only a holder of the key could have signed them otherwise.
    if claims.get("type") != ACCESS:
        raise InvalidTokenError("not an access token")
    subject, session_id = claims.get("sub"), claims.get("sid")
    if not isinstance(subject, str) or not SUBJECT.fullmatch(subject):
        raise InvalidTokenError("token has no user id")
    ids = (session_id, claims.get("jti"))
    if not all(isinstance(id_, str) and ID.fullmatch(id_) for id_ in ids):
        raise InvalidTokenError("token has no login or token id")
    if not all(_is_time(claims[name]) for name in TIMES if name in claims):
        raise InvalidTokenError("a time claim is not a number")
    if claims["exp"] - claims["iat"] > settings.access_token_expire_minutes * 60:
        raise InvalidTokenError("token lives longer than ACCESS_TOKEN_EXPIRE_MINUTES")
    return AccessToken(int(subject), session_id, claims["exp"])


def _header(token: str) -> dict[str, Any]:
    segment = token.split(".", 1)[0]
    header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    if not isinstance(header, dict):
        raise InvalidTokenError("the header is not an object")
    return header


def _is_time(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
