"""Test set-up: a throwaway database, a fixed secret and cheap password hashing.

Runs on a temporary sqlite file by default (on the RAM disk where there is one);
set TEST_DATABASE_URL to run the same tests against PostgreSQL (the database must
exist and may be empty).

The tests choose every setting they rely on: neither the project's .env nor a
setting in the developer's environment changes what they see. The service reads
its settings once, when its config is first imported, hence the late imports.
"""

import base64
import contextlib
import gc
import json
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest

# In memory where the system has a RAM disk (the tests commit often); mkdtemp makes
# a private folder with a random name there.
RAM_DISK = Path("/dev/shm")  # noqa: S108
_tmp = tempfile.TemporaryDirectory(
    prefix="service-tests-", dir=RAM_DISK if RAM_DISK.is_dir() else None
)
#: The settings the tests start from; every other setting has its default.
TEST_SETTINGS = {
    "ENVIRONMENT": "test",
    "SECRET_KEY": "test-secret-key-that-is-long-enough-for-hs512-0123456789-abcdefghij",
    "DATABASE_URL": os.environ.get("TEST_DATABASE_URL")
    or f"sqlite:///{Path(_tmp.name) / 'test.db'}",
}

# Read with nothing else in the environment, from a folder with no .env...
with (
    contextlib.chdir(_tmp.name),
    mock.patch.dict(os.environ, TEST_SETTINGS, clear=True),
):
    {{ imports(config="Settings") | indent(4) }}
# ...and the same for the settings tests make themselves.
for name in [name for name in os.environ if name.lower() in Settings.model_fields]:
    del os.environ[name]
os.environ.update(TEST_SETTINGS)

import pyotp
from fastapi.testclient import TestClient
from pwdlib import PasswordHash

{{ imports(auth_models="StoredKey", auth_service="start_session", database="SessionLocal, Base", main="app", mfa="as mfa", passwords="", user_schemas="UserCreate, UserPublic", user_service="create_user") }}

from .cheap_hashing import cheap

#: Same algorithms, in the same order, as production, at the lowest cost.
FAST_HASHERS = cheap(passwords.password_hash).hashers

PASSWORD = "correct horse battery staple"


def pytest_collection_finish() -> None:
    """The service and the tests, now imported, live as long as the run: keep the
    garbage collector from walking all of them again at every full collection."""
    gc.freeze()


@pytest.fixture(scope="session", autouse=True)
def _cleanup_tmp() -> Iterator[None]:
    yield
    _tmp.cleanup()


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> PasswordHash:
    hasher = PasswordHash(FAST_HASHERS)
    monkeypatch.setattr(passwords, "password_hash", hasher)
    return hasher


@pytest.fixture(scope="session")
def client() -> Iterator[TestClient]:
    with TestClient(app) as test_client:  # runs start-up: migrations, signing key
        yield test_client


@pytest.fixture(autouse=True)
def _empty_tables(client: TestClient) -> Iterator[None]:
    """Every test starts with no user, login, throttle record or cookie; the
    signing key made at start-up stays (tests that change keys put it back)."""
    yield
    client.cookies.clear()
    with SessionLocal() as session:
        for table in reversed(Base.metadata.sorted_tables):
            if table is not StoredKey.__table__:
                session.execute(table.delete())
        session.commit()


def add_user(username: str, *, superuser: bool = False) -> dict[str, object]:
    """A user with PASSWORD, stored as registration stores it but without the API's
    round trips (registering is tested through the API in test_users), as the API
    shows it."""
    data = UserCreate(username=username, password=PASSWORD)
    hashed = passwords.password_hash.hash(passwords.normalize(PASSWORD))
    with SessionLocal.begin() as session:
        created = create_user(session, data, hashed, is_superuser=superuser)
        return UserPublic.model_validate(created).model_dump(mode="json")


def start_login(user: dict[str, object]) -> dict[str, str]:
    """A login of ``user`` as POST /token starts one (logging in is tested through
    the API in test_auth): its access and refresh tokens."""
    with SessionLocal.begin() as session:
        return start_session(session, int(str(user["id"]))).model_dump()


@pytest.fixture
def user(client: TestClient) -> dict[str, object]:
    """A registered user, alice, as the API shows her."""
    return add_user("alice")


@pytest.fixture
def tokens(client: TestClient, user: dict[str, object]) -> dict[str, str]:
    """A login of that user: access and refresh tokens."""
    return start_login(user)


@pytest.fixture
def token(tokens: dict[str, str]) -> str:
    return tokens["access_token"]


def login(client: TestClient, username: str, password: str) -> dict[str, str]:
    response = client.post("/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


#: Where the service's pages are served from (PUBLIC_URL), as browsers say it.
ORIGIN = "http://localhost:8000"


def sign_in(client: TestClient, username: str = "alice") -> dict[str, str]:
    """Sign in as a browser app does (POST /session): the client keeps the session
    cookie; the headers to send with requests that change state."""
    response = client.post(
        "/session",
        json={"username": username, "password": PASSWORD},
        headers={"Origin": ORIGIN},
    )
    assert response.status_code == 200, response.text
    return {"X-CSRF-Token": response.json()["csrf_token"], "Origin": ORIGIN}


class Clock:
    """The time the service reads authenticator codes at; codes computed as the
    user's app would compute them then (``steps`` time steps of 30 s away)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 2, 12, 0, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def code(self, secret: str, steps: int = 0) -> str:
        return pyotp.TOTP(secret).at(self.now + timedelta(seconds=30 * steps))

    def tick(self, steps: int = 1) -> None:
        self.now += timedelta(seconds=30 * steps)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The time the service reads codes at, in the test's hands."""
    clock = Clock()
    monkeypatch.setattr(mfa, "utcnow", clock)
    return clock


def logged(caplog: pytest.LogCaptureFixture, event: str) -> list[dict]:
    """The fields of each ``event`` line the service logged."""
    return [record.fields for record in caplog.records if record.msg == event]


def b64(data: bytes) -> str:
    """Unpadded base64url, as JWT segments are written."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(segment: str) -> bytes:
    """Unpadded base64url (JWT segments and JWK members), decoded."""
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def token_part(token: str, part: int) -> dict:
    """A JWT's header (``part`` 0) or claims (1), read without any check."""
    return json.loads(unb64(token.split(".")[part]))


def me_status(client: TestClient, access_token: str) -> int:
    """What GET /users/me answers to this access token."""
    return client.get("/users/me", headers=bearer(access_token)).status_code


def login_statuses(client: TestClient, tokens: dict[str, str]) -> tuple[int, int]:
    """What GET /users/me and POST /token/refresh answer to a login's two tokens."""
    refreshed = client.post(
        "/token/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    return me_status(client, tokens["access_token"]), refreshed.status_code
