"""Every token that is not a valid, current token of ours gets a 401.

Tokens are forged by hand (hmac + base64), independently of the JWT library the
service uses, so that the library's own defaults are what is being tested: the
service signs with HS256 here (test_keys covers the asymmetric algorithms and the
confusion between the two).
"""

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

{{ imports(config="settings", keys="configured_key", tokens="AccessToken, InvalidTokenError, create_access_token, decode_access_token") }}

from .conftest import b64, bearer, token_part

DIGESTS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
LOGIN_ID = "0123456789abcdef" * 2


def forge(
    claims: dict,
    *,
    key: str | None = None,
    alg: str = "HS256",
    header: dict | None = None,
    without: tuple[str, ...] = (),
) -> str:
    kid = configured_key().kid
    head = {"alg": alg, "typ": "at+jwt", "kid": kid, **(header or {})}
    head = {field: value for field, value in head.items() if field not in without}
    signing_input = (
        f"{b64(json.dumps(head).encode())}.{b64(json.dumps(claims).encode())}"
    )
    if alg == "none":
        return signing_input + "."
    secret = (key or settings.secret_key.get_secret_value()).encode()
    signature = hmac.new(secret, signing_input.encode(), DIGESTS[alg]).digest()
    return f"{signing_input}.{b64(signature)}"


def new_token(expires_delta: timedelta | None = None) -> str:
    """An access token of user 42, signed as the service signs them."""
    return create_access_token(
        configured_key(), "42", LOGIN_ID, expires_delta=expires_delta
    )


@pytest.fixture(autouse=True)
def _hmac(monkeypatch: pytest.MonkeyPatch) -> None:
    """Signed with HMAC, which the forging above does by hand: what is checked
    does not depend on the algorithm (test_keys covers the others)."""
    monkeypatch.setattr(settings, "algorithm", "HS256")


def payload(token: str) -> dict:
    return token_part(token, 1)


@pytest.fixture
def claims(token: str) -> dict:
    """The claims of a real access token, to forge variations of."""
    return payload(token)


def claims_for(claims: dict, **overrides: object) -> dict:
    changed = {**claims, **overrides}
    return {key: value for key, value in changed.items() if value is not None}


def test_forged_valid_token_is_accepted(client: TestClient, claims: dict) -> None:
    """The forging helper itself is right, so the refusals below mean something."""
    response = client.get("/users/me", headers=bearer(forge(claims_for(claims))))
    assert response.status_code == 200


BAD_TOKENS = {
    "expired": lambda c: forge(claims_for(c, exp=int(time.time()) - 10)),
    "not yet valid (nbf)": lambda c: forge(claims_for(c, nbf=int(time.time()) + 600)),
    "signed with another key": lambda c: forge(claims_for(c), key="another-key-" * 4),
    "alg none": lambda c: forge(claims_for(c), alg="none"),
    "another algorithm": lambda c: forge(claims_for(c), alg="HS512"),
    "crit header": lambda c: forge(claims_for(c), header={"crit": ["exp"]}),
    "typ JWT (not an access token)": lambda c: forge(c, header={"typ": "JWT"}),
    "no typ": lambda c: forge(c, without=("typ",)),
    "another key id": lambda c: forge(c, header={"kid": "another-key"}),
    "no key id": lambda c: forge(c, without=("kid",)),
    "no exp": lambda c: forge(claims_for(c, exp=None)),
    "no iat": lambda c: forge(claims_for(c, iat=None)),
    "no sub": lambda c: forge(claims_for(c, sub=None)),
    "no jti": lambda c: forge(claims_for(c, jti=None)),
    "no iss": lambda c: forge(claims_for(c, iss=None)),
    "no aud": lambda c: forge(claims_for(c, aud=None)),
    "no type": lambda c: forge(claims_for(c, type=None)),
    "no session": lambda c: forge(claims_for(c, sid=None)),
    "another issuer": lambda c: forge(claims_for(c, iss="someone-else")),
    "another audience": lambda c: forge(claims_for(c, aud="someone-else")),
    "refresh type": lambda c: forge(claims_for(c, type="refresh")),
    "integer sub": lambda c: forge(claims_for(c, sub=int(c["sub"]))),
    "unknown user": lambda c: forge(claims_for(c, sub="999999")),
    "sub not an id": lambda c: forge(claims_for(c, sub="alice")),
    "unknown session": lambda c: forge(claims_for(c, sid="0" * 32)),
    "tampered payload": lambda c: tamper(forge(claims_for(c))),
    "garbage": lambda c: "not-a-token",
    "empty segments": lambda c: "..",
}


def tamper(token: str) -> str:
    head, _, signature = token.split(".")
    claims = payload(token)
    claims["sub"] = str(int(claims["sub"]) + 1)
    return f"{head}.{b64(json.dumps(claims).encode())}.{signature}"


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_bad_token_is_401(client: TestClient, claims: dict, kind: str) -> None:
    response = client.get("/users/me", headers=bearer(BAD_TOKENS[kind](claims)))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": "Could not validate credentials"}


def test_created_token_carries_every_claim() -> None:
    token = new_token(timedelta(minutes=5))
    claims = payload(token)
    assert decode_access_token(token) == AccessToken(42, LOGIN_ID, claims["exp"])
    assert claims["exp"] - claims["iat"] == 300
    assert claims["iss"] == settings.jwt_issuer
    assert claims["aud"] == settings.jwt_audience
    assert claims["type"] == "access"
    assert claims["jti"] != payload(new_token())["jti"]


def test_tokens_are_rfc_9068_access_tokens_naming_their_key(
    claims: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = new_token()
    header = token_part(token, 0)
    assert header["typ"] == "at+jwt"
    assert header["kid"] == configured_key().kid
    assert len(header["kid"]) == 16
    assert header["kid"] not in settings.secret_key.get_secret_value()
    monkeypatch.setattr(settings, "secret_key", SecretStr("another-secret-" * 4))
    assert configured_key().kid != header["kid"]  # a new key has a new id
    with pytest.raises(InvalidTokenError, match="unknown key"):
        decode_access_token(forge(claims, header={"kid": header["kid"]}))


def test_expired_token_is_refused_by_decode() -> None:
    token = new_token(timedelta(seconds=-1))
    with pytest.raises(InvalidTokenError):
        decode_access_token(token)


def test_remembered_token_is_still_refused_once_expired(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = new_token(timedelta(minutes=1))
    expires_at = decode_access_token(token).expires_at  # checked, and remembered
    monkeypatch.setattr(time, "time", lambda: expires_at)
    with pytest.raises(InvalidTokenError, match="expired"):
        decode_access_token(token)


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_tokens_are_signed_and_checked_with_the_configured_algorithm(
    claims: dict, monkeypatch: pytest.MonkeyPatch, algorithm: str
) -> None:
    monkeypatch.setattr(settings, "algorithm", algorithm)
    token = new_token()
    header = token_part(token, 0)
    assert header["alg"] == algorithm
    assert decode_access_token(token).user_id == 42
    with pytest.raises(InvalidTokenError):  # a token of the default algorithm
        decode_access_token(forge(claims, alg="HS256"))


#: Values of every JSON type, and text no claim of ours ever holds.
ODD_VALUES = (None, True, 0, -1, 1.5, 10**30, "", "x", "\u0000", [], [["x"]], {})
HEADER_FIELDS = ("alg", "typ", "kid", "crit", "cty", "jku", "jwk", "x5u", "x5c", "b64")
CLAIMS = ("exp", "iat", "nbf", "sub", "sid", "jti", "iss", "aud", "type")


def oddities(claims: dict) -> dict[str, str]:
    """Tokens signed with our key whose header or one claim holds an odd value."""
    forged = {}
    for field in HEADER_FIELDS:
        for value in ODD_VALUES:
            header = {field: value}
            forged[f"header {field}={value!r}"] = forge(claims, header=header)
    for claim in CLAIMS:
        for value in ODD_VALUES:
            if claim in ("iat", "nbf") and isinstance(value, int | float):
                continue  # a time in the past is a valid iat and nbf
            odd = {**claims, claim: value}
            forged[f"claim {claim}={value!r}"] = forge(odd)
    return forged


def test_a_header_or_claim_of_any_type_makes_an_invalid_token(claims: dict) -> None:
    """Each is InvalidTokenError (so 401), never another exception (a 500)."""
    accepted = []
    for name, forged in oddities(claims).items():
        try:
            decode_access_token(forged)
        except InvalidTokenError:
            continue
        accepted.append(name)
    assert accepted == []


@pytest.mark.parametrize(
    ("header", "changes"),
    [
        ({"crit": 1}, {}),
        ({"crit": None}, {}),
        ({"crit": [["x"]]}, {}),
        ({}, {"exp": "9999999999"}),
        ({}, {"sub": "1e3"}),
        ({}, {"sub": "\u0661"}),  # a digit, but not an ASCII one
    ],
)
def test_malformed_tokens_are_401_on_bearer_routes(
    client: TestClient, claims: dict, header: dict, changes: dict
) -> None:
    response = client.get(
        "/users/me", headers=bearer(forge({**claims, **changes}, header=header))
    )
    assert response.status_code == 401
