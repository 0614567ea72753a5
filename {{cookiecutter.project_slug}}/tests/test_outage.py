"""While the database is unavailable every route answers 503 with Retry-After; when
it is back, the same process answers normally again."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

{{ imports(database="") }}

from .conftest import PASSWORD, bearer, login


@contextmanager
def database_down() -> Iterator[None]:
    """Every new connection is refused and every pooled one is gone, as when the
    server stops."""

    def refuse(*_: Any) -> None:
        raise database.engine.dialect.loaded_dbapi.OperationalError("server is down")

    engines = (database.engine, database.readers)
    for engine in engines:
        engine.dispose()
        event.listen(engine, "do_connect", refuse)
    try:
        yield
    finally:
        for engine in engines:
            event.remove(engine, "do_connect", refuse)


def every_route(client: TestClient, tokens: dict[str, str]) -> dict[str, Any]:
    """A request that would succeed, to each route that needs the database."""
    access = bearer(tokens["access_token"])
    credentials = {"username": "alice", "password": PASSWORD}
    new_user = {"username": "newcomer", "password": PASSWORD}
    refresh = {"refresh_token": tokens["refresh_token"]}
    change = {"current_password": PASSWORD, "new_password": PASSWORD + "!"}
    return {
        "POST /token": client.post("/token", data=credentials),
        "POST /login": client.post("/login", json=credentials),
        "POST /register": client.post("/register", json=new_user),
        "POST /users/": client.post("/users/", json=new_user),
        "POST /token/refresh": client.post("/token/refresh", json=refresh),
        "POST /logout": client.post("/logout", json=refresh),
        "GET /users/me": client.get("/users/me", headers=access),
        "PATCH /users/me": client.patch(
            "/users/me", json={"full_name": "A"}, headers=access
        ),
        "POST /users/me/password": client.post(
            "/users/me/password", json=change, headers=access
        ),
        "GET /protected": client.get("/protected", headers=access),
        "GET /users/": client.get("/users/", headers=access),
        "GET /health": client.get("/health"),
    }


def test_every_route_answers_503_with_retry_after_while_the_database_is_down(
    client: TestClient, tokens: dict[str, str]
) -> None:
    """Never a 500, and never a 401 for a bearer token that is not at fault."""
    with database_down():
        answers = every_route(client, tokens)
    wrong = {
        route: (answer.status_code, answer.text)
        for route, answer in answers.items()
        if answer.status_code != 503
        or not answer.headers.get("retry-after", "").isdigit()
        or not answer.json()
    }
    assert wrong == {}


def test_the_same_process_answers_normally_when_the_database_is_back(
    client: TestClient, tokens: dict[str, str]
) -> None:
    with database_down():
        every_route(client, tokens)
    assert client.get("/health").status_code == 200
    assert (
        client.get("/users/me", headers=bearer(tokens["access_token"])).json()[
            "username"
        ]
        == "alice"
    )
    login(client, "alice", PASSWORD)
    refreshed = client.post(
        "/token/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200
