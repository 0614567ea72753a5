"""Request ids, log lines that never hold a secret, security headers, CORS."""

import json
import logging

import pytest
from fastapi.testclient import TestClient

{{ imports(config="settings", main="create_app", middleware="JsonFormatter, logger") }}

from .conftest import PASSWORD, bearer, login


def test_every_response_has_a_request_id_and_security_headers(
    client: TestClient,
) -> None:
    response = client.get("/health")
    assert len(response.headers["x-request-id"]) == 32
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


def test_a_callers_request_id_is_kept_only_if_it_looks_like_one(
    client: TestClient,
) -> None:
    kept = client.get("/health", headers={"X-Request-ID": "abc-123.x_y"})
    assert kept.headers["x-request-id"] == "abc-123.x_y"
    for bad in ("a" * 65, "has space", "new\\nline"):
        replaced = client.get("/health", headers={"X-Request-ID": bad})
        assert replaced.headers["x-request-id"] != bad


def test_one_structured_line_per_request(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=logger.name):
        response = client.get("/health?probe=1", headers={"X-Request-ID": "req-1"})
    records = [r for r in caplog.records if r.name == logger.name]
    assert len(records) == 1
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["level"] == "info"
    assert line["time"].endswith("+00:00")
    assert line["method"] == "GET"
    assert line["path"] == "/health"  # no query string
    assert line["status"] == response.status_code
    assert line["request_id"] == "req-1"
    assert line["client"] == "testclient"
    assert line["duration_ms"] >= 0


def test_no_log_line_holds_a_password_or_token(
    client: TestClient, user: dict, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        tokens = client.post(
            "/token", data={"username": "alice", "password": PASSWORD}
        ).json()
        client.get("/users/me", headers=bearer(tokens["access_token"]))
        client.post("/token/refresh", json={"refresh_token": tokens["refresh_token"]})
        client.post(
            "/login", json={"username": "alice", "password": "wrong " + PASSWORD}
        )
        client.get(f"/users/me?access_token={tokens['access_token']}")
    # Everything the service and its libraries logged; the test client's own
    # request log (httpx) is not the service's.
    logged = "\n".join(
        record.getMessage()
        for record in caplog.records
        if not record.name.startswith("httpx")
    )
    for secret in (PASSWORD, tokens["access_token"], tokens["refresh_token"], "Bearer"):
        assert secret not in logged


def test_no_cors_headers_unless_origins_are_configured(client: TestClient) -> None:
    response = client.get("/health", headers={"Origin": "https://app.example.com"})
    assert "access-control-allow-origin" not in response.headers


def test_configured_origins_may_call_the_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "cors_origins", ["https://app.example.com"])
    with TestClient(create_app()) as cors_client:
        preflight = cors_client.options(
            "/users/me",
            headers={
                "Origin": "https://app.example.com",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "Authorization",
            },
        )
        assert (
            preflight.headers["access-control-allow-origin"]
            == "https://app.example.com"
        )
        other = cors_client.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_security_events_are_logged_with_ids_never_secrets(
    client: TestClient,
    user: dict,
    tokens: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO):
        client.post(
            "/login", json={"username": "alice", "password": "wrong " + PASSWORD}
        )
        client.post("/login", json={"username": PASSWORD, "password": PASSWORD})
        renewed = client.post(
            "/token/refresh", json={"refresh_token": tokens["refresh_token"]}
        ).json()
        client.post("/token/refresh", json={"refresh_token": tokens["refresh_token"]})
        fresh = login(client, "alice", PASSWORD)
        client.post("/logout", json={"refresh_token": fresh["refresh_token"]})
        again = login(client, "alice", PASSWORD)
        change = {"current_password": PASSWORD, "new_password": "a new password 1"}
        client.post(
            "/users/me/password", json=change, headers=bearer(again["access_token"])
        )
    events = [r.fields for r in caplog.records if r.name.endswith(".events")]
    assert [event["event"] for event in events] == [
        "login_failed",
        "login_failed",
        "refresh_token_reused",
        "login",
        "logout",
        "login",
        "logins_ended",
        "password_changed",
    ]
    assert events[0] == {
        "event": "login_failed",
        "user_id": user["id"],
        "client": "testclient",
    }
    assert events[1]["user_id"] is None  # a password typed as the name is not logged
    text = json.dumps(events)
    for secret in (PASSWORD, tokens["refresh_token"], renewed["access_token"]):
        assert secret not in text
