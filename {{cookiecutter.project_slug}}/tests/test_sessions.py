"""Browser sessions: the session cookie, its CSRF protection and lifetimes, the
short-lived token for other services, and the logins in view."""

import logging
from datetime import timedelta

import pytest
from fastapi import Response
from fastapi.testclient import TestClient
from sqlalchemy import select, update

{{ imports(auth_models="AuthSession", auth_service="purge", config="settings", database="SessionLocal, utcnow", dependencies="set_session_cookie") }}

from .conftest import (
    ORIGIN,
    PASSWORD,
    add_user,
    bearer,
    logged,
    login_statuses,
    me_status,
    sign_in,
    start_login,
)

COOKIE = settings.session_cookie


def cookie_status(client: TestClient, secret: str) -> int:
    """What GET /users/me answers to a session cookie holding ``secret``."""
    client.cookies.clear()
    return client.get("/users/me", headers={"Cookie": f"{COOKIE}={secret}"}).status_code


def test_signing_in_sets_one_hardened_cookie_with_an_opaque_secret(
    client: TestClient, user: dict
) -> None:
    response = client.post(
        "/session",
        json={"username": "alice", "password": PASSWORD},
        headers={"Origin": ORIGIN},
    )
    assert response.status_code == 200
    assert set(response.json()) == {"csrf_token"}
    [header] = response.headers.get_list("set-cookie")
    attributes = {part.strip().lower() for part in header.split(";")}
    assert {"httponly", "path=/", "samesite=lax"} <= attributes
    assert not any(part.startswith("domain") for part in attributes)
    secret = client.cookies[COOKIE]
    assert len(secret) >= 43 and "." not in secret  # random, never a JWT
    assert client.get("/users/me").json()["username"] == "alice"


def test_in_production_the_cookie_is_secure_and_host_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "environment", "production")
    response = Response()
    set_session_cookie(response, "secret")
    header = response.headers["set-cookie"]
    assert header.startswith("__Host-session=secret;")
    assert "Secure" in header and "Path=/" in header and "Domain" not in header


def test_the_cookie_opens_every_route_a_bearer_token_opens(
    client: TestClient, user: dict
) -> None:
    sign_in(client)
    assert client.get("/protected").json() == {"message": "Welcome alice"}
    assert client.get("/users/me/sessions").status_code == 200


def test_a_change_with_the_cookie_needs_the_csrf_token_and_an_allowed_origin(
    client: TestClient, user: dict
) -> None:
    other = add_user("bob")
    stolen = sign_in(client, "bob")["X-CSRF-Token"]  # another session's token
    client.cookies.clear()
    headers = sign_in(client)
    change = {"full_name": "Mallory"}
    refused = [
        {"Origin": ORIGIN},
        {"Origin": ORIGIN, "X-CSRF-Token": stolen},
        {"Origin": "https://evil.example", "X-CSRF-Token": headers["X-CSRF-Token"]},
        {"X-CSRF-Token": headers["X-CSRF-Token"]},  # no Origin at all
        {"Sec-Fetch-Site": "cross-site", "X-CSRF-Token": headers["X-CSRF-Token"]},
    ]
    for sent in refused:
        response = client.patch("/users/me", json=change, headers=sent)
        assert response.status_code == 403, sent
        assert (
            "CSRF" in response.json()["detail"] or "origin" in response.json()["detail"]
        )
    assert client.get("/users/me").json()["full_name"] is None  # nothing changed
    same_origin = {
        "Sec-Fetch-Site": "same-origin",
        "X-CSRF-Token": headers["X-CSRF-Token"],
    }
    assert (
        client.patch("/users/me", json=change, headers=same_origin).status_code == 200
    )
    assert client.patch("/users/me", json=change, headers=headers).status_code == 200
    # A bearer token needs neither: no browser sends it on its own.
    client.cookies.clear()
    token = start_login(other)["access_token"]
    assert (
        client.patch("/users/me", json=change, headers=bearer(token)).status_code == 200
    )


def test_a_secret_set_before_sign_in_is_never_the_session(
    client: TestClient, user: dict
) -> None:
    fixed = {"Cookie": f"{COOKIE}=chosen-by-an-attacker", "Origin": ORIGIN}
    credentials = {"username": "alice", "password": PASSWORD}
    assert client.post("/session", json=credentials, headers=fixed).status_code == 200
    secret = client.cookies[COOKIE]
    assert secret != "chosen-by-an-attacker"
    assert cookie_status(client, "chosen-by-an-attacker") == 401
    sign_in(client)  # again: a new secret
    assert client.cookies[COOKIE] != secret


def test_signing_out_ends_the_login_and_clears_the_cookie(
    client: TestClient, user: dict
) -> None:
    headers = sign_in(client)
    secret = client.cookies[COOKIE]
    assert client.delete("/session").status_code == 403  # no CSRF token
    response = client.delete("/session", headers=headers)
    assert response.status_code == 204
    assert 'session=""' in response.headers["set-cookie"]
    assert cookie_status(client, secret) == 401


@pytest.mark.parametrize("ending", ["password", "deactivation", "deletion"])
def test_what_ends_every_login_ends_browser_sessions(
    client: TestClient, user: dict, ending: str
) -> None:
    admin = add_user("root", superuser=True)
    admin_token = bearer(start_login(admin)["access_token"])
    headers = sign_in(client)
    secret = client.cookies[COOKIE]
    if ending == "password":
        change = {"current_password": PASSWORD, "new_password": "another password"}
        answer = client.post("/users/me/password", json=change, headers=headers)
    elif ending == "deactivation":
        answer = client.patch(
            f"/users/{user['id']}", json={"is_active": False}, headers=admin_token
        )
    else:
        answer = client.delete(f"/users/{user['id']}", headers=admin_token)
    assert answer.status_code in (200, 204)
    assert cookie_status(client, secret) == 401


def age(*, started: timedelta = timedelta(0), used: timedelta = timedelta(0)) -> None:
    """Make every login look ``started`` and last ``used`` that long ago."""
    now = utcnow()
    with SessionLocal.begin() as session:
        session.execute(
            update(AuthSession).values(
                created_at=now - started, last_used_at=now - used
            )
        )


def test_a_session_ends_when_idle_and_at_its_absolute_lifetime(
    client: TestClient, user: dict
) -> None:
    idle = timedelta(minutes=settings.session_idle_minutes)
    lifetime = timedelta(hours=settings.session_max_hours)
    sign_in(client)
    secret = client.cookies[COOKIE]
    age(started=lifetime / 2, used=idle - timedelta(minutes=1))
    assert cookie_status(client, secret) == 200  # and it counts as a use
    age(started=lifetime / 2, used=idle + timedelta(seconds=1))
    assert cookie_status(client, secret) == 401
    sign_in(client)
    age(started=lifetime + timedelta(seconds=1))
    assert cookie_status(client, client.cookies[COOKIE]) == 401


def test_a_purge_deletes_browser_sessions_past_a_lifetime(
    client: TestClient, user: dict
) -> None:
    sign_in(client)
    age(used=timedelta(minutes=settings.session_idle_minutes, seconds=1))
    sign_in(client)  # a live one, which stays
    live = client.cookies[COOKIE]
    assert purge() == 1
    with SessionLocal() as session:
        assert len(session.scalars(select(AuthSession)).all()) == 1
    assert cookie_status(client, live) == 200


def last_used() -> list:
    with SessionLocal() as session:
        return list(session.scalars(select(AuthSession.last_used_at)))


def test_last_used_is_written_at_most_once_a_minute(
    client: TestClient, user: dict
) -> None:
    sign_in(client)
    [started] = last_used()
    for _ in range(3):
        assert client.get("/users/me").status_code == 200
    assert last_used() == [started]  # reads do not write
    age(used=timedelta(minutes=2))
    [stale] = last_used()
    # A request refused by the CSRF checks is no use of the session.
    forged = client.patch(
        "/users/me", json={"full_name": "x"}, headers={"Origin": ORIGIN}
    )
    assert forged.status_code == 403 and last_used() == [stale]
    assert client.get("/users/me").status_code == 200
    [written] = last_used()
    assert written > stale + timedelta(minutes=1)


def test_a_token_for_other_services_is_short_lived_and_ends_with_the_session(
    client: TestClient, user: dict
) -> None:
    headers = sign_in(client)
    assert client.post("/session/token").status_code == 403  # no CSRF token
    answer = client.post("/session/token", headers=headers).json()
    assert set(answer) == {"access_token", "token_type", "expires_in"}  # no refresh
    assert answer["expires_in"] == 300
    assert me_status(client, answer["access_token"]) == 200
    # Only a browser session asks for one: a bearer token is refused.
    token_answer = client.post("/session/token", headers=bearer(answer["access_token"]))
    assert token_answer.status_code == 401
    assert csrf(client) == headers["X-CSRF-Token"]  # as a reloaded app asks again
    client.delete("/session", headers=headers)
    assert me_status(client, answer["access_token"]) == 401


def csrf(client: TestClient) -> str:
    """The CSRF token of the client's session, as a reloaded app asks for it."""
    return client.get("/session").json()["csrf_token"]


def test_a_user_sees_their_logins_and_ends_one_or_all_others(
    client: TestClient, user: dict
) -> None:
    phone = start_login(user)
    laptop = start_login(user)
    stranger = start_login(add_user("bob"))
    headers = sign_in(client)
    logins = client.get(
        "/users/me/sessions", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"}
    ).json()
    assert len(logins) == 3
    [mine] = [login for login in logins if login["current"]]
    assert mine["user_agent"] == "testclient" and mine["client"] == "testclient"
    # A login through the API says where it came from too.
    chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0 Safari/537.36"
    client.post(
        "/login",
        json={"username": "alice", "password": PASSWORD},
        headers={"User-Agent": chrome},
    )
    assert "Chrome on Windows" in [
        login["user_agent"] for login in client.get("/users/me/sessions").json()
    ]
    assert set(mine) == {
        "id",
        "created_at",
        "last_used_at",
        "client",
        "user_agent",
        "current",
    }
    phone_id = next(login["id"] for login in logins if not login["current"])
    assert client.delete(f"/users/me/sessions/{phone_id}").status_code == 403
    assert (
        client.delete(f"/users/me/sessions/{phone_id}", headers=headers).status_code
        == 204
    )
    assert (
        client.delete(f"/users/me/sessions/{phone_id}", headers=headers).status_code
        == 404
    )
    # Another user's login is no one's to end but theirs.
    with SessionLocal() as session:
        theirs = session.scalar(
            select(AuthSession.id).where(AuthSession.user_id != user["id"])
        )
    assert (
        client.delete(f"/users/me/sessions/{theirs}", headers=headers).status_code
        == 404
    )
    assert me_status(client, stranger["access_token"]) == 200
    ended = sorted(login_statuses(client, t)[0] for t in (phone, laptop))
    assert ended == [200, 401]
    assert client.delete("/users/me/sessions", headers=headers).status_code == 204
    assert [login_statuses(client, t) for t in (phone, laptop)] == [(401, 401)] * 2
    assert [login["current"] for login in client.get("/users/me/sessions").json()] == [
        True
    ]


def test_a_superuser_ends_every_login_of_a_user(
    client: TestClient, user: dict, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = start_login(user)
    admin = bearer(start_login(add_user("root", superuser=True))["access_token"])
    assert (
        client.delete(
            f"/users/{user['id']}/sessions", headers=bearer(tokens["access_token"])
        ).status_code
        == 403
    )
    with caplog.at_level(logging.INFO):
        assert (
            client.delete(f"/users/{user['id']}/sessions", headers=admin).status_code
            == 204
        )
    assert login_statuses(client, tokens) == (401, 401)
    assert client.delete("/users/999/sessions", headers=admin).status_code == 404
    [event] = logged(caplog, "logins_ended")
    assert event["user_id"] == user["id"] and event["count"] == 1


def test_every_end_of_a_login_is_logged_without_secrets(
    client: TestClient, user: dict, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = start_login(user)
    with caplog.at_level(logging.INFO):
        headers = sign_in(client)
        secret = client.cookies[COOKIE]
        logins = client.get("/users/me/sessions").json()
        other = next(login["id"] for login in logins if not login["current"])
        client.delete(f"/users/me/sessions/{other}", headers=headers)
        client.delete("/session", headers=headers)
    ended = logged(caplog, "login_ended")
    assert [event["reason"] for event in ended] == ["ended_by_user", "signed_out"]
    text = caplog.text
    for value in (secret, headers["X-CSRF-Token"], tokens["refresh_token"], PASSWORD):
        assert value not in text


def test_signing_in_answers_as_logging_in_does(client: TestClient, user: dict) -> None:
    wrong = {"username": "alice", "password": "wrong password"}
    by_session = client.post("/session", json=wrong, headers={"Origin": ORIGIN})
    by_login = client.post("/login", json=wrong)
    assert (by_session.status_code, by_session.json()) == (401, by_login.json())
    assert COOKIE not in client.cookies
    foreign = client.post(
        "/session",
        json={"username": "alice", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403 and COOKIE not in client.cookies
    for _ in range(settings.login_max_failures):
        client.post("/session", json=wrong, headers={"Origin": ORIGIN})
    throttled = client.post("/session", json=wrong, headers={"Origin": ORIGIN})
    assert throttled.status_code == 429 and "Retry-After" in throttled.headers
