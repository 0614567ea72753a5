"""Refresh tokens: rotation, reuse detection, logout, and no type confusion."""

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

{{ imports(auth_models="AuthSession, LoginThrottle, RefreshToken", auth_service="purge", config="settings", database="SessionLocal, utcnow", user_models="User") }}

from .conftest import PASSWORD, bearer, login, me_status


def refresh_json(client: TestClient, refresh_token: str):
    return client.post("/token/refresh", json={"refresh_token": refresh_token})


def refresh_form(client: TestClient, refresh_token: str):
    return client.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )


WAYS = pytest.mark.parametrize(
    "refresh", [refresh_json, refresh_form], ids=["json", "form"]
)


@pytest.mark.parametrize("route", ["/token", "/login"])
def test_logins_return_a_refresh_token(
    client: TestClient, user: dict, route: str
) -> None:
    credentials = {"username": "alice", "password": PASSWORD}
    if route == "/token":
        response = client.post(route, data=credentials)
    else:
        response = client.post(route, json=credentials)
    body = response.json()
    assert body["refresh_token"]
    assert body["refresh_expires_in"] > body["expires_in"] > 0


@WAYS
def test_refresh_returns_a_new_working_pair(
    client: TestClient, tokens: dict, refresh
) -> None:
    response = refresh(client, tokens["refresh_token"])
    assert response.status_code == 200
    fresh = response.json()
    assert fresh["refresh_token"] != tokens["refresh_token"]
    assert me_status(client, fresh["access_token"]) == 200
    assert refresh(client, fresh["refresh_token"]).status_code == 200


@WAYS
def test_reusing_a_rotated_token_revokes_the_whole_login(
    client: TestClient, tokens: dict, refresh
) -> None:
    fresh = refresh(client, tokens["refresh_token"]).json()
    reused = refresh(client, tokens["refresh_token"])
    assert reused.status_code == 401
    assert reused.json() == {"detail": "Invalid refresh token"}
    # The newer tokens of that login are dead too, access tokens included.
    assert refresh(client, fresh["refresh_token"]).status_code == 401
    assert me_status(client, fresh["access_token"]) == 401
    assert me_status(client, tokens["access_token"]) == 401


def test_reuse_in_one_login_leaves_other_logins_alone(
    client: TestClient, tokens: dict
) -> None:
    other = login(client, "alice", PASSWORD)
    refresh_json(client, tokens["refresh_token"])
    refresh_json(client, tokens["refresh_token"])  # reuse
    assert me_status(client, other["access_token"]) == 200
    assert refresh_json(client, other["refresh_token"]).status_code == 200


@WAYS
def test_an_access_token_is_not_a_refresh_token(
    client: TestClient, tokens: dict, refresh
) -> None:
    assert refresh(client, tokens["access_token"]).status_code == 401


def test_a_refresh_token_is_not_an_access_token(
    client: TestClient, tokens: dict
) -> None:
    response = client.get("/users/me", headers=bearer(tokens["refresh_token"]))
    assert response.status_code == 401


@WAYS
def test_unknown_or_expired_refresh_token_is_401(
    client: TestClient, tokens: dict, refresh
) -> None:
    assert refresh(client, "not-a-refresh-token").status_code == 401
    with SessionLocal() as session:
        session.execute(
            update(RefreshToken).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    assert refresh(client, tokens["refresh_token"]).status_code == 401


def test_refresh_grant_without_token_is_422(client: TestClient) -> None:
    assert (
        client.post("/token", data={"grant_type": "refresh_token"}).status_code == 422
    )
    assert (
        client.post("/token", data={"grant_type": "client_credentials"}).status_code
        == 422
    )


def test_logout_ends_that_login_only(client: TestClient, tokens: dict) -> None:
    other = login(client, "alice", PASSWORD)
    response = client.post("/logout", json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 204
    assert refresh_json(client, tokens["refresh_token"]).status_code == 401
    assert me_status(client, tokens["access_token"]) == 401
    assert me_status(client, other["access_token"]) == 200


def test_logout_with_an_unknown_token_reveals_nothing(client: TestClient) -> None:
    assert client.post("/logout", json={"refresh_token": "unknown"}).status_code == 204


def test_deactivated_user_cannot_refresh(client: TestClient, tokens: dict) -> None:
    with SessionLocal() as session:
        session.execute(update(User).values(is_active=False))
        session.commit()
    assert refresh_json(client, tokens["refresh_token"]).status_code == 401


def rows(table: type) -> int:
    with SessionLocal() as session:
        return session.scalar(select(func.count()).select_from(table))


def test_a_purge_shrinks_the_tables_back(client: TestClient, user: dict) -> None:
    """Used and expired refresh tokens, ended logins and old throttle records go;
    live logins and their unused tokens stay."""
    live = login(client, "alice", PASSWORD)
    ended = login(client, "alice", PASSWORD)
    for _ in range(3):  # each rotation leaves a used token behind
        ended = refresh_json(client, ended["refresh_token"]).json()
    client.post("/logout", json={"refresh_token": ended["refresh_token"]})
    client.post("/token", data={"username": "alice", "password": "wrong password"})
    # Throttle records: the logins' address, and the failure's account at it.
    assert (rows(AuthSession), rows(RefreshToken), rows(LoginThrottle)) == (2, 5, 2)

    purge()  # now: the ended login and its tokens
    assert (rows(AuthSession), rows(RefreshToken), rows(LoginThrottle)) == (1, 1, 2)
    assert me_status(client, live["access_token"]) == 200

    later = utcnow() + timedelta(days=settings.refresh_token_expire_days, hours=2)
    purge(later)  # every token has expired, every throttle window is over
    assert (rows(AuthSession), rows(RefreshToken), rows(LoginThrottle)) == (0, 0, 0)
    assert rows(User) == 1


def test_purges_work_in_bounded_batches(client: TestClient, user: dict) -> None:
    for _ in range(5):
        tokens = login(client, "alice", PASSWORD)
        client.post("/logout", json={"refresh_token": tokens["refresh_token"]})
    assert purge(batch=2) == 2
    assert rows(AuthSession) == 3


def test_a_user_keeps_at_most_max_sessions_live_logins(
    client: TestClient, user: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "max_sessions_per_user", 3)
    logins = [login(client, "alice", PASSWORD) for _ in range(5)]
    live = [me_status(client, tokens["access_token"]) for tokens in logins]
    assert live == [401, 401, 200, 200, 200]  # the oldest ended first
