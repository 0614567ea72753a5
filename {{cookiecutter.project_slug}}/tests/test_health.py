"""GET /health and the schema the service creates at start-up."""

from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError

{{ imports(database="", models="User") }}

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
