"""Engine, sessions, short reads from async code, and schema migrations."""

from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from anyio import CapacityLimiter, to_thread
from anyio.lowlevel import RunVar
from fastapi import Depends
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

{{ imports(config="settings") }}

T = TypeVar("T")

MIGRATIONS = "{{ cookiecutter.package_name }}:migrations"
#: Pooled connections kept open to a networked database.
POOL_SIZE = 5
#: Databases that live in this process: run_query runs their queries inline.
IN_PROCESS = frozenset({"sqlite"})
#: PostgreSQL advisory lock key held while migrating (any fixed 64-bit number).
MIGRATION_LOCK_KEY = 7_140_522_318_309_041_265


def make_engine(url: str) -> Engine:
    """An engine for ``url``: sqlite with foreign keys and WAL; PostgreSQL with
    checked pooled connections and a bounded connect time (so /health answers)."""
    if url.startswith("sqlite"):
        # More connections than the threadpool has threads (anyio's default: 40), so
        # run_query's inline lookups never make the event loop wait for one.
        engine = create_engine(
            url, max_overflow=50, connect_args={"check_same_thread": False}
        )
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    return create_engine(
        url,
        pool_size=POOL_SIZE,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 5},
    )


def _configure_sqlite(connection: Any, _record: object) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


engine = make_engine(settings.database_url)
SessionLocal = sessionmaker(engine, expire_on_commit=False)


def get_session() -> Iterator[Session]:
    """One session per request, closed when the response is sent."""
    with SessionLocal() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    return config


def _lock_for_migration(connection: Connection) -> None:
    """Hold a database-wide lock until the migration's transaction ends, so that
    several workers or replicas starting at once migrate one after the other: the
    first applies the migrations, the others then find nothing to do."""
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
        )
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN EXCLUSIVE")


def migrate() -> None:
    """Bring the schema to the latest migration (creates it on an empty database),
    in one transaction under a lock; safe to run from several processes at once."""
    config = _alembic_config()
    with engine.begin() as connection:
        _lock_for_migration(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def schema_is_current() -> bool:
    """Whether the database is at the latest migration."""
    heads = ScriptDirectory.from_config(_alembic_config()).get_heads()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
    return set(current) == set(heads)


def read_connection() -> Connection:
    """A pooled connection for one read. On a networked database it stays outside
    any transaction: no BEGIN and ROLLBACK round trips around the one statement
    (sqlite has none to save, and switching its mode would cost time)."""
    connection = engine.connect()
    if engine.dialect.name in IN_PROCESS:
        return connection
    return connection.execution_options(isolation_level="AUTOCOMMIT")


_readers: RunVar[CapacityLimiter] = RunVar("readers")


def _reader_slots() -> CapacityLimiter:
    """POOL_SIZE threads for run_query per event loop. More would only queue for
    the pool and the GIL: on the shared threadpool of 40, p99 went past a second."""
    try:
        return _readers.get()
    except LookupError:
        _readers.set(CapacityLimiter(POOL_SIZE))
        return _readers.get()


async def run_query(query: Callable[[], T]) -> T:
    """Run a short query from async code. sqlite lives in this process: the query
    costs less than a hand-off to a thread, so it runs inline. A networked database
    runs on a few threads of its own, so waiting for it never stalls the loop."""
    if engine.dialect.name in IN_PROCESS:
        return query()
    return await to_thread.run_sync(query, limiter=_reader_slots())


def ping() -> bool:
    """Whether the database answers."""
    try:
        with read_connection() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return False
    return True
