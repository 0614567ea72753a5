"""Signing with a private key: another service verifies access tokens with the
published public key alone (checked here with `cryptography`, not the service's
JWT library); HMAC publishes nothing."""

from collections.abc import Callable
from functools import cache
from typing import get_args

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from fastapi.testclient import TestClient
from pydantic import SecretStr

{{ imports(config="Algorithm, settings", keys="SigningKeyError, current_key") }}

from .conftest import PASSWORD, bearer, login, token_part, unb64

#: Every algorithm that signs with a private key, as the settings allow them.
ASYMMETRIC = [name for name in get_args(Algorithm) if not name.startswith("HS")]


@cache
def new_private_key(algorithm: str, number: int = 1, rsa_bits: int = 2048) -> str:
    """A private key for ``algorithm``, in PEM: the same for the same ``number``
    (made once: RSA keys take a while)."""
    if algorithm == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    elif algorithm == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture
def sign_with(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], None]:
    """Make the service sign with ``algorithm`` and a PEM private key."""

    def use(algorithm: str, pem: str) -> None:
        monkeypatch.setattr(settings, "algorithm", algorithm)
        monkeypatch.setattr(settings, "private_key", SecretStr(pem))

    return use


def number(member: str) -> int:
    return int.from_bytes(unb64(member), "big")


def verify_with_jwk(token: str, jwk: dict[str, str]) -> None:
    """Check the signature with the public JWK alone; raises if it is wrong."""
    head, body, signature = token.split(".")
    signed, raw = f"{head}.{body}".encode(), unb64(signature)
    if jwk["kty"] == "RSA":
        public = rsa.RSAPublicNumbers(number(jwk["e"]), number(jwk["n"])).public_key()
        public.verify(raw, signed, padding.PKCS1v15(), hashes.SHA256())
    elif jwk["kty"] == "EC":
        point = ec.EllipticCurvePublicNumbers(
            number(jwk["x"]), number(jwk["y"]), ec.SECP256R1()
        )
        r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        point.public_key().verify(
            encode_dss_signature(r, s), signed, ec.ECDSA(hashes.SHA256())
        )
    else:
        public_key = ed25519.Ed25519PublicKey.from_public_bytes(unb64(jwk["x"]))
        public_key.verify(raw, signed)


def test_with_hmac_nothing_is_published(client: TestClient) -> None:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.json() == {"keys": []}
    assert response.headers["cache-control"] == "public, max-age=300"


@pytest.fixture
def token_signed_with(
    client: TestClient, user: dict, sign_with: Callable[[str, str], None]
) -> Callable[[str], str]:
    """Make the service sign with a new private key for ``algorithm``: an access
    token of alice's, which opens /users/me."""

    def log_in(algorithm: str) -> str:
        sign_with(algorithm, new_private_key(algorithm))
        token = login(client, "alice", PASSWORD)["access_token"]
        assert client.get("/users/me", headers=bearer(token)).status_code == 200
        return token

    return log_in


@pytest.mark.parametrize("algorithm", ASYMMETRIC)
def test_tokens_verify_with_the_published_public_key_alone(
    client: TestClient, token_signed_with: Callable[[str], str], algorithm: str
) -> None:
    token = token_signed_with(algorithm)
    (jwk,) = client.get("/.well-known/jwks.json").json()["keys"]
    header = token_part(token, 0)
    assert (header["alg"], header["typ"]) == (algorithm, "at+jwt")
    assert (jwk["kid"], jwk["alg"], jwk["use"]) == (header["kid"], algorithm, "sig")
    assert not {"d", "p", "q", "dp", "dq", "qi"} & jwk.keys()  # public members only
    verify_with_jwk(token, jwk)


def test_a_token_of_another_private_key_is_refused(
    client: TestClient,
    token_signed_with: Callable[[str], str],
    sign_with: Callable[[str, str], None],
) -> None:
    """By its kid, before any signature check: the same for every algorithm."""
    token = token_signed_with("ES256")
    sign_with("ES256", new_private_key("ES256", number=2))  # another key
    assert client.get("/users/me", headers=bearer(token)).status_code == 401


@pytest.mark.parametrize(
    ("algorithm", "key_algorithm", "rsa_bits", "reason"),
    [
        ("RS256", "ES256", 2048, "not a key for RS256"),
        ("ES256", "RS256", 2048, "not a key for ES256"),
        ("RS256", "RS256", 1024, "at least 2048 bits"),
        ("ES256", None, 0, "not an unencrypted PEM"),
    ],
)
def test_a_private_key_that_cannot_sign_is_refused_without_showing_it(
    sign_with: Callable[[str, str], None],
    algorithm: str,
    key_algorithm: str | None,
    rsa_bits: int,
    reason: str,
) -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nnot a key"
    if key_algorithm:
        pem = new_private_key(key_algorithm, rsa_bits=rsa_bits)
    sign_with(algorithm, pem)
    with pytest.raises(SigningKeyError, match=reason) as refused:
        current_key()
    assert "PRIVATE KEY" not in str(refused.value)


def test_server_metadata_says_where_tokens_and_keys_are(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Named from the request while JWT_ISSUER is not a URL: for this caller only.
    answer = client.get("/.well-known/oauth-authorization-server")
    metadata = answer.json()
    assert metadata["issuer"] == settings.jwt_issuer
    assert metadata["token_endpoint"] == "http://testserver/token"
    assert metadata["jwks_uri"] == "http://testserver/.well-known/jwks.json"
    assert metadata["grant_types_supported"] == ["password", "refresh_token"]
    assert answer.headers["cache-control"] == "no-store"
    assert client.get(metadata["jwks_uri"]).status_code == 200

    # From JWT_ISSUER when it is one, whatever Host the request names.
    monkeypatch.setattr(settings, "jwt_issuer", "https://auth.example.com")
    answer = client.get(
        "/.well-known/oauth-authorization-server", headers={"Host": "evil.example"}
    )
    assert answer.json()["jwks_uri"] == "https://auth.example.com/.well-known/jwks.json"
    assert answer.json()["token_endpoint"] == "https://auth.example.com/token"
    assert answer.headers["cache-control"] == "public, max-age=300"


def test_a_private_key_may_be_given_on_one_line_or_in_a_file(
    client: TestClient,
    user: dict,
    sign_with: Callable[[str, str], None],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path,
) -> None:
    pem = new_private_key("ES256")
    sign_with("ES256", pem.replace("\n", "\\n"))  # its line breaks written as \n
    token = login(client, "alice", PASSWORD)["access_token"]
    assert client.get("/users/me", headers=bearer(token)).status_code == 200

    key_file = tmp_path / "signing-key.pem"
    key_file.write_text(pem)
    monkeypatch.setattr(settings, "private_key", None)
    monkeypatch.setattr(settings, "private_key_file", key_file)
    assert client.get("/users/me", headers=bearer(token)).status_code == 200
    der = tmp_path / "signing-key.der"
    der.write_bytes(b"0\x82\x04\xbf\x02\x01\x00")
    monkeypatch.setattr(settings, "private_key_file", der)
    with pytest.raises(SigningKeyError, match="does not hold a PEM key"):
        current_key()


def test_the_signing_key_never_shows_its_secret(
    sign_with: Callable[[str, str], None],
) -> None:
    assert settings.secret_key.get_secret_value() not in repr(current_key())
    pem = new_private_key("ES256")
    sign_with("ES256", pem)
    assert "PRIVATE" not in repr(current_key())
