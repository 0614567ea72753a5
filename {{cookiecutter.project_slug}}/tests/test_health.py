"""GET /health, reads from async code, and the schema the service creates at start-up."""

import logging
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError, OperationalError

{{ imports(auth_service="CALLER", config="settings", database="", main="", tokens="decode_access_token", user_models="User") }}

from .conftest import logged, me_status

PROJECT = Path(__file__).resolve().parents[1]


def test_health_is_200_when_the_database_answers(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_health_is_503_when_the_database_does_not(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    unreachable = database.make_engine(f"sqlite:///{tmp_path}/missing/dir/db.sqlite")
    monkeypatch.setattr(database, "engine", unreachable)
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}


def test_a_new_sqlite_database_file_is_readable_by_its_owner_only(
    tmp_path: Path,
) -> None:
    engine = database.make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    with engine.connect() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
        connection.commit()
    engine.dispose()
    assert {path.name: path.stat().st_mode & 0o777 for path in tmp_path.iterdir()} == {
        "new.db": 0o600
    }


def test_regular_jobs_outlive_an_outage_and_any_other_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs = []

    def purge() -> int:
        runs.append(1)
        if len(runs) == 1:
            raise OperationalError("DELETE", None, Exception("the database is down"))
        if len(runs) == 2:
            raise RuntimeError("a bug, say")
        return 0

    async def until_the_third_run() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(main.run_regularly, purge, 0.01, "purge_failed")
            with anyio.move_on_after(10):
                while len(runs) < 3:
                    await anyio.sleep(0.01)
            tasks.cancel_scope.cancel()

    with caplog.at_level(logging.INFO):
        anyio.run(until_the_third_run)
    assert len(runs) >= 3
    failures = [fields["error"] for fields in logged(caplog, "purge_failed")]
    assert failures == ["OperationalError", "RuntimeError"]


def test_alembic_check_finds_no_unmigrated_model_change(client: TestClient) -> None:
    """`alembic check` on the database the service migrated at start-up: fails when a
    model changed and nobody ran `alembic revision --autogenerate`."""
    command.check(Config(PROJECT / "alembic.ini"))


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"username": "Carol"}, {"username": "cAROL"}),
        (
            {"username": "dan", "email": "dan@example.com"},
            {"username": "dan2", "email": "dan@example.com"},
        ),
    ],
)
def test_database_refuses_a_username_in_another_case_or_an_address_twice(
    client: TestClient, first: dict, second: dict
) -> None:
    """The unique indexes themselves, beneath the service's checks (addresses are
    stored normalised: test_users proves that another case is the same)."""
    with database.SessionLocal() as session:
        session.add(User(**first, hashed_password="x"))
        session.commit()
        session.add(User(**second, hashed_password="x"))
        with pytest.raises(IntegrityError):
            session.commit()


def test_migrating_again_changes_nothing(client: TestClient) -> None:
    database.migrate()
    assert database.schema_is_current()
    with database.engine.connect() as connection:
        versions = connection.execute(text("SELECT count(*) FROM alembic_version"))
        assert versions.scalar_one() == 1


def test_start_up_refuses_an_outdated_schema_when_auto_migrate_is_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = database.make_engine(f"sqlite:///{tmp_path}/empty.db")
    monkeypatch.setattr(database, "engine", empty)
    monkeypatch.setattr(settings, "auto_migrate", False)
    refusal = r"AUTO_MIGRATE is off: run `python -m \w+ migrate` first"
    with pytest.raises(database.SchemaOutdatedError, match=refusal):
        main.start_up()
    database.migrate()
    main.start_up()  # now current: starts


def test_the_prepared_caller_read_gives_the_values_sqlalchemy_gives(
    tokens: dict[str, str],
) -> None:
    """The shortcut behind every authenticated request converts values (booleans,
    UTC datetimes) exactly as an ordinary SQLAlchemy execution does."""
    access = decode_access_token(tokens["access_token"])
    parameters = {"user_id": access.user_id, "session_id": access.session_id}
    with database.engine.connect() as connection:
        row = connection.execute(CALLER.statement, parameters).one()._mapping
    expected = {column: (type(value), value) for column, value in row.items()}

    found = CALLER.first(parameters)

    assert found is not None
    assert {column: (type(value), value) for column, value in found.items()} == expected
    assert CALLER.first({**parameters, "session_id": "other"}) is None


def test_reads_reconnect_when_the_database_dropped_their_connection(
    token: str,
    client: TestClient,
) -> None:
    """After a database restart or failover the pooled read connections are dead:
    requests must still be answered, not fail once per dead connection."""
    dropped = []

    def drop_first(dbapi_connection: Any, _record: object, _proxy: object) -> None:
        if not dropped:
            dropped.append(dbapi_connection)
            dbapi_connection.close()

    event.listen(database.readers, "checkout", drop_first)
    try:
        assert me_status(client, token) == 200
    finally:
        event.remove(database.readers, "checkout", drop_first)
    assert dropped


def test_queries_from_async_code_take_at_most_read_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(database, "IN_PROCESS", frozenset())  # as for PostgreSQL
    running, most = 0, 0
    lock = threading.Lock()

    def query() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.01)
        with lock:
            running -= 1

    async def many() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(4 * database.READ_THREADS):
                group.start_soon(database.run_query, query)

    anyio.run(many)
    assert most == database.READ_THREADS
