"""Password guesses are throttled per account and address, then per address; the
limits hold under concurrency and cannot be turned on a victim."""

import threading
from datetime import timedelta

import anyio
import pytest
from fastapi.testclient import TestClient

{{ imports(auth_service="log_in", config="settings", main="app", passwords="", throttle="") }}

from .conftest import PASSWORD, bearer

LIMIT = 3


@pytest.fixture(autouse=True)
def limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "login_max_failures", LIMIT)


def attempt(
    client: TestClient, username: str = "alice", password: str = "wrong password"
):
    return client.post("/token", data={"username": username, "password": password})


def fail(client: TestClient, times: int, username: str = "alice") -> None:
    for _ in range(times):
        assert attempt(client, username).status_code == 401


def from_address(address: str) -> TestClient:
    """A client seen at another address (the app is started by ``client``)."""
    return TestClient(app, client=(address, 50000))


def test_failures_up_to_the_limit_are_plain_401s(
    client: TestClient, user: dict
) -> None:
    fail(client, LIMIT)


def test_after_the_limit_even_the_right_password_gets_429(
    client: TestClient, user: dict
) -> None:
    fail(client, LIMIT)
    response = attempt(client, password=PASSWORD)
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    json_login = client.post("/login", json={"username": "alice", "password": PASSWORD})
    assert json_login.status_code == 429


def test_the_lock_doubles_with_each_further_failure(
    client: TestClient, user: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = throttle.utcnow()
    waits = []
    for step in range(4):
        monkeypatch.setattr(
            throttle, "utcnow", lambda step=step: now + timedelta(hours=step)
        )
        if step:  # each step is after the previous lock, within a long window
            monkeypatch.setattr(settings, "login_failure_window_seconds", 10 * 3600)
        fail(client, LIMIT if step == 0 else 1)
        waits.append(int(attempt(client).headers["retry-after"]))
    assert waits == [1, 2, 4, 8]


def test_the_lock_never_outlasts_the_window(
    client: TestClient, user: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even for a record far over the limit (the operator lowered it)."""
    monkeypatch.setattr(settings, "login_max_failures", 20)
    fail(client, 15)
    monkeypatch.setattr(settings, "login_max_failures", LIMIT)
    fail(client, 1)  # 2 ** 13 seconds of backoff, but the window is shorter
    wait = int(attempt(client).headers["retry-after"])
    assert LIMIT < wait <= settings.login_failure_window_seconds


def test_logins_work_again_after_the_window(
    client: TestClient, user: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail(client, LIMIT)
    assert attempt(client, password=PASSWORD).status_code == 429
    later = throttle.utcnow() + timedelta(
        seconds=settings.login_failure_window_seconds + 1
    )
    monkeypatch.setattr(throttle, "utcnow", lambda: later)
    assert attempt(client, password=PASSWORD).status_code == 200


def test_a_success_clears_the_failures_of_its_account_and_address(
    client: TestClient, user: dict
) -> None:
    fail(client, LIMIT - 1)
    assert attempt(client, password=PASSWORD).status_code == 200
    fail(client, LIMIT - 1)  # counted afresh: still under the limit
    assert attempt(client, password=PASSWORD).status_code == 200


def test_someone_elses_failures_never_throttle_the_owner_elsewhere(
    client: TestClient, user: dict
) -> None:
    attacker = from_address("203.0.113.9")
    for _ in range(5 * LIMIT):
        assert attempt(attacker).status_code in (401, 429)
    assert attempt(attacker, password=PASSWORD).status_code == 429
    assert attempt(client, password=PASSWORD).status_code == 200


def test_one_address_guessing_many_accounts_is_throttled(
    client: TestClient, user: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "login_max_failures_per_address", 4)
    for name in ("bob", "carol", "dave", "erin"):
        assert attempt(client, username=name).status_code == 401
    assert attempt(client, password=PASSWORD).status_code == 429
    assert attempt(from_address("198.51.100.7"), password=PASSWORD).status_code == 200


def test_successes_give_their_place_in_the_address_limit_back(
    client: TestClient, user: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An office behind one address logs in all day."""
    monkeypatch.setattr(settings, "login_max_failures_per_address", 2)
    for _ in range(5):
        assert attempt(client, password=PASSWORD).status_code == 200


def test_unknown_accounts_are_throttled_like_known_ones(client: TestClient) -> None:
    fail(client, LIMIT, username="nobody")
    assert attempt(client, username="nobody").status_code == 429


def test_concurrent_guesses_check_no_more_passwords_than_the_limit(
    client: TestClient, user: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = []
    verify = passwords._verify

    def counted(password: str, hashed: str | None) -> tuple[bool, str | None]:
        checked.append(password)
        return verify(password, hashed)

    monkeypatch.setattr(passwords, "_verify", counted)

    async def guesses() -> list[str]:
        outcomes: list[str] = []

        async def guess(password: str) -> None:
            try:
                await log_in("alice", password, "192.0.2.1")
                outcomes.append("in")
            except Exception as error:
                outcomes.append(type(error).__name__)

        async with anyio.create_task_group() as group:
            for n in range(20):
                group.start_soon(guess, f"wrong password {n}")
            group.start_soon(guess, PASSWORD)
        return outcomes

    outcomes = anyio.run(guesses)
    assert len(checked) <= LIMIT
    assert outcomes.count("ThrottledError") >= 21 - LIMIT


def test_a_wrong_current_password_is_throttled_like_a_login(
    client: TestClient, token: str
) -> None:
    def change(current: str) -> int:
        body = {"current_password": current, "new_password": "a new password 123"}
        return client.post(
            "/users/me/password", json=body, headers=bearer(token)
        ).status_code

    assert [change("wrong password") for _ in range(LIMIT)] == [400] * LIMIT
    assert change(PASSWORD) == 429


def test_registrations_are_limited_per_address_and_hour(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "registration_max_per_hour", 2)

    def register(name: str, address: str = "testclient") -> int:
        body = {"username": name, "password": PASSWORD}
        return from_address(address).post("/register", json=body).status_code

    assert [register(name) for name in ("ann", "ben", "cat")] == [201, 201, 429]
    assert register("dan", "198.51.100.8") == 201
    later = throttle.utcnow() + timedelta(hours=1, seconds=1)
    monkeypatch.setattr(throttle, "utcnow", lambda: later)
    assert register("eve") == 201


def test_zero_turns_each_limit_off(
    client: TestClient, user: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "login_max_failures", 0)
    monkeypatch.setattr(settings, "login_max_failures_per_address", 0)
    monkeypatch.setattr(settings, "registration_max_per_hour", 0)
    fail(client, LIMIT * 3)
    assert attempt(client, password=PASSWORD).status_code == 200
    for n in range(3):
        body = {"username": f"user{n}", "password": PASSWORD}
        assert client.post("/register", json=body).status_code == 201


def test_a_busy_hasher_gives_the_attempts_place_back(
    client: TestClient, user: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A login refused for want of a hasher (503) was not a guess."""
    monkeypatch.setattr(settings, "login_max_failures", 1)
    full = threading.BoundedSemaphore(1)
    full.acquire()
    monkeypatch.setattr(passwords, "_pending", full)
    busy = attempt(client, password=PASSWORD)
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "1"
    full.release()
    assert attempt(client, password=PASSWORD).status_code == 200
