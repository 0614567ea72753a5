"""Start-up migrations on each database. Replicas or workers that start at once on
one empty database: the migrations run exactly once and one signing key is made (a
PostgreSQL advisory lock, an exclusive sqlite transaction), and every process
starts cleanly. A database made by the first migration, with users in it, is
brought to the latest by every migration since, every user kept. Migrations and
the lock are the same for every JWT library, hashing and structure, so one variant
per database proves it."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import psycopg
import pytest

from .support import Baked, Environment, clean_env, variant_params

pytestmark = pytest.mark.parametrize("variant", variant_params(one_per="database"))

PROCESSES = 6

#: Each process imports the service (the slow part), waits at a barrier of files
#: until all are ready, then runs the service's start-up: the race is real.
START_TOGETHER = """
import pathlib, sys, time
from {package}.main import start_up
gate, count, name = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
(gate / name).touch()
while len(list(gate.iterdir())) < count:
    time.sleep(0.005)
start_up()
print("started")
"""


def query(url: str, sql: str) -> list[tuple]:
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as connection:
            return connection.execute(sql).fetchall()
    with psycopg.connect(url) as connection:
        return connection.execute(sql).fetchall()


def test_processes_starting_at_once_migrate_an_empty_database_and_make_one_key(
    baked: Baked, env: Environment, database_url: Callable[[str], str], tmp_path: Path
) -> None:
    url = database_url("replicas")
    settings = clean_env(
        baked,
        DATABASE_URL=url,
        FIRST_SUPERUSER="root",
        FIRST_SUPERUSER_PASSWORD="a long enough password",
    )
    script = START_TOGETHER.format(package=baked.package)
    processes = [
        subprocess.Popen(
            [env.bin("python"), "-c", script, tmp_path, str(PROCESSES), str(number)],
            cwd=baked.path,
            env=settings,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for number in range(PROCESSES)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    failed = [out for p, out in zip(processes, outputs, strict=True) if p.returncode]
    assert not failed, f"{len(failed)} of {PROCESSES} start-ups failed:\n{failed[0]}"
    assert all(output.strip() == "started" for output in outputs), outputs
    assert query(url, "SELECT count(*) FROM alembic_version") == [(1,)]
    assert query(url, "SELECT username, is_superuser FROM users") == [("root", True)]
    assert query(url, "SELECT count(*) FROM signing_keys") == [(1,)]


#: A migration, then users as it stored them, then the service's migrate.
UPGRADE = """
import sys
from alembic import command
from sqlalchemy import text
from {package} import __main__ as cli
from {database} import MIGRATIONS, engine
from alembic.config import Config

config = Config()
config.set_main_option("script_location", MIGRATIONS)
with engine.begin() as connection:
    config.attributes["connection"] = connection
    command.upgrade(config, sys.argv[1])
    connection.execute(
        text("INSERT INTO users (username, email, hashed_password) VALUES (:u, :e, :h)"),
        [{{"u": f"user{{n}}", "e": f"user{{n}}@example.com", "h": f"hash{{n}}"}} for n in range(3)],
    )
sys.exit(cli.main(["migrate"]))
"""


def test_every_migration_upgrades_a_database_with_users_in_it_keeping_them(
    baked: Baked, env: Environment, database_url: Callable[[str], str]
) -> None:
    url = database_url("upgrade")
    folder = baked.package_dir / "migrations" / "versions"
    revisions = sorted(p.name.split("_")[0] for p in folder.glob("0*.py"))
    first, latest = revisions[0], revisions[-1]
    script = UPGRADE.format(package=baked.package, database=baked.module("database"))
    result = subprocess.run(
        [env.bin("python"), "-c", script, first],
        cwd=baked.path,
        env=clean_env(baked, DATABASE_URL=url),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    applied = [line.split()[1].rstrip(":") for line in result.stdout.splitlines()]
    assert applied == revisions[1:]
    rows = query(url, "SELECT username, email, hashed_password FROM users ORDER BY username")
    assert rows == [(f"user{n}", f"user{n}@example.com", f"hash{n}") for n in range(3)]
    assert query(url, "SELECT version_num FROM alembic_version") == [(latest,)]
