"""Registration and the current user: POST /users/, POST /register, GET /users/me."""

from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from .conftest import PASSWORD, bearer


@pytest.mark.parametrize("path", ["/users/", "/register"])
def test_register_returns_the_user_without_password(
    client: TestClient, path: str
) -> None:
    response = client.post(
        path,
        json={"username": "JohnDoe", "password": PASSWORD, "email": "john@example.com"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["username"] == "JohnDoe"
    assert body["email"] == "john@example.com"
    assert body["is_active"] is True
    assert body["is_superuser"] is False
    assert datetime.fromisoformat(body["created_at"]).utcoffset() == timedelta(0)
    assert "password" not in response.text
    assert "hash" not in response.text


def test_taken_username_is_409_whatever_its_case(
    client: TestClient, user: dict
) -> None:
    for name in ("alice", "ALICE", "Alice"):
        response = client.post(
            "/register", json={"username": name, "password": PASSWORD}
        )
        assert response.status_code == 409
        assert response.json()["detail"] == "Username already registered"


def test_taken_email_is_409_whatever_its_case(client: TestClient) -> None:
    first = {"username": "ann", "password": PASSWORD, "email": "Ann@example.com"}
    assert client.post("/register", json=first).status_code == 201
    for email in ("ann@example.com", "ANN@EXAMPLE.COM"):
        response = client.post(
            "/register", json={"username": "ann2", "password": PASSWORD, "email": email}
        )
        assert response.status_code == 409
        assert response.json()["detail"] == "Email already registered"
    # Without an address, as many users as like.
    for name in ("bob", "carol"):
        body = {"username": name, "password": PASSWORD}
        assert client.post("/register", json=body).status_code == 201


def test_privileged_fields_in_the_body_are_ignored(client: TestClient) -> None:
    response = client.post(
        "/users/",
        json={
            "username": "mallory",
            "password": PASSWORD,
            "is_superuser": True,
            "is_active": False,
            "id": 999,
            "hashed_password": "x",
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body["is_superuser"] is False
    assert body["is_active"] is True
    assert body["id"] != 999
    login = client.post("/token", data={"username": "mallory", "password": PASSWORD})
    assert login.status_code == 200


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"username": "bob"}, "password"),
        ({"password": PASSWORD}, "username"),
        ({"username": "bob", "password": "short"}, "password"),
        ({"username": "b", "password": PASSWORD}, "username"),
        ({"username": "bob smith", "password": PASSWORD}, "username"),
        ({"username": "böb", "password": PASSWORD}, "username"),
        ({"username": "x" * 65, "password": PASSWORD}, "username"),
        ({"username": "bob", "password": PASSWORD, "email": "not-an-email"}, "email"),
    ],
)
def test_invalid_registration_is_422_naming_the_field(
    client: TestClient, payload: dict, field: str
) -> None:
    response = client.post("/users/", json=payload)
    assert response.status_code == 422
    assert field in {error["loc"][-1] for error in response.json()["detail"]}


def test_invalid_json_is_422(client: TestClient) -> None:
    response = client.post(
        "/users/", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422


def test_users_me_returns_the_token_owner(client: TestClient, token: str) -> None:
    response = client.get("/users/me", headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["username"] == "alice"
    assert "hash" not in response.text


def test_users_me_without_token_is_401(client: TestClient) -> None:
    response = client.get("/users/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_protected_greets_the_user(client: TestClient, token: str) -> None:
    response = client.get("/protected", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {"message": "Welcome alice"}


def test_protected_without_token_is_401(client: TestClient) -> None:
    assert client.get("/protected").status_code == 401
