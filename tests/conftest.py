"""Fixtures of the template's suite: a bakery, isolated environments and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Each variant's environment starts Python three times (its tests, alembic, uvicorn).
# Where the machine forbids writing bytecode, every start recompiles FastAPI,
# SQLAlchemy, pydantic... from source (seconds each); let the children cache it.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

from .support import (
    INSTALL_HINT,
    OPTIONS,
    Baked,
    Bakery,
    Environment,
    Postgres,
    PostgresServer,
    clean_env,
    declared_dependencies,
    find_postgres_bin,
    free_port,
    variant_id,
    wait_for,
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
    """The environment of a baked project, with the project installed into it.

    Projects that declare exactly the same dependencies share one environment: it is
    created, and its dependencies compiled, once. Each project is installed into it
    the first time it is asked for (proving its pyproject builds and installs; the
    dependencies it declares are those already installed, so they are not resolved
    again); its processes then put its own src/ first on PYTHONPATH (``clean_env``)."""
    root = tmp_path_factory.mktemp("envs")
    shared: dict[str, Environment] = {}
    installed: set[Path] = set()

    def environment(project: Baked) -> Environment:
        key = declared_dependencies(project.path)
        if key not in shared:
            shared[key] = Environment.create(root / f"env-{len(shared)}", project.path)
        elif project.path not in installed:
            shared[key].install(project.path, dependencies=False)
        installed.add(project.path)
        return shared[key]

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


#: ``python -m <package> serve``, but with password hashing at the generated tests'
#: lowest cost (their own tests/cheap_hashing.py): for checks about the API rather
#: than about hashing. Run from the project's folder.
CHEAP_HASHING_SERVE = """
import sys

import {passwords} as passwords
from {package}.__main__ import main
from tests.cheap_hashing import cheap

passwords.password_hash = cheap(passwords.password_hash)
sys.exit(main(["serve", *sys.argv[1:]]))
"""


@pytest.fixture
def serve(
    baked: Baked, env: Environment, database_url: Callable[[str], str], tmp_path: Path
) -> Iterator[Callable[..., str]]:
    """Start ``python -m <package> serve`` as the README says, with the .env that
    generation wrote (production settings, the fresh secret) and a fresh database;
    returns its base URL; its log is ``<purpose>.log`` in the test's ``tmp_path``.
    ``cheap_hashing=True`` lowers the hashing cost only; a DATABASE_URL among the
    settings replaces the fresh database (two servers may share one).
    ``public_url="http://localhost:{port}"``: where the service is reached, ``{port}``
    being the port chosen for it; its PUBLIC_URL and the base URL returned. Every
    server is stopped after the test."""
    processes: list[subprocess.Popen] = []

    def start(
        purpose: str, *, cheap_hashing: bool = False, public_url: str = "", **settings: str
    ) -> str:
        port = free_port()
        if public_url:
            public_url = settings["PUBLIC_URL"] = public_url.format(port=port)
        command: list[str | Path] = [env.bin("python"), "-m", baked.package, "serve"]
        if cheap_hashing:
            script = CHEAP_HASHING_SERVE.format(
                passwords=baked.module("passwords"), package=baked.package
            )
            command = [env.bin("python"), "-c", script]
        command += ["--port", str(port)]
        # A file, not a pipe: nobody reads while the server runs, and a full pipe
        # would block the server on its next log line.
        log = tmp_path / f"{purpose}.log"
        with log.open("w") as output:
            process = subprocess.Popen(
                command,
                cwd=baked.path,
                env=clean_env(baked, **{"DATABASE_URL": database_url(purpose), **settings}),
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        processes.append(process)
        base = public_url or f"http://127.0.0.1:{port}"
        wait_for(f"{base}/health", process, log)
        return base

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say loudly when checks did not run for want of PostgreSQL or Chromium (xdist
    forwards the reports); under CI they fail instead."""
    not_run = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if "NOT RUN" in str(report.longrepr)
    ]
    if not_run:
        terminalreporter.section("checks NOT RUN", sep="!", red=True, bold=True)
        terminalreporter.line(f"{len(not_run)} checks did not run:")
        for reason in sorted({str(report.longrepr[2]) for report in not_run}):
            terminalreporter.line(f"  {reason.removeprefix('Skipped: ')}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest work first. xdist hands each group of variants that share an
    environment to a worker whole, in collection order (``--no-loadscope-reorder``),
    two ahead: JWT library by JWT library (the first one's groups also hold the
    single-variant checks), PostgreSQL before sqlite (its suites take longer), then
    the checks of no variant, which fill the gaps at the end."""
    items.sort(key=_order)


def _order(item: pytest.Item) -> tuple[int, bool]:
    callspec = getattr(item, "callspec", None)
    variant = callspec.params.get("variant") if callspec else None
    if not variant:
        return len(OPTIONS["jwt_library"]), True
    return OPTIONS["jwt_library"].index(variant["jwt_library"]), variant["database"] != "postgresql"
