"""Fixtures of the template's suite: a bakery, isolated environments and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Each variant's environment starts Python three times (its tests, alembic, uvicorn).
# Where the machine forbids writing bytecode, every start recompiles FastAPI,
# SQLAlchemy, pydantic... from source (seconds each); let the children cache it.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

from .support import (
    INSTALL_HINT,
    Baked,
    Bakery,
    Environment,
    Postgres,
    PostgresServer,
    find_postgres_bin,
    variant_id,
)


@pytest.fixture(scope="session")
def bakery(tmp_path_factory: pytest.TempPathFactory) -> Bakery:
    return Bakery(tmp_path_factory.mktemp("bakery"))


@pytest.fixture
def baked(bakery: Bakery, variant: dict[str, str]) -> Baked:
    """The variant under test, baked once per session."""
    return bakery.bake(**variant)


@pytest.fixture(scope="session")
def environments(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Baked], Environment]:
    """The isolated environment of a baked project, created once per session."""
    root = tmp_path_factory.mktemp("envs")
    made: dict[Path, Environment] = {}

    def environment(project: Baked) -> Environment:
        if project.path not in made:
            made[project.path] = Environment.create(root / f"env-{len(made)}", project.path)
        return made[project.path]

    return environment


@pytest.fixture
def env(baked: Baked, environments: Callable[[Baked], Environment]) -> Environment:
    """The environment of the variant under test."""
    return environments(baked)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres | None]:
    """A PostgreSQL server started for this session (initdb + pg_ctl), or the one
    TEMPLATE_TEST_POSTGRES_URL names."""
    if url := os.environ.get("TEMPLATE_TEST_POSTGRES_URL"):
        yield Postgres(url)
        return
    bindir = find_postgres_bin()
    if bindir is None:
        yield None
        return
    server = PostgresServer(bindir)
    server.start()
    yield Postgres(server.admin_url)
    server.stop()


@pytest.fixture
def postgres(postgres_server: Postgres | None) -> Postgres:
    """The session's PostgreSQL server. Missing: a failure in CI, a loud skip elsewhere."""
    if postgres_server is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must prove the PostgreSQL variants. {INSTALL_HINT}", pytrace=False)
        pytest.skip(f"NOT RUN: {INSTALL_HINT}")
    return postgres_server


@pytest.fixture
def database_url(baked: Baked, request: pytest.FixtureRequest) -> Callable[[str], str]:
    """A fresh, empty database of the variant's kind for one purpose ("tests", ...)."""

    def make(purpose: str) -> str:
        if baked.answers["database"] == "postgresql":
            server = request.getfixturevalue("postgres")
            name = f"{variant_id(baked.answers)}-{purpose}"[:63]
            return server.create_database(name)
        return f"sqlite:///{baked.path.parent / f'{purpose}.db'}"

    return make


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say loudly when PostgreSQL variants were not proven (xdist forwards the reports)."""
    not_run = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if "NOT RUN" in str(report.longrepr)
    ]
    if not_run:
        terminalreporter.section("PostgreSQL variants NOT RUN", sep="!", red=True, bold=True)
        terminalreporter.line(f"{len(not_run)} checks need PostgreSQL and did not run.")
        terminalreporter.line(INSTALL_HINT)
