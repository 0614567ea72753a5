"""Every token that is not a valid, current token of ours gets a 401.

Tokens are forged by hand (hmac + base64), independently of the JWT library the
service uses, so that the library's own defaults are what is being tested.
"""

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

{{ imports(config="settings", tokens="InvalidTokenError, create_access_token, decode_access_token") }}

from .conftest import bearer

DIGESTS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(
    claims: dict,
    *,
    key: str | None = None,
    alg: str = "HS256",
    header: dict | None = None,
) -> str:
    head = {"alg": alg, "typ": "JWT", **(header or {})}
    signing_input = (
        f"{b64(json.dumps(head).encode())}.{b64(json.dumps(claims).encode())}"
    )
    if alg == "none":
        return signing_input + "."
    secret = (key or settings.secret_key.get_secret_value()).encode()
    signature = hmac.new(secret, signing_input.encode(), DIGESTS[alg]).digest()
    return f"{signing_input}.{b64(signature)}"


def claims_for(user: dict, **overrides: object) -> dict:
    now = int(time.time())
    claims = {"sub": str(user["id"]), "iat": now, "exp": now + 600}
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def test_forged_valid_token_is_accepted(client: TestClient, user: dict) -> None:
    """The forging helper itself is right, so the refusals below mean something."""
    response = client.get("/users/me", headers=bearer(forge(claims_for(user))))
    assert response.status_code == 200


BAD_TOKENS = {
    "expired": lambda user: forge(claims_for(user, exp=int(time.time()) - 10)),
    "not yet valid (nbf)": lambda user: forge(
        claims_for(user, nbf=int(time.time()) + 600)
    ),
    "signed with another key": lambda user: forge(
        claims_for(user), key="another-key-" * 4
    ),
    "alg none": lambda user: forge(claims_for(user), alg="none"),
    "another algorithm": lambda user: forge(claims_for(user), alg="HS512"),
    "crit header": lambda user: forge(claims_for(user), header={"crit": ["exp"]}),
    "no exp": lambda user: forge(claims_for(user, exp=None)),
    "no sub": lambda user: forge(claims_for(user, sub=None)),
    "no iat": lambda user: forge(claims_for(user, iat=None)),
    "integer sub": lambda user: forge(claims_for(user, sub=user["id"])),
    "unknown user": lambda user: forge(claims_for(user, sub="999999")),
    "sub not an id": lambda user: forge(claims_for(user, sub="alice")),
    "tampered payload": lambda user: tamper(forge(claims_for(user))),
    "garbage": lambda user: "not-a-token",
    "empty segments": lambda user: "..",
}


def tamper(token: str) -> str:
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = str(int(claims["sub"]) + 1)
    return f"{head}.{b64(json.dumps(claims).encode())}.{signature}"


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_bad_token_is_401(client: TestClient, user: dict, kind: str) -> None:
    response = client.get("/users/me", headers=bearer(BAD_TOKENS[kind](user)))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": "Could not validate credentials"}


def test_created_token_carries_subject_and_expiry() -> None:
    token = create_access_token("42", expires_delta=timedelta(minutes=5))
    assert decode_access_token(token) == "42"
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert payload["exp"] - payload["iat"] == 300


def test_expired_token_is_refused_by_decode() -> None:
    token = create_access_token("42", expires_delta=timedelta(seconds=-1))
    with pytest.raises(InvalidTokenError):
        decode_access_token(token)


def test_token_uses_the_configured_algorithm() -> None:
    header = json.loads(
        base64.urlsafe_b64decode(create_access_token("1").split(".")[0] + "==")
    )
    assert header["alg"] == settings.algorithm
