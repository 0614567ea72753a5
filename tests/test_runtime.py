"""Every variant installs from its own pyproject into its own environment and passes
its own tests (which run its migrations on an empty database and `alembic check`,
and drive the seeds' flows through the app). A real server started as the README
says serves the seeds' flows over HTTP from a fresh database, refusing hostile input
with no secret left in its log, on the variants that hold every pair of the choices
that change behaviour and every structure. PostgreSQL variants do all of it against
a real PostgreSQL server.

The flows hash passwords at the generated tests' cost (same algorithms, same code):
they are about the API. Each hashing choice also logs in at its production cost."""

from __future__ import annotations

import base64
import functools
import json
import re
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import jwt
import pyotp
import pytest
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import KeySet

from .support import (
    Baked,
    Environment,
    call,
    clean_env,
    forge_header,
    free_port,
    http,
    read_env_file,
    run,
    variant_params,
)


@functools.cache
def team_private_key() -> str:
    """An RSA key in PEM, made once per worker (each costs ~0.1 s of CPU)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem.decode()


def team_settings(folder: Path) -> dict[str, str]:
    """What a production team might set: another value than the default for every
    setting a project reads (its .env.example lists them), and a valid whole."""
    return {
        "ENVIRONMENT": "production",
        "SECRET_KEY": "team-" + base64.urlsafe_b64encode(bytes(range(48))).decode(),
        "DATABASE_URL": f"sqlite:///{folder / 'team.db'}",
        "PUBLIC_URL": "https://auth.team.example",
        "ALGORITHM": "RS256",
        "PRIVATE_KEY": team_private_key().replace("\n", "\\n"),  # or PRIVATE_KEY_FILE
        "ACCESS_TOKEN_EXPIRE_MINUTES": "5",
        "REFRESH_TOKEN_EXPIRE_DAYS": "1",
        "JWT_ISSUER": "https://issuer.team.example",
        "JWT_AUDIENCE": "team-api",
        "AUTO_MIGRATE": "false",
        "FIRST_SUPERUSER": "root",
        "FIRST_SUPERUSER_PASSWORD": "first superuser password of the team",
        "LOGIN_MAX_FAILURES": "1",
        "LOGIN_MAX_FAILURES_PER_ADDRESS": "2",
        "LOGIN_FAILURE_WINDOW_SECONDS": "60",
        "REGISTRATION_MAX_PER_HOUR": "1",
        "MAX_SESSIONS_PER_USER": "1",
        "MAX_BODY_BYTES": "100",
        "FORWARDED_ALLOW_IPS": "*",
        "PURGE_INTERVAL_SECONDS": "1",
        "CORS_ORIGINS": "https://app.team.example",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": "9",
        "SMTP_USER": "team",
        "SMTP_PASSWORD": "team mail password",
        "SMTP_SECURITY": "tls",
        "EMAIL_FROM": "auth@team.example",
        "PASSWORD_RESET_URL": "https://app.team.example/reset?token={token}",
        "PASSWORD_RESET_TOKEN_MINUTES": "5",
        "EMAIL_VERIFICATION_URL": "https://app.team.example/verify?token={token}",
        "REQUIRE_VERIFIED_EMAIL": "true",
        "MAIL_REQUESTS_MAX_PER_HOUR": "1",
        "PAGES_ENABLED": "false",
        "SESSION_IDLE_MINUTES": "5",
        "SESSION_MAX_HOURS": "1",
        "REQUIRE_MFA_FOR_SUPERUSERS": "true",
    }


@pytest.mark.parametrize("variant", variant_params())
def test_own_test_suite_passes_whatever_the_teams_settings(
    baked: Baked, env: Environment, database_url: Callable[[str], str], tmp_path: Path
) -> None:
    """Its own tests choose the settings they rely on: a .env and an environment
    that set every setting otherwise change nothing."""
    settings = team_settings(tmp_path)
    assert set(read_env_file(baked.path / ".env.example")) - {"PRIVATE_KEY_FILE"} == set(
        settings
    ), "team_settings must set every setting the project reads"
    # Its own temporary root: pytest would otherwise sweep old runs (whole
    # environments of this suite) out of the shared one, every time.
    overrides = {**settings, "PYTEST_DEBUG_TEMPROOT": str(tmp_path)}
    if baked.answers["database"] == "postgresql":
        overrides["TEST_DATABASE_URL"] = database_url("tests")
    env_file = baked.path / ".env"
    generated = env_file.read_text()
    env_file.write_text("".join(f"{name}={value}\n" for name, value in settings.items()))
    try:
        result = run(
            [env.bin("python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=baked.path,
            env=clean_env(baked, **overrides),
        )
    finally:
        env_file.write_text(generated)
    assert " passed" in result.stdout
    assert "skipped" not in result.stdout


@pytest.mark.parametrize("variant", variant_params(pairwise=True))
def test_serves_the_seed_flows_and_refuses_hostile_input_over_http(
    serve: Callable[..., str], tmp_path: Path
) -> None:
    server = serve("serve", cheap_hashing=True, MAX_BODY_BYTES="1000")
    # Seed 002: create a user with JSON, then log in with the OAuth2 form.
    status, user = http(
        "POST", f"{server}/users/", json_body={"username": "JohnDoe", "password": "johnspassword"}
    )
    assert status == 201
    assert user["username"] == "JohnDoe"
    assert "hashed_password" not in user
    status, token = http(
        "POST", f"{server}/token", form={"username": "JohnDoe", "password": "johnspassword"}
    )
    assert status == 200
    assert token["token_type"] == "bearer"

    # Seeds 000, 001, 003: the token opens GET /users/me.
    status, me = http("GET", f"{server}/users/me", token=token["access_token"])
    assert (status, me["username"]) == (200, "JohnDoe")

    # Seed 004: register, log in with JSON, call the protected route.
    credentials = {"username": "testuser", "password": "testpass"}
    assert http("POST", f"{server}/register", json_body=credentials)[0] == 201
    status, token = http("POST", f"{server}/login", json_body=credentials)
    assert status == 200
    status, greeting = http("GET", f"{server}/protected", token=token["access_token"])
    assert (status, greeting) == (200, {"message": "Welcome testuser"})

    # And the refusals the seeds promise.
    status, body = http("POST", f"{server}/token", form={"username": "JohnDoe", "password": "nope"})
    assert (status, body) == (401, {"detail": "Incorrect username or password"})
    assert http("GET", f"{server}/users/me")[0] == 401
    assert http("POST", f"{server}/register", json_body=credentials)[0] == 409

    refuses_hostile_input(server, tmp_path / "serve.log", credentials)


#: Bodies no client should send; each must be refused with a 4xx. ``{secret}`` is the
#: password of the test, which must then appear nowhere in the server's log.
HOSTILE = [
    ("POST", "/users/", b'{"username": "x\\ud800", "password": "{secret}"}'),
    ("POST", "/register", b'{"username": "nul\\u0000", "password": "{secret}"}'),
    ("POST", "/users/", b'{"username": "eve", "password": "{secret}", "full_name": "\\u0000"}'),
    ("POST", "/login", b'{"username": "testuser", "password": "{secret}\\ud800"}'),
    ("POST", "/login", b"username=testuser&password={secret}"),
    ("POST", "/token", b'{"password": "{secret}"}'),
    ("POST", "/token/refresh", b'{"refresh_token": "{secret}\\u001b"}'),
    ("POST", "/users/", b'{"username": "big", "password": "' + b"x" * 1000 + b'"}'),
]
#: What a password hash or a JWT looks like, whatever its value.
SECRET_SHAPES = re.compile(r"\$argon2|\$2[aby]\$|eyJ[A-Za-z0-9_-]{10,}")


def refuses_hostile_input(server: str, log: Path, user: dict[str, str]) -> None:
    """Each HOSTILE body is a 4xx that repeats no password; a token with a header
    of the wrong type is a 401; and then the server's log holds no password, hash
    or token, and no traceback."""
    secret = user["password"]
    status, tokens = http("POST", f"{server}/login", json_body=user)
    assert status == 200
    answers = [
        call(method, f"{server}{path}", raw=body.replace(b"{secret}", secret.encode()))
        for method, path, body in HOSTILE
    ]
    assert [answer.status for answer in answers] == [422] * 7 + [413]
    assert all(secret.encode() not in answer.body for answer in answers)
    crit = forge_header(tokens["access_token"], {"alg": "HS256", "crit": 1})
    assert http("GET", f"{server}/users/me", token=crit)[0] == 401
    assert http("POST", f"{server}/login", json_body={**user, "password": "wrong"})[0] == 401

    text = log.read_text()
    assert '"event": "login_failed"' in text  # the service's own lines are in it
    for secret_value in (secret, tokens["access_token"], tokens["refresh_token"]):
        assert secret_value not in text
    assert not SECRET_SHAPES.search(text)
    assert "Traceback" not in text


@pytest.mark.parametrize("variant", variant_params(one_per="password_hashing"))
def test_logs_in_with_passwords_hashed_at_production_cost(serve: Callable[..., str]) -> None:
    """The hashers exactly as configured: a user registers, logs in, and the token
    opens GET /users/me; a password differing in its last character does not."""
    server = serve("production-hashing")
    password = "correct horse battery staple"
    user = {"username": "carol", "password": password}
    assert http("POST", f"{server}/register", json_body=user)[0] == 201
    status, token = http("POST", f"{server}/login", json_body=user)
    assert status == 200
    status, me = http("GET", f"{server}/users/me", token=token["access_token"])
    assert (status, me["username"]) == (200, "carol")
    near_miss = {"username": "carol", "password": password[:-1] + "!"}
    assert http("POST", f"{server}/login", json_body=near_miss)[0] == 401


#: The README's other service, asked who each token belongs to: as given, then
#: with its signature changed.
ASK_WHOAMI = """
import sys

from fastapi.testclient import TestClient

import whoami

user_id, with_second_factor, *tokens = sys.argv[1:]
client = TestClient(whoami.app)
for token in tokens:
    mine = client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    assert (mine.status_code, mine.json()) == (200, {"user_id": user_id}), mine.text
    forged = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    other = client.get("/whoami", headers={"Authorization": f"Bearer {forged}"})
    assert other.status_code == 401, other.text
    password_only = client.get("/payouts", headers={"Authorization": f"Bearer {token}"})
    assert password_only.status_code == 403, password_only.text
strong = client.get("/payouts", headers={"Authorization": f"Bearer {with_second_factor}"})
assert strong.status_code == 200, strong.text
"""


def token_header(token: str) -> dict:
    segment = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def verify_with_another_library(
    library: str, token: str, jwks: dict, issuer: str, audience: str
) -> dict:
    """The token's claims, checked by a JWT library the variant did not choose
    (PyJWT, or joserfc for PyJWT variants) with the published keys alone."""
    (key,) = [key for key in jwks["keys"] if key["kid"] == token_header(token)["kid"]]
    if library != "pyjwt":
        return jwt.decode(
            token, jwt.PyJWK(key), algorithms=[key["alg"]], audience=audience, issuer=issuer
        )
    decoded = joserfc_jwt.decode(token, KeySet.import_key_set({"keys": [key]}), [key["alg"]])
    checks = {"iss": {"essential": True, "value": issuer}, "aud": {"value": audience}}
    joserfc_jwt.JWTClaimsRegistry(**checks).validate(decoded.claims)
    return decoded.claims


#: One variant per JWT library, both databases among them: checking a token is the
#: library's work, keeping the keys the database's (each variant's own tests cover
#: rotation on its database).
@pytest.mark.parametrize("variant", variant_params(one_per="jwt_library", covering="database"))
def test_other_services_verify_tokens_across_a_key_rotation_as_the_readme_shows(
    baked: Baked,
    env: Environment,
    serve: Callable[..., str],
    database_url: Callable[[str], str],
    tmp_path: Path,
) -> None:
    """Two service processes on one database, signing with keys the service made
    itself (ES256, the default). The README's "Verifying tokens in another service", run as written
    (its AUTH_URL pointed at the service), and another JWT library than the
    variant's, with the published keys alone, accept tokens from either process;
    after `rotate-keys` both processes sign with the new key at once, and tokens of
    the old key and of the new one verify everywhere."""
    shared = {"DATABASE_URL": database_url("keys")}
    first = serve("keys-first", cheap_hashing=True, **shared)
    second = serve("keys-second", cheap_hashing=True, **shared)
    credentials = {"username": "alice", "password": "correct horse battery staple"}
    status, user = http("POST", f"{first}/register", json_body=credentials)
    assert status == 201, user

    def log_in(server: str) -> tuple[str, str]:
        status, tokens = http("POST", f"{server}/login", json_body=credentials)
        assert status == 200, tokens
        return tokens["access_token"], token_header(tokens["access_token"])["kid"]

    old, old_kid = log_in(first)
    assert log_in(second)[1] == old_kid  # one key between them
    run(
        [env.bin("python"), "-m", baked.package, "rotate-keys"],
        cwd=baked.path,
        env=clean_env(baked, **shared),
    )
    (new, new_kid), (other, other_kid) = log_in(first), log_in(second)
    assert old_kid != new_kid == other_kid  # both sign with the new key, no restart
    assert http("GET", f"{first}/users/me", token=other)[0] == 200
    assert http("GET", f"{second}/users/me", token=old)[0] == 200

    status, jwks = http("GET", f"{second}/.well-known/jwks.json")
    assert status == 200
    assert [key["kid"] for key in jwks["keys"]] == [new_kid, old_kid]
    status, metadata = http("GET", f"{second}/.well-known/oauth-authorization-server")
    assert (status, metadata["jwks_uri"]) == (200, "http://localhost:8000/.well-known/jwks.json")
    issuer, audience = metadata["issuer"], baked.context["project_slug"]
    for token in (old, new, other):
        claims = verify_with_another_library(
            baked.answers["jwt_library"], token, jwks, issuer, audience
        )
        assert claims["sub"] == str(user["id"])
        assert claims["amr"] == ["pwd"]

    # A sign-in with a second factor: its tokens say so, whoever reads them.
    status, started = http(
        "POST",
        f"{first}/users/me/mfa/totp",
        json_body={"password": credentials["password"]},
        token=new,
    )
    assert status == 200, started
    app = pyotp.TOTP(started["secret"])
    confirm = {"otp": app.now()}
    status, _ = http("POST", f"{first}/users/me/mfa/totp/confirm", json_body=confirm, token=new)
    assert status == 200
    status, asked = http("POST", f"{second}/login", json_body=credentials)
    assert (status, asked["error"]) == (403, "mfa_required")
    code = app.at(time.time() + 30)  # the next step's: the current one is used up
    proof = {"mfa_token": asked["mfa_token"], "otp": code}
    status, tokens = http("POST", f"{second}/login/mfa", json_body=proof)
    assert status == 200, tokens
    strong = tokens["access_token"]
    claims = verify_with_another_library(
        baked.answers["jwt_library"], strong, jwks, issuer, audience
    )
    assert claims["amr"] == ["pwd", "otp", "mfa"]

    readme = (baked.path / "README.md").read_text()
    section = readme[readme.index("## Verifying tokens in another service") :]
    example = re.search(r"```python\n(.*?)```", section, re.S)
    assert example, "the section shows its code"
    code, replaced = re.subn(r'^AUTH_URL = ".*?"', f'AUTH_URL = "{first}"', example[1], flags=re.M)
    assert replaced == 1
    (tmp_path / "whoami.py").write_text(code)
    config = ["--config", baked.path / "pyproject.toml", "--no-cache"]
    run([env.bin("ruff"), "check", *config, tmp_path / "whoami.py"])  # the project's style
    run([env.bin("ruff"), "format", "--check", *config, tmp_path / "whoami.py"])
    run(
        [env.bin("python"), "-c", ASK_WHOAMI, str(user["id"]), strong, old, new],
        cwd=tmp_path,
        env=clean_env(baked, PYTHONPATH=str(tmp_path)),
    )


class Inbox:
    """What an aiosmtpd server accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp_inbox() -> Iterator[tuple[int, Inbox]]:
    """A real SMTP server in this process: its port and what it received."""
    inbox = Inbox()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=free_port(), server_hostname="mail.test"
    )
    controller.start()
    yield controller.port, inbox
    controller.stop()


@pytest.mark.parametrize("variant", variant_params(one_per="database"))
def test_a_forgotten_password_is_reset_through_a_real_mail_server(
    serve: Callable[..., str], smtp_inbox: tuple[int, Inbox], tmp_path: Path
) -> None:
    """The service as deployed (uvicorn, production settings) refuses an address
    that mail software would rewrite (an RFC 2047 encoded word that once stopped
    every mail behind it), mails the link over SMTP after answering; the link's
    token sets a new password once; neither the token nor a password reaches the
    log."""
    port, inbox = smtp_inbox
    server = serve(
        "reset",
        cheap_hashing=True,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(port),
        SMTP_SECURITY="none",
        EMAIL_FROM="accounts@example.com",
        PASSWORD_RESET_URL="https://app.example/reset?token={token}",
    )
    crafted = "=?utf-8?q?evil=0D=0ABcc=3A_x=40evil.test?=@example.test"
    mallory = {"username": "mallory", "password": "mallory's password", "email": crafted}
    assert http("POST", f"{server}/register", json_body=mallory)[0] == 422
    user = {"username": "dana", "password": "old password 123", "email": "dana@example.com"}
    assert http("POST", f"{server}/register", json_body=user)[0] == 201
    assert http("POST", f"{server}/password-reset", json_body={"email": user["email"]})[0] == 202
    # The registration's verification mail (a link to the service's own page) comes
    # first; then the reset mail, with a link to PASSWORD_RESET_URL.
    reset = re.compile(r"https://app\.example/reset\?token=([A-Za-z0-9_-]+)")
    deadline = time.monotonic() + 10
    token = None
    while token is None and time.monotonic() < deadline:
        time.sleep(0.02)
        texts = [m.get_body(("plain",)).get_content() for m in inbox.messages]
        token = next(filter(None, map(reset.search, texts)), None)
    assert token, "no reset mail"
    assert all(message["To"] == user["email"] for message in inbox.messages)
    body = {"token": token[1], "new_password": "new password 456"}
    assert call("POST", f"{server}/password-reset/confirm", json_body=body).status == 204
    assert call("POST", f"{server}/password-reset/confirm", json_body=body).status == 400
    login = {"username": "dana", "password": "new password 456"}
    assert http("POST", f"{server}/login", json_body=login)[0] == 200
    assert (
        http("POST", f"{server}/login", json_body={**login, "password": user["password"]})[0] == 401
    )
    log = (tmp_path / "reset.log").read_text()
    assert '"event": "mail_sent"' in log
    for secret in (token[1], user["password"], body["new_password"]):
        assert secret not in log
