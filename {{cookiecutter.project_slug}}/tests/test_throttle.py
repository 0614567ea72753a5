"""Failed logins are throttled per account and per client address."""

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

{{ imports(config="settings", throttle="") }}

from .conftest import PASSWORD

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
    monkeypatch.setattr(settings, "login_failure_window_seconds", 5)
    now = throttle.utcnow()
    for step in range(LIMIT + 6):
        monkeypatch.setattr(
            throttle, "utcnow", lambda step=step: now + timedelta(seconds=step * 0.01)
        )
        attempt(client)
    assert int(attempt(client).headers["retry-after"]) <= 5


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


def test_one_client_guessing_many_accounts_is_throttled(
    client: TestClient, user: dict
) -> None:
    for name in ("bob", "carol", "dave"):
        assert attempt(client, username=name).status_code == 401
    assert attempt(client, password=PASSWORD).status_code == 429


def test_unknown_accounts_are_throttled_like_known_ones(client: TestClient) -> None:
    fail(client, LIMIT, username="nobody")
    assert attempt(client, username="nobody").status_code == 429


def test_a_success_clears_the_account_record(client: TestClient, user: dict) -> None:
    fail(client, LIMIT - 1)
    assert attempt(client, password=PASSWORD).status_code == 200
    assert attempt(client).status_code == 401  # counted afresh for the account


def test_zero_turns_throttling_off(
    client: TestClient, user: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "login_max_failures", 0)
    fail(client, LIMIT * 3)
    assert attempt(client, password=PASSWORD).status_code == 200
