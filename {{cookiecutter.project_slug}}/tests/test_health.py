"""GET /health and the schema the service creates at start-up."""

import threading
import time
from pathlib import Path

import anyio
import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

{{ imports(config="settings", database="", main="start_up", models="User") }}

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


def test_alembic_check_finds_no_unmigrated_model_change(client: TestClient) -> None:
    """`alembic check` on the database the service migrated at start-up: fails when a
    model changed and nobody ran `alembic revision --autogenerate`."""
    command.check(Config(PROJECT / "alembic.ini"))


def test_database_refuses_a_username_differing_only_in_case(client: TestClient) -> None:
    with database.SessionLocal() as session:
        session.add(User(username="Carol", hashed_password="x"))
        session.commit()
        session.add(User(username="cAROL", hashed_password="x"))
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
    with pytest.raises(RuntimeError, match=refusal):
        start_up()
    database.migrate()
    start_up()  # now current: starts


def test_queries_from_async_code_take_at_most_pool_size_threads(
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
            for _ in range(4 * database.POOL_SIZE):
                group.start_soon(database.run_query, query)

    anyio.run(many)
    assert most == database.POOL_SIZE
