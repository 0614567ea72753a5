"""Hostile input gets a 4xx that repeats nothing secret, and leaves nothing secret in
the log; an unexpected error is a 500 that still carries the request id."""

import json
import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

{{ imports(config="settings", database="SessionLocal", main="app, create_app", middleware="JsonFormatter", user_models="User") }}

from .conftest import PASSWORD, bearer

SECRET = "s3cret-Passw0rd-that-must-never-be-echoed"

#: A JSON body with a text field holding ``text``, for every route that takes one.
TEXT_FIELDS = [
    ("/users/", "username", {"password": PASSWORD}),
    ("/users/", "password", {"username": "mallory"}),
    ("/users/", "full_name", {"username": "mallory", "password": PASSWORD}),
    ("/register", "username", {"password": PASSWORD}),
    ("/login", "username", {"password": PASSWORD}),
    ("/login", "password", {"username": "alice"}),
    ("/token/refresh", "refresh_token", {}),
    ("/logout", "refresh_token", {}),
]
HOSTILE_TEXT = {
    "a lone surrogate": "\\ud800",
    "NUL": "\\u0000",
    "an escape": "\\u001b[31m",
}


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every line the service and its libraries logged (not the test client's),
    as written, with any traceback."""
    formatter = JsonFormatter()
    return "\n".join(
        formatter.format(record)
        + (formatter.formatException(record.exc_info) if record.exc_info else "")
        for record in caplog.records
        if not record.name.startswith("httpx")
    )


def raw_json(fields: dict[str, str], name: str, escaped: str) -> bytes:
    """A JSON body with ``name`` set to the JSON escape ``escaped`` (a lone
    surrogate cannot be encoded any other way)."""
    body = json.dumps(fields)[:-1]
    separator = ", " if fields else ""
    return f'{body}{separator}"{name}": "x{escaped}x"}}'.encode()


@pytest.mark.parametrize("kind", list(HOSTILE_TEXT))
def test_every_text_field_refuses_control_characters_and_lone_surrogates(
    client: TestClient, token: str, kind: str
) -> None:
    """422 on both databases, before anything reaches them."""
    escaped = HOSTILE_TEXT[kind]
    for path, name, fields in TEXT_FIELDS:
        response = client.post(
            path,
            content=raw_json(fields, name, escaped),
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 422, (path, name, response.text)
        assert response.json()["detail"][0]["loc"] == ["body", name]
    patched = client.patch(
        "/users/me",
        content=raw_json({}, "full_name", escaped),
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    assert patched.status_code == 422
    form = client.post("/token", data={"username": "alice\x00", "password": SECRET})
    assert form.status_code == 422


@pytest.mark.parametrize(
    ("path", "send"),
    [
        ("/users/", {"json": {"username": "mallory", "password": SECRET[:7]}}),
        ("/register", {"json": {"username": "x", "password": SECRET}}),
        ("/login", {"data": {"username": "mallory", "password": SECRET}}),
        ("/login", {"json": {"password": SECRET}}),
        ("/token", {"data": {"password": SECRET}}),
        ("/token", {"data": {"grant_type": "refresh_token", "password": SECRET}}),
        ("/token/refresh", {"json": {"refresh_token": [SECRET]}}),
        ("/logout", {"json": {"token": SECRET}}),
    ],
)
def test_validation_errors_never_repeat_what_was_sent(
    client: TestClient, path: str, send: dict
) -> None:
    response = client.post(path, **send)
    assert response.status_code == 422
    assert SECRET[:7] not in response.text
    for problem in response.json()["detail"]:
        assert set(problem) == {"type", "loc", "msg"}


def test_a_bearer_routes_validation_errors_do_not_repeat_passwords(
    client: TestClient, token: str
) -> None:
    body = {"current_password": SECRET, "new_password": SECRET[:5]}
    response = client.post("/users/me/password", json=body, headers=bearer(token))
    assert response.status_code == 422
    assert SECRET[:5] not in response.text


@pytest.mark.parametrize("path", ["/users/", "/login", "/token", "/logout"])
def test_a_body_over_the_limit_is_413_before_it_is_read(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    monkeypatch.setattr(settings, "max_body_bytes", 1000)
    client = TestClient(create_app())  # started already: the database is ready
    declared = client.post(path, content=b"x" * 1001)
    assert declared.status_code == 413
    assert declared.json() == {"detail": "Request body too large"}

    def streamed():  # no Content-Length: chunked, as a client streaming a body
        for _ in range(11):
            yield b'{"a": "' + b"x" * 90 + b'"}'

    assert client.post(path, content=streamed()).status_code == 413
    assert client.post(path, content=b"x" * 1000).status_code != 413


def test_an_unexpected_error_is_a_500_with_the_request_id_logged_without_values(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise RuntimeError(f"a message quoting a value: {SECRET}")

    app_with_a_bug = create_app()
    app_with_a_bug.add_api_route("/broken", broken)
    with caplog.at_level(logging.INFO):
        response = TestClient(app_with_a_bug).get(
            "/broken", headers={"X-Request-ID": "req-500"}
        )
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error"}
    assert response.headers["x-request-id"] == "req-500"
    assert response.headers["x-content-type-options"] == "nosniff"
    lines = [getattr(r, "fields", {}) for r in caplog.records]
    error = next(line for line in lines if line.get("event") == "error")
    assert error["request_id"] == "req-500"
    assert error["error"] == "RuntimeError"
    assert "broken" in error["stack"]
    request = next(line for line in lines if line.get("path") == "/broken")
    assert (request["status"], request["request_id"]) == (500, "req-500")
    assert SECRET not in logged(caplog)


def test_hostile_input_on_every_route_leaves_no_secret_in_the_log(
    client: TestClient,
    user: dict,
    tokens: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Everything the service and its libraries log, at every level, after each
    route got hostile bodies: no password, hash or token in it."""
    with SessionLocal() as session:
        stored_hash = session.scalar(select(User.hashed_password))
    access, refresh = tokens["access_token"], tokens["refresh_token"]
    body = raw_json({"password": SECRET}, "username", "\\ud800")
    headers = {"Content-Type": "application/json", **bearer(access)}
    with caplog.at_level(logging.DEBUG):
        for route in app.routes:
            for method in set(getattr(route, "methods", None) or ()) - {"HEAD"}:
                path = route.path.replace("{user_id}", "1")
                client.request(method, path, content=body, headers=headers)
        client.post("/login", json={"username": "alice", "password": SECRET})
        client.post("/login", json={"username": SECRET, "password": SECRET})
        client.post("/token/refresh", json={"refresh_token": refresh})
        client.post("/token/refresh", json={"refresh_token": refresh})  # reuse
        client.get(f"/users/me?access_token={access}")
        client.post(
            "/users/me/password",
            json={"current_password": SECRET, "new_password": SECRET},
            headers=bearer(access),
        )
    text = logged(caplog)
    assert '"event": "login_failed"' in text  # the log was captured
    for secret in (SECRET, PASSWORD, stored_hash, access, refresh, "Bearer"):
        assert secret not in text
