"""Logging in: POST /token (OAuth2 form) and POST /login (JSON)."""

import asyncio
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from pwdlib import PasswordHash
from sqlalchemy import select, update

{{ imports(database="SessionLocal, engine", passwords="", user_models="User") }}

from .conftest import FAST_HASHERS, PASSWORD, bearer, me_status


def post_login(client: TestClient, route: str, username: str, password: str):
    """The raw answer of a login at ``route`` (form for /token, JSON for /login)."""
    if route == "/token":
        return client.post("/token", data={"username": username, "password": password})
    return client.post("/login", json={"username": username, "password": password})


ROUTES = pytest.mark.parametrize("route", ["/token", "/login"])


def stored_hash(username: str) -> str:
    with SessionLocal() as session:
        return session.scalar(
            select(User.hashed_password).where(User.username == username)
        )


@ROUTES
def test_login_returns_a_bearer_token_that_works(
    client: TestClient, user: dict, route: str
) -> None:
    response = post_login(client, route, "alice", PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] > 0
    me = client.get("/users/me", headers=bearer(body["access_token"]))
    assert me.json()["username"] == "alice"


@ROUTES
def test_username_is_case_insensitive_at_login(
    client: TestClient, user: dict, route: str
) -> None:
    assert post_login(client, route, "ALICE", PASSWORD).status_code == 200


@ROUTES
@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "wrong password"), ("nobody", PASSWORD), ("alice", PASSWORD.upper())],
)
def test_bad_credentials_get_one_generic_401(
    client: TestClient, user: dict, route: str, username: str, password: str
) -> None:
    response = post_login(client, route, username, password)
    assert response.status_code == 401
    assert response.json() == {"detail": "Incorrect username or password"}
    assert response.headers["www-authenticate"] == "Bearer"


def test_empty_fields_are_422_in_the_form_and_401_in_json(
    client: TestClient, user: dict
) -> None:
    assert post_login(client, "/token", "alice", "").status_code == 422
    assert post_login(client, "/login", "alice", "").status_code == 401
    assert post_login(client, "/login", "", "").status_code == 401


def test_unknown_user_costs_a_password_check(
    client: TestClient, fast_hashing: PasswordHash, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = []
    for hasher in fast_hashing.hashers:
        original = hasher.verify
        monkeypatch.setattr(
            hasher,
            "verify",
            lambda p, h, original=original: checks.append(h) or original(p, h),
        )
    assert post_login(client, "/token", "nobody", PASSWORD).status_code == 401
    assert len(checks) == 1


def test_inactive_user_cannot_log_in_and_its_tokens_stop_working(
    client: TestClient, token: str
) -> None:
    with SessionLocal() as session:
        session.execute(update(User).values(is_active=False))
        session.commit()
    assert post_login(client, "/token", "alice", PASSWORD).status_code == 401
    assert me_status(client, token) == 401


@ROUTES
def test_password_over_the_byte_limit_is_401_not_500(
    client: TestClient, user: dict, route: str
) -> None:
    for password in (
        PASSWORD + "x" * (passwords.MAX_BYTES + 1 - len(PASSWORD)),
        "é" * 5000,
    ):
        response = post_login(client, route, "alice", password)
        assert response.status_code == 401


def test_password_over_the_byte_limit_is_refused_at_registration(
    client: TestClient,
) -> None:
    response = client.post(
        "/users/", json={"username": "bob", "password": "x" * (passwords.MAX_BYTES + 1)}
    )
    assert response.status_code == 422
    assert str(passwords.MAX_BYTES) in response.text


def test_password_at_the_byte_limit_works(client: TestClient) -> None:
    password = "é" * (passwords.MAX_BYTES // 2)  # two bytes each
    assert (
        client.post(
            "/users/", json={"username": "bob", "password": password}
        ).status_code
        == 201
    )
    assert post_login(client, "/login", "bob", password).status_code == 200
    assert post_login(client, "/login", "bob", password[:-1]).status_code == 401


def test_legacy_hash_is_upgraded_on_login(client: TestClient, user: dict) -> None:
    primary, secondary = FAST_HASHERS
    with SessionLocal() as session:
        session.execute(update(User).values(hashed_password=secondary.hash(PASSWORD)))
        session.commit()
    assert secondary.identify(stored_hash("alice"))

    assert post_login(client, "/token", "alice", PASSWORD).status_code == 200
    assert primary.identify(stored_hash("alice"))
    assert post_login(client, "/token", "alice", PASSWORD).status_code == 200


def test_legacy_bcrypt_hash_with_long_password_is_401_not_500(
    client: TestClient, user: dict
) -> None:
    bcrypt = next(h for h in FAST_HASHERS if type(h).__name__ == "BcryptHasher")
    with SessionLocal() as session:
        session.execute(update(User).values(hashed_password=bcrypt.hash(PASSWORD)))
        session.commit()
    long_password = PASSWORD + "x" * (73 - len(PASSWORD))
    assert post_login(client, "/login", "alice", long_password).status_code == 401


def test_unreadable_stored_hash_is_401_not_500(client: TestClient, user: dict) -> None:
    with SessionLocal() as session:
        session.execute(update(User).values(hashed_password="not-a-hash"))
        session.commit()
    assert post_login(client, "/token", "alice", PASSWORD).status_code == 401


def test_login_form_is_the_oauth2_password_flow(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    flows = schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]
    assert flows["password"]["tokenUrl"] == "token"


def test_no_database_connection_is_held_while_hashing(
    client: TestClient, user: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A login waiting for a hasher must not keep a pooled connection from others."""
    held: list[int] = []
    check = passwords._verify

    def spy(password: str, hashed: str | None) -> tuple[bool, str | None]:
        held.append(engine.pool.checkedout())
        return check(password, hashed)

    monkeypatch.setattr(passwords, "_verify", spy)
    response = client.post("/token", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    assert held == [0]


def test_password_checks_wait_for_a_hasher_without_a_thread_and_in_a_bounded_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Hashing never takes more threads than HASHERS has, a check waiting for one
    holds no thread, and beyond MAX_PENDING checks the next is refused at once."""
    hashers = ThreadPoolExecutor(max_workers=1)
    monkeypatch.setattr(passwords, "HASHERS", hashers)
    monkeypatch.setattr(passwords, "_pending", threading.BoundedSemaphore(3))
    hashed = passwords.hash_password_blocking(PASSWORD)
    busy = threading.Event()
    hashers.submit(busy.wait)  # the only hasher is taken

    async def checks() -> list[tuple[bool, str | None]]:
        threads = threading.active_count()
        waiting = [
            asyncio.create_task(passwords.verify_password(PASSWORD, hashed))
            for _ in range(3)
        ]
        await asyncio.sleep(0.05)
        assert not any(task.done() for task in waiting)
        assert threading.active_count() == threads
        with pytest.raises(passwords.HashingBusyError):
            await passwords.verify_password(PASSWORD, hashed)
        busy.set()
        return list(await asyncio.gather(*waiting))

    assert asyncio.run(checks()) == [(True, None)] * 3
    hashers.shutdown()


def test_passwords_match_however_their_characters_were_composed(
    client: TestClient,
) -> None:
    composed, decomposed = "caf\u00e9 au lait", "cafe\u0301 au lait"
    body = {"username": "marie", "password": composed}
    assert client.post("/register", json=body).status_code == 201
    assert post_login(client, "/login", "marie", decomposed).status_code == 200


def test_a_hash_made_before_normalisation_still_logs_in_and_is_upgraded(
    client: TestClient, user: dict, fast_hashing: PasswordHash
) -> None:
    typed = "cafe\u0301 au lait"  # hashed as typed, before passwords were normalised
    with SessionLocal() as session:
        session.execute(
            update(User)
            .where(User.username == "alice")
            .values(hashed_password=fast_hashing.hash(typed))
        )
        session.commit()
    assert post_login(client, "/login", "alice", typed).status_code == 200
    assert fast_hashing.verify(passwords.normalize(typed), stored_hash("alice"))
    assert post_login(client, "/login", "alice", "caf\u00e9 au lait").status_code == 200


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priority is Linux's")
def test_hashing_threads_run_at_low_priority() -> None:
    def priority() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    assert passwords.HASHERS.submit(priority).result() > priority()
