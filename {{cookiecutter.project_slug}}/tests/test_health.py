"""GET /health and the schema the service starts with."""

import warnings

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError

{{ imports(database="", models="Base, User") }}


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


def test_start_up_migrations_match_the_models(client: TestClient) -> None:
    with warnings.catch_warnings():
        # sqlite cannot reflect the expression index; the test below covers it.
        warnings.filterwarnings("ignore", message=".*expression-based index")
        with database.engine.connect() as connection:
            context = MigrationContext.configure(connection)
            assert compare_metadata(context, Base.metadata) == []


def test_database_refuses_a_username_differing_only_in_case(client: TestClient) -> None:
    with database.SessionLocal() as session:
        session.add(User(username="Carol", hashed_password="x"))
        session.commit()
        session.add(User(username="cAROL", hashed_password="x"))
        with pytest.raises(IntegrityError):
            session.commit()
