"""Managing your own account, and superusers managing everyone's."""

import importlib
import logging
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect, select, text

{{ imports(config="settings", database="", main="start_up", user_models="User", user_service="FirstSuperuserError") }}

from .conftest import (
    PASSWORD,
    add_user,
    bearer,
    login,
    login_statuses,
    me_status,
    start_login,
)

CLI = "{{ cookiecutter.package_name }}.__main__"
SERVICE_APP = "{{ cookiecutter.package_name }}.main:app"
cli = importlib.import_module(CLI)

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def admin(client: TestClient) -> dict[str, str]:
    """Tokens of a superuser."""
    return start_login(add_user("root", superuser=True))


def test_users_can_change_their_name_and_email(client: TestClient, token: str) -> None:
    response = client.patch(
        "/users/me",
        json={
            "full_name": "Alice Liddell",
            "email": "alice@example.com",
            "current_password": PASSWORD,
        },
        headers=bearer(token),
    )
    assert response.status_code == 200
    assert response.json()["full_name"] == "Alice Liddell"
    assert (
        client.get("/users/me", headers=bearer(token)).json()["email"]
        == "alice@example.com"
    )


def test_an_email_another_user_has_is_409_for_them_and_superusers(
    client: TestClient, admin: dict[str, str], token: str, user: dict
) -> None:
    as_admin = bearer(admin["access_token"])
    taken = {"email": "root@example.com", "current_password": PASSWORD}
    assert client.patch("/users/me", json=taken, headers=as_admin).status_code == 200
    other_case = {"email": "ROOT@example.com", "current_password": PASSWORD}
    for path, headers in [
        ("/users/me", bearer(token)),
        (f"/users/{user['id']}", as_admin),
    ]:
        response = client.patch(path, json=other_case, headers=headers)
        assert response.status_code == 409
        assert response.json()["detail"] == "Email already registered"
    # One's own address in another case is still one's own.
    response = client.patch("/users/me", json=other_case, headers=as_admin)
    assert response.status_code == 200


def test_users_cannot_make_themselves_superusers(
    client: TestClient, token: str
) -> None:
    response = client.patch(
        "/users/me",
        json={"is_superuser": True, "is_active": True, "username": "bob"},
        headers=bearer(token),
    )
    assert response.status_code == 200
    assert response.json()["is_superuser"] is False
    assert response.json()["username"] == "alice"


def test_password_change_needs_the_current_password(
    client: TestClient, token: str
) -> None:
    response = client.post(
        "/users/me/password",
        json={"current_password": "wrong password", "new_password": NEW_PASSWORD},
        headers=bearer(token),
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Current password is incorrect"}


def test_new_password_is_validated_like_at_registration(
    client: TestClient, token: str
) -> None:
    response = client.post(
        "/users/me/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=bearer(token),
    )
    assert response.status_code == 422


def test_password_change_revokes_every_token(client: TestClient, tokens: dict) -> None:
    other = login(client, "alice", PASSWORD)
    response = client.post(
        "/users/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(tokens["access_token"]),
    )
    assert response.status_code == 204
    for held in (tokens, other):
        assert login_statuses(client, held) == (401, 401)
    assert (
        client.post(
            "/token", data={"username": "alice", "password": PASSWORD}
        ).status_code
        == 401
    )
    login(client, "alice", NEW_PASSWORD)


ADMIN_ROUTES = [
    ("GET", "/users/"),
    ("GET", "/users/1"),
    ("PATCH", "/users/1"),
    ("DELETE", "/users/1"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_admin_routes_are_403_for_other_users(
    client: TestClient, token: str, method: str, path: str
) -> None:
    response = client.request(method, path, json={}, headers=bearer(token))
    assert response.status_code == 403


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_admin_routes_are_401_without_a_token(
    client: TestClient, method: str, path: str
) -> None:
    assert client.request(method, path, json={}).status_code == 401


def test_superusers_list_users_a_page_at_a_time(
    client: TestClient, admin: dict
) -> None:
    for name in ("bob", "carol", "dave"):
        client.post("/users/", json={"username": name, "password": PASSWORD})
    headers = bearer(admin["access_token"])
    everyone = client.get("/users/", headers=headers).json()
    assert [u["username"] for u in everyone] == ["root", "bob", "carol", "dave"]
    page = client.get("/users/", params={"skip": 1, "limit": 2}, headers=headers).json()
    assert [u["username"] for u in page] == ["bob", "carol"]
    assert (
        client.get("/users/", params={"limit": 1000}, headers=headers).status_code
        == 422
    )
    assert (
        client.get("/users/", params={"skip": -1}, headers=headers).status_code == 422
    )


def test_superusers_read_change_and_delete_users(
    client: TestClient, admin: dict, user: dict
) -> None:
    headers = bearer(admin["access_token"])
    path = f"/users/{user['id']}"
    assert client.get(path, headers=headers).json()["username"] == "alice"
    promoted = client.patch(path, json={"is_superuser": True}, headers=headers)
    assert promoted.json()["is_superuser"] is True
    assert client.delete(path, headers=headers).status_code == 204
    assert client.get(path, headers=headers).status_code == 404
    assert client.delete(path, headers=headers).status_code == 404


def test_deactivation_ends_every_token_at_once(
    client: TestClient, admin: dict, tokens: dict
) -> None:
    user_id = client.get("/users/me", headers=bearer(tokens["access_token"])).json()[
        "id"
    ]
    response = client.patch(
        f"/users/{user_id}",
        json={"is_active": False},
        headers=bearer(admin["access_token"]),
    )
    assert response.json()["is_active"] is False
    assert login_statuses(client, tokens) == (401, 401)
    # Reactivation does not bring the old tokens back.
    client.patch(
        f"/users/{user_id}",
        json={"is_active": True},
        headers=bearer(admin["access_token"]),
    )
    assert me_status(client, tokens["access_token"]) == 401


def test_deletion_ends_every_token(
    client: TestClient, admin: dict, tokens: dict
) -> None:
    user_id = client.get("/users/me", headers=bearer(tokens["access_token"])).json()[
        "id"
    ]
    client.delete(f"/users/{user_id}", headers=bearer(admin["access_token"]))
    assert me_status(client, tokens["access_token"]) == 401


def test_superuser_changes_are_logged(
    client: TestClient, admin: dict, user: dict, caplog: pytest.LogCaptureFixture
) -> None:
    headers = bearer(admin["access_token"])
    with caplog.at_level(logging.INFO):
        client.patch(
            f"/users/{user['id']}", json={"is_superuser": True}, headers=headers
        )
        client.delete(f"/users/{user['id']}", headers=headers)
    events = [r.fields for r in caplog.records if r.name.endswith(".events")]
    root = events[0]["by"]
    assert events == [
        {
            "event": "user_changed",
            "user_id": user["id"],
            "by": root,
            "fields": ["is_superuser"],
        },
        {"event": "user_deleted", "user_id": user["id"], "by": root},
    ]


def test_superusers_cannot_lock_themselves_out(client: TestClient, admin: dict) -> None:
    headers = bearer(admin["access_token"])
    me = client.get("/users/me", headers=headers).json()["id"]
    for change in ({"is_active": False}, {"is_superuser": False}):
        assert (
            client.patch(f"/users/{me}", json=change, headers=headers).status_code
            == 400
        )
    assert client.delete(f"/users/{me}", headers=headers).status_code == 400


def superusers() -> list[str]:
    with database.SessionLocal() as session:
        return list(session.scalars(select(User.username).where(User.is_superuser)))


def test_first_superuser_is_created_once_at_start_up(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "first_superuser", "admin")
    monkeypatch.setattr(
        settings, "first_superuser_password", type(settings.secret_key)(PASSWORD)
    )
    start_up()
    start_up()  # idempotent
    assert superusers() == ["admin"]
    login(client, "admin", PASSWORD)


def test_a_first_superuser_name_held_by_another_user_stops_start_up(
    client: TestClient, user: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone registered the name before the operator configured it."""
    monkeypatch.setattr(settings, "first_superuser", "alice")
    monkeypatch.setattr(
        settings, "first_superuser_password", type(settings.secret_key)(PASSWORD)
    )
    with pytest.raises(FirstSuperuserError, match="not a superuser"):
        start_up()
    assert superusers() == []


def test_invalid_first_superuser_password_stops_start_up_without_showing_it(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "first_superuser", "admin")
    monkeypatch.setattr(
        settings, "first_superuser_password", type(settings.secret_key)("short7")
    )
    with pytest.raises(FirstSuperuserError, match="FIRST_SUPERUSER") as error:
        start_up()
    assert "short7" not in str(error.value)


def answer(monkeypatch: pytest.MonkeyPatch, *passwords: str) -> None:
    replies = iter(passwords)
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt="": next(replies))


def test_cli_creates_a_superuser_with_a_prompted_password(
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    answer(monkeypatch, PASSWORD, PASSWORD)
    assert cli.main(["create-superuser", "--username", "boss"]) == 0
    assert superusers() == ["boss"]
    assert PASSWORD not in capsys.readouterr().out
    login(client, "boss", PASSWORD)


@pytest.mark.parametrize(
    ("passwords", "message"),
    [((PASSWORD, "different"), "do not match"), (("short", "short"), "password")],
)
def test_cli_refuses_bad_passwords(
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    passwords: tuple[str, str],
    message: str,
) -> None:
    answer(monkeypatch, *passwords)
    assert cli.main(["create-superuser", "--username", "boss"]) == 1
    assert message in capsys.readouterr().err
    assert superusers() == []


def test_cli_refuses_an_existing_username_before_asking_for_a_password(
    client: TestClient,
    user: dict,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    answer(monkeypatch)  # no password may be asked for
    assert cli.main(["create-superuser", "--username", "ALICE"]) == 1
    assert "already exists" in capsys.readouterr().err


def test_cli_says_what_is_wrong_with_a_prompted_name_and_asks_again(
    client: TestClient,
    user: dict,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = iter(["no spaces allowed", "alice", "boss"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(names))
    answer(monkeypatch, PASSWORD, PASSWORD)
    assert cli.main(["create-superuser"]) == 0
    errors = capsys.readouterr().err.splitlines()
    assert errors[0].startswith("error: username: String should match pattern")
    assert errors[1] == "error: user 'alice' already exists"
    assert superusers() == ["boss"]


def test_cli_purges_what_expired(
    client: TestClient, tokens: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    client.post("/logout", json={"refresh_token": tokens["refresh_token"]})
    assert cli.main(["purge"]) == 0
    assert capsys.readouterr().out == "purged 1 expired or revoked rows\n"
    assert cli.main(["purge"]) == 0
    assert capsys.readouterr().out == "purged 0 expired or revoked rows\n"


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", f"/users/{2**63}", None),
        ("DELETE", f"/users/{10**30}", None),
        ("GET", "/users/0", None),
        ("GET", "/users/", {"skip": 10**40}),
    ],
)
def test_out_of_range_ids_are_422_not_500(
    client: TestClient, admin: dict, method: str, path: str, params: dict | None
) -> None:
    response = client.request(
        method, path, params=params, headers=bearer(admin["access_token"])
    )
    assert response.status_code == 422


@pytest.mark.parametrize("flag", ["is_active", "is_superuser"])
def test_null_flags_are_refused_not_stored(
    client: TestClient, admin: dict, user: dict, flag: str
) -> None:
    response = client.patch(
        f"/users/{user['id']}", json={flag: None}, headers=bearer(admin["access_token"])
    )
    assert response.status_code == 422


def test_flags_are_json_booleans_only(
    client: TestClient, admin: dict, user: dict
) -> None:
    for flag in ("is_active", "is_superuser"):
        for value in (0, 1, "false", "true"):
            response = client.patch(
                f"/users/{user['id']}",
                json={flag: value},
                headers=bearer(admin["access_token"]),
            )
            assert response.status_code == 422, (flag, value)


def test_email_addresses_are_checked_test_domains_included(
    client: TestClient, token: str
) -> None:
    for email, status in [
        ("alice@example.test", 200),
        ("Alice@Example.COM", 200),
        ("alice@host.local", 422),
        ("alice@localhost", 422),
        ("alice@x.invalid", 422),
        ("not an address", 422),
    ]:
        body = {"email": email, "current_password": PASSWORD}
        response = client.patch("/users/me", json=body, headers=bearer(token))
        assert response.status_code == status, email
        if status == 200:
            assert response.json()["email"] == email.lower()


def test_undecodable_body_is_a_422_like_any_malformed_body(
    client: TestClient, token: str
) -> None:
    for body in (b"\xdd\xab\xff\xfe", b"{not json"):
        response = client.patch(
            "/users/me",
            content=body,
            headers={**bearer(token), "Content-Type": "application/json"},
        )
        assert response.status_code == 422, body
        assert response.json()["detail"][0]["loc"][0] == "body"


def test_cli_migrate_says_what_it_applied(
    client: TestClient,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path,
) -> None:
    assert cli.main(["migrate"]) == 0
    assert "nothing to apply" in capsys.readouterr().out
    empty = database.make_engine(f"sqlite:///{tmp_path}/new.db")
    monkeypatch.setattr(database, "engine", empty)
    assert cli.main(["migrate"]) == 0
    assert capsys.readouterr().out.startswith("applied 0001: ")
    assert database.schema_is_current()
    assert {"users", "auth_sessions"} <= set(inspect(empty).get_table_names())


def database_at(revision: str, users: list[tuple[str, str]], folder: Path) -> Engine:
    """A sqlite database migrated to ``revision`` only, holding ``users`` (names
    and email addresses), as an earlier release left it."""
    old = database.make_engine(f"sqlite:///{folder}/old.db")
    config = Config()
    config.set_main_option("script_location", database.MIGRATIONS)
    with old.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        for name, email in users:
            connection.execute(
                text(
                    "INSERT INTO users (username, email, hashed_password) "
                    "VALUES (:name, :email, 'x')"
                ),
                {"name": name, "email": email},
            )
    return old


@pytest.mark.parametrize(
    ("revision", "users", "said", "migration", "stored"),
    [
        pytest.param(
            "0002",
            [("ann", "ann@example.com"), ("ann2", "ANN@example.com")],
            "1 email address(es) belong to several users",
            "0003",
            ["ann@example.com", None],
            id="unique-addresses",
        ),
        # sqlite's lower() folds ASCII only: two addresses people read as one.
        pytest.param(
            "0004",
            [
                ("ann", "Ärger@example.com"),
                ("ann2", "ärger@example.com"),
                ("bob", "Bob@Example.com"),
            ],
            "user 1 (Ärger@example.com); user 2 (ärger@example.com)",
            "0005",
            ["ärger@example.com", None, "bob@example.com"],
            id="normalised-addresses",
        ),
    ],
)
def test_a_migration_that_cannot_apply_to_the_data_says_why_in_one_line(
    client: TestClient,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path,
    revision: str,
    users: list[tuple[str, str]],
    said: str,
    migration: str,
    stored: list[str | None],
) -> None:
    """Two users of a database of an earlier release share an address under a new
    rule: the migration names the problem and changes nothing until the operator
    decides; then it applies, keeping every user (addresses in their normalised
    form)."""
    old = database_at(revision, users, tmp_path)
    monkeypatch.setattr(database, "engine", old)
    assert cli.main(["migrate"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert said in error
    assert not database.schema_is_current()

    with old.begin() as connection:
        connection.execute(text("UPDATE users SET email = NULL WHERE username='ann2'"))
    assert cli.main(["migrate"]) == 0
    assert f"applied {migration}" in capsys.readouterr().out
    with old.connect() as connection:
        emails = connection.execute(text("SELECT email FROM users ORDER BY id"))
        assert emails.scalars().all() == stored


def test_second_factors_arrive_in_a_database_of_the_previous_release(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    """Users and their logins stay as they were: logins made before signed in
    with a password, and no one has a second factor yet."""
    old = database_at("0006", [("ann", "ann@example.com"), ("bob", None)], tmp_path)
    with old.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO auth_sessions (id, user_id, created_at) "
                "VALUES ('0123456789abcdef0123456789abcdef', 1, CURRENT_TIMESTAMP)"
            )
        )
    monkeypatch.setattr(database, "engine", old)
    assert cli.main(["migrate"]) == 0
    assert "applied 0007" in capsys.readouterr().out
    tables = set(inspect(old).get_table_names())
    assert {"totp_factors", "recovery_codes", "mfa_tickets"} <= tables
    with old.connect() as connection:
        users = connection.execute(text("SELECT username FROM users ORDER BY id"))
        assert users.scalars().all() == ["ann", "bob"]
        amr = connection.execute(text("SELECT amr FROM auth_sessions"))
        assert amr.scalars().all() == ["pwd"]
        factors = connection.execute(text("SELECT count(*) FROM totp_factors"))
        assert factors.scalar() == 0


def test_cli_names_an_unreachable_database_in_one_line_without_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql+psycopg://someone:hunter2@127.0.0.1:1/nowhere"
    monkeypatch.setattr(settings, "database_url", url)
    monkeypatch.setattr(
        database, "engine", database.make_engine("sqlite:////no/such/dir/x.db")
    )
    assert cli.main(["migrate"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "someone:***@127.0.0.1:1/nowhere" in error
    assert "hunter2" not in error


def test_cli_serve_runs_uvicorn_on_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(
        cli.uvicorn, "run", lambda *args, **kwargs: calls.append((args, kwargs))
    )
    assert cli.main(["serve", "--port", "9001", "--workers", "2"]) == 0
    (app,), options = calls[0]
    assert app == SERVICE_APP
    assert options == {
        "host": "127.0.0.1",
        "port": 9001,
        "workers": 2,
        "access_log": False,
        "proxy_headers": False,
        "forwarded_allow_ips": None,
    }


def test_cli_serve_believes_forwarded_headers_only_from_the_configured_proxies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []
    monkeypatch.setattr(cli.uvicorn, "run", lambda *_, **kwargs: calls.append(kwargs))
    monkeypatch.setattr(settings, "forwarded_allow_ips", "10.0.0.5")
    assert cli.main(["serve"]) == 0
    assert calls[0]["proxy_headers"] is True
    assert calls[0]["forwarded_allow_ips"] == "10.0.0.5"


def test_cli_without_a_command_explains_itself(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2
    assert "serve" in capsys.readouterr().err
