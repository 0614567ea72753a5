"""Signing with a private key: another service verifies access tokens with the
published public keys alone (checked here with `cryptography`, not the service's
JWT library); HMAC publishes nothing. Keys the service makes are stored
encrypted, shared by every worker, and rotated while tokens are outstanding."""

import hashlib
import hmac
import importlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import cache
from typing import get_args

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import delete, func, select

{{ imports(auth_models="StoredKey", config="Algorithm, settings", database="SessionLocal, utcnow", keys="", tokens="create_access_token") }}

from .conftest import (
    PASSWORD,
    b64,
    bearer,
    logged,
    login,
    me_status,
    start_login,
    token_part,
    unb64,
)

CLI = "{{ cookiecutter.package_name }}.__main__"

cli = importlib.import_module(CLI)

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


def test_with_hmac_nothing_is_published(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "algorithm", "HS256")
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.json() == {"keys": []}
    assert response.headers["cache-control"] == "public, max-age=300"


def test_the_key_made_at_start_up_signs_by_default(
    client: TestClient, token: str
) -> None:
    (jwk,) = client.get("/.well-known/jwks.json").json()["keys"]
    assert (jwk["alg"], jwk["kid"]) == ("ES256", token_part(token, 0)["kid"])
    verify_with_jwk(token, jwk)


def test_an_hmac_token_keyed_with_the_public_key_is_refused(
    client: TestClient, token: str
) -> None:
    """The old confusion: HS256, with the published key as the secret."""
    (jwk,) = client.get("/.well-known/jwks.json").json()["keys"]
    (row,) = stored_rows()
    header = b64(json.dumps({**token_part(token, 0), "alg": "HS256"}).encode())
    signed = f"{header}.{token.split('.')[1]}"
    for secret in (row.public_key, json.dumps(jwk)):
        signature = hmac.new(secret.encode(), signed.encode(), hashlib.sha256)
        assert me_status(client, f"{signed}.{b64(signature.digest())}") == 401
    assert me_status(client, token) == 200


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
    with pytest.raises(keys.SigningKeyError, match=reason) as refused:
        keys.configured_key()
    assert "PRIVATE KEY" not in str(refused.value)


def test_server_metadata_comes_from_the_settings_whatever_the_request_says(
    client: TestClient, user: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = client.get("/.well-known/oauth-authorization-server")
    metadata = answer.json()
    assert metadata["issuer"] == settings.jwt_issuer == settings.public_url
    assert metadata["token_endpoint"] == "http://localhost:8000/token"
    assert metadata["jwks_uri"] == "http://localhost:8000/.well-known/jwks.json"
    assert metadata["grant_types_supported"] == [
        "password",
        "refresh_token",
        "http://auth0.com/oauth/grant-type/mfa-otp",
        "http://auth0.com/oauth/grant-type/mfa-recovery-code",
    ]
    assert answer.headers["cache-control"] == "public, max-age=300"

    # The issuer is the tokens' iss; the endpoints are at PUBLIC_URL, and no Host
    # header moves them.
    monkeypatch.setattr(settings, "jwt_issuer", "https://issuer.example.com")
    monkeypatch.setattr(settings, "public_url", "https://auth.example.com/api")
    answer = client.get(
        "/.well-known/oauth-authorization-server", headers={"Host": "evil.example"}
    )
    metadata = answer.json()
    assert metadata["issuer"] == "https://issuer.example.com"
    assert token_part(start_login(user)["access_token"], 1)["iss"] == metadata["issuer"]
    assert metadata["token_endpoint"] == "https://auth.example.com/api/token"
    assert metadata["jwks_uri"] == "https://auth.example.com/api/.well-known/jwks.json"


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
    (jwk,) = client.get("/.well-known/jwks.json").json()["keys"]  # its public half
    verify_with_jwk(token, jwk)

    key_file = tmp_path / "signing-key.pem"
    key_file.write_text(pem)
    monkeypatch.setattr(settings, "private_key", None)
    monkeypatch.setattr(settings, "private_key_file", key_file)
    assert client.get("/users/me", headers=bearer(token)).status_code == 200
    der = tmp_path / "signing-key.der"
    der.write_bytes(b"0\x82\x04\xbf\x02\x01\x00")
    monkeypatch.setattr(settings, "private_key_file", der)
    with pytest.raises(keys.SigningKeyError, match="does not hold a PEM key"):
        keys.configured_key()


def test_the_signing_key_never_shows_its_secret(
    sign_with: Callable[[str, str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "algorithm", "HS256")
    assert settings.secret_key.get_secret_value() not in repr(keys.configured_key())
    pem = new_private_key("ES256")
    sign_with("ES256", pem)
    assert "PRIVATE" not in repr(keys.configured_key())


@cache
def made_rsa_key() -> rsa.RSAPrivateKey:
    pem = new_private_key("RS256").encode()
    return serialization.load_pem_private_key(pem, password=None)


@pytest.fixture
def stored_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Make the service sign with keys of its own for ``algorithm``, as it starts
    with no PRIVATE_KEY; keys are read again as soon as a token asks for it. (An
    RSA key takes a while to make: the service gets the one this run made.)"""
    monkeypatch.setattr(keys, "RELOAD_INTERVAL", 0)
    make = keys._new_private_key
    monkeypatch.setattr(
        keys, "_new_private_key", lambda a: made_rsa_key() if a == "RS256" else make(a)
    )

    def use(algorithm: str) -> None:
        monkeypatch.setattr(settings, "algorithm", algorithm)
        monkeypatch.setattr(settings, "private_key", None)
        keys.prepare_signing_key()

    table = StoredKey.__table__
    with SessionLocal.begin() as session:  # none yet, as in a new deployment
        saved = [dict(row) for row in session.execute(select(table)).mappings()]
        session.execute(delete(table))
    yield use
    with SessionLocal.begin() as session:  # the start-up key back
        session.execute(delete(table))
        session.execute(table.insert(), saved)


def stored_rows() -> list[StoredKey]:
    with SessionLocal() as session:
        return list(session.scalars(select(StoredKey).order_by(StoredKey.created_at)))


@pytest.mark.parametrize("algorithm", ASYMMETRIC)
def test_without_a_private_key_the_service_makes_one_and_keeps_it_encrypted(
    client: TestClient,
    user: dict,
    stored_keys: Callable[[str], None],
    algorithm: str,
) -> None:
    stored_keys(algorithm)
    token = login(client, "alice", PASSWORD)["access_token"]
    assert me_status(client, token) == 200
    (row,) = stored_rows()
    (jwk,) = client.get("/.well-known/jwks.json").json()["keys"]
    header = token_part(token, 0)
    assert (header["alg"], header["typ"]) == (algorithm, "at+jwt")
    assert (jwk["kid"], jwk["alg"], jwk["use"]) == (header["kid"], algorithm, "sig")
    assert row.kid == jwk["kid"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & jwk.keys()  # public members only
    verify_with_jwk(token, jwk)

    # Only a key derived from SECRET_KEY opens it, and only for its kid.
    blob = row.encrypted_private_key
    with pytest.raises(ValueError):
        serialization.load_der_private_key(blob, password=None)
    secret = settings.secret_key.get_secret_value().encode()
    hkdf = HKDF(hashes.SHA256(), length=32, salt=None, info=b"signing keys at rest")
    der = AESGCM(hkdf.derive(secret)).decrypt(blob[:12], blob[12:], row.kid.encode())
    private = serialization.load_der_private_key(der, password=None)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert public.decode() == row.public_key


def test_workers_starting_at_once_make_one_key_between_them(
    client: TestClient,
    stored_keys: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "algorithm", "ES256")
    make_key = keys._new_private_key  # slowed: each start would make its own
    monkeypatch.setattr(
        keys, "_new_private_key", lambda a: time.sleep(0.02) or make_key(a)
    )
    starts = [threading.Thread(target=keys.prepare_signing_key) for _ in range(4)]
    for start in starts:
        start.start()
    for start in starts:
        start.join()
    assert len(stored_rows()) == 1
    stored_keys("ES256")  # a restart keeps the key
    assert len(stored_rows()) == 1


def test_rotated_keys_sign_at_once_while_old_tokens_verify_until_they_expire(
    client: TestClient,
    user: dict,
    stored_keys: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stored_keys("ES256")
    with SessionLocal() as session:
        old_key = keys.signing_key(session)
    old = login(client, "alice", PASSWORD)["access_token"]
    assert cli.main(["rotate-keys"]) == 0
    new = login(client, "alice", PASSWORD)["access_token"]
    old_kid, new_kid = token_part(old, 0)["kid"], token_part(new, 0)["kid"]
    assert f"new signing key {new_kid};" in capsys.readouterr().out
    assert old_kid == old_key.kid != new_kid
    assert (me_status(client, old), me_status(client, new)) == (200, 200)
    published = client.get("/.well-known/jwks.json").json()["keys"]
    assert [jwk["kid"] for jwk in published] == [new_kid, old_kid]

    # Once every token the old key signed has expired, it verifies nothing more
    # (a token it signs now included), leaves the published keys, and the purge
    # deletes it.
    lifetime = timedelta(minutes=settings.access_token_expire_minutes)
    later = utcnow() + lifetime + keys.RETIREMENT_GRACE + timedelta(seconds=1)
    monkeypatch.setattr(keys, "utcnow", lambda: later)
    late = create_access_token(old_key, str(user["id"]), token_part(new, 1)["sid"])
    assert (me_status(client, late), me_status(client, new)) == (401, 200)
    published = client.get("/.well-known/jwks.json").json()["keys"]
    assert [jwk["kid"] for jwk in published] == [new_kid]
    assert cli.main(["purge"]) == 0
    assert [row.kid for row in stored_rows()] == [new_kid]


def with_kid(token: str, kid: str) -> str:
    """``token`` naming another key (its signature no longer matters)."""
    header = json.dumps({**token_part(token, 0), "kid": kid}).encode()
    return b64(header) + token[token.index(".") :]


def test_a_worker_learns_a_key_made_elsewhere_from_the_first_token_naming_it(
    client: TestClient,
    user: dict,
    stored_keys: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stored_keys("ES256")
    login_id = token_part(login(client, "alice", PASSWORD)["access_token"], 1)["sid"]
    made_elsewhere = keys.rotate_keys()  # not read by this worker
    token = create_access_token(made_elsewhere, str(user["id"]), login_id)
    reads = []
    read_keys = keys._read_keys
    monkeypatch.setattr(keys, "_read_keys", lambda s: reads.append(s) or read_keys(s))
    assert me_status(client, token) == 200
    assert len(reads) == 1

    # Tokens naming unknown keys make it read them at most once per interval.
    monkeypatch.setattr(keys, "RELOAD_INTERVAL", 60)
    for _ in range(5):
        assert me_status(client, with_kid(token, "unknown")) == 401
    assert len(reads) == 1


def test_a_stored_key_of_another_secret_key_stops_production_start_up(
    client: TestClient,
    stored_keys: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stored_keys("ES256")
    another = "another-secret-key-that-is-long-and-random-q8Xz3"
    monkeypatch.setattr(settings, "secret_key", SecretStr(another))
    monkeypatch.setattr(settings, "environment", "production")
    with pytest.raises(keys.SigningKeyError, match="another SECRET_KEY") as refused:
        keys.prepare_signing_key()
    assert "rotate-keys" in str(refused.value)
    assert another not in str(refused.value)
    # Where SECRET_KEY is a new random one at each start, a new key replaces it.
    monkeypatch.setattr(settings, "environment", "development")
    keys.prepare_signing_key()
    with SessionLocal() as session:
        signing = session.scalar(
            select(func.count()).where(StoredKey.retired_at.is_(None))
        )
    assert (signing, len(stored_rows())) == (1, 2)


def test_a_key_this_replica_cannot_decrypt_is_a_503_that_the_log_explains(
    client: TestClient,
    user: dict,
    stored_keys: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stored_keys("ES256")
    secret = settings.secret_key
    another = SecretStr("another-secret-key-that-is-long-and-random-q8Xz3")
    monkeypatch.setattr(settings, "secret_key", another)
    keys.rotate_keys()  # by a replica with another SECRET_KEY
    monkeypatch.setattr(settings, "secret_key", secret)
    credentials = {"username": "alice", "password": PASSWORD}
    with caplog.at_level(logging.INFO):
        response = client.post("/login", json=credentials)
    assert response.status_code == 503
    (cannot_sign,) = logged(caplog, "cannot_sign")
    assert "another SECRET_KEY" in cannot_sign["reason"]


def test_a_new_algorithm_signs_with_a_new_key_and_old_tokens_still_verify(
    client: TestClient, user: dict, stored_keys: Callable[[str], None]
) -> None:
    stored_keys("ES256")
    old = login(client, "alice", PASSWORD)["access_token"]
    stored_keys("RS256")  # restarted with another ALGORITHM
    new = login(client, "alice", PASSWORD)["access_token"]
    assert token_part(new, 0)["alg"] == "RS256"
    assert (me_status(client, old), me_status(client, new)) == (200, 200)


def test_rotate_keys_says_where_keys_are_not_the_services_to_rotate(
    sign_with: Callable[[str, str], None],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(settings, "algorithm", "HS256")
    assert cli.main(["rotate-keys"]) == 1  # HMAC
    assert "a new SECRET_KEY is a new key" in capsys.readouterr().err
    sign_with("ES256", new_private_key("ES256"))
    assert cli.main(["rotate-keys"]) == 1
    error = capsys.readouterr().err
    assert "rotate it where it is kept" in error
    assert error.count("\n") == 1
