"""The declarative base of every table, engine, sessions, short reads from async
code, and schema migrations."""

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, NamedTuple, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from anyio import CapacityLimiter, to_thread
from anyio.lowlevel import RunVar
from fastapi import Depends
from sqlalchemy import (
    Connection,
    DateTime,
    Dialect,
    Engine,
    MetaData,
    Select,
    TypeDecorator,
    create_engine,
    event,
    make_url,
    text,
)
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

{{ imports(config="settings") }}

T = TypeVar("T")

MIGRATIONS = "{{ cookiecutter.package_name }}:migrations"
#: Pooled connections kept open to a networked database.
POOL_SIZE = 5
#: Threads per event loop for run_query's reads from a networked database.
READ_THREADS = 3
#: Tries at switching a new sqlite file to WAL while other processes open it too.
WAL_ATTEMPTS = 100
#: Databases that live in this process: run_query runs their queries inline.
IN_PROCESS = frozenset({"sqlite"})
#: PostgreSQL advisory lock key held while migrating or making a signing key (any
#: fixed 64-bit number).
MIGRATION_LOCK_KEY = 7_140_522_318_309_041_265
#: Constraint names that are stable across databases, so migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (sqlite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """The base of every table: each feature's models subclass it."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime}


def make_engine(url: str, *, for_reads: bool = False) -> Engine:
    """An engine for ``url`` that never logs bound values (they may be password
    hashes): sqlite with foreign keys and WAL, in a file only its owner can read;
    PostgreSQL with a bounded connect time (so /health answers) and each pooled
    connection checked before use. ``for_reads``: PreparedRead's engine, in autocommit
    (no transaction to begin and end around its one statement; each read sees every
    commit made before it) and unchecked (it costs a round trip; PreparedRead
    reconnects instead)."""
    options: dict[str, Any] = {"hide_parameters": True}
    if for_reads:
        options["isolation_level"] = "AUTOCOMMIT"
    if url.startswith("sqlite"):
        _create_private_file(url)
        # More connections than the threadpool has threads (anyio's default: 40), so
        # run_query's inline reads never make the event loop wait for one.
        engine = create_engine(
            url, max_overflow=50, connect_args={"check_same_thread": False}, **options
        )
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    return create_engine(
        url,
        pool_size=POOL_SIZE,
        pool_pre_ping=not for_reads,
        connect_args={"connect_timeout": 5},
        **options,
    )


def _create_private_file(url: str) -> None:
    """Create a sqlite database file readable by its owner only (0600; sqlite
    gives its journal files the same mode)."""
    path = make_url(url).database
    if path and path != ":memory:" and not path.startswith("file:"):
        with contextlib.suppress(OSError):  # exists, or no such folder
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _configure_sqlite(connection: Any, _record: object) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL is a property of the file: the first connection sets it. Switching takes
    # the file to itself without waiting for others (busy_timeout does not apply),
    # so processes opening a new file at once try again until it is set.
    for attempt in range(WAL_ATTEMPTS):
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            break
        except connection.OperationalError:
            if attempt == WAL_ATTEMPTS - 1:
                raise
            time.sleep(0.05)
    cursor.close()


engine = make_engine(settings.database_url)
SessionLocal = sessionmaker(engine, expire_on_commit=False)
readers = make_engine(settings.database_url, for_reads=True)


def get_session() -> Iterator[Session]:
    """One session per request, closed when the response is sent."""
    with SessionLocal() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


class SchemaOutdatedError(Exception):
    """The database is not at the latest migration, and AUTO_MIGRATE is off."""


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    return config


def lock_database(connection: Connection) -> None:
    """Hold a database-wide lock until the transaction ends, so that several
    workers or replicas starting at once migrate (or make the first signing key)
    one after the other: the first does it, the others then find nothing to do."""
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
        )
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN EXCLUSIVE")


def migrate() -> list[str]:
    """Bring the schema to the latest migration (creates it on an empty database),
    in one transaction under a lock; safe to run from several processes at once.
    Returns the migrations applied ("<revision>: <title>"), oldest first."""
    config = _alembic_config()
    with engine.begin() as connection:
        lock_database(connection)
        current = MigrationContext.configure(connection).get_current_heads()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    script = ScriptDirectory.from_config(config)
    pending = script.iterate_revisions("heads", current or "base")
    # A title that wraps in its docstring is said on one line.
    return [f"{s.revision}: {' '.join(s.doc.split())}" for s in reversed(list(pending))]


def schema_is_current() -> bool:
    """Whether the database is at the latest migration."""
    heads = ScriptDirectory.from_config(_alembic_config()).get_heads()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
    return set(current) == set(heads)


class _Compiled(NamedTuple):
    sql: str
    #: Parameter names in order, for drivers that take parameters by position.
    positions: tuple[str, ...] | None
    columns: tuple[str, ...]
    converters: tuple[Callable[[Any], Any] | None, ...]


class PreparedRead:
    """A SELECT compiled once, whose first row is read on a raw pooled connection,
    its values converted as SQLAlchemy converts them: this skips what SQLAlchemy
    does on every execution (cache key, execution context, result object). For the
    one read behind every authenticated request; make it once, at import (each
    holds its own compiled form: nothing is cached anywhere else). Parameters
    reach the driver as they are given. If the server dropped the pooled
    connections (a restart, a failover), they are replaced and the read runs once
    more."""

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: _Compiled | None = None

    def first(self, parameters: dict[str, Any]) -> dict[str, Any] | None:
        compiled = self._compiled or self._compile()
        arguments: Any = parameters
        if compiled.positions is not None:
            arguments = [parameters[name] for name in compiled.positions]
        try:
            row = _fetch_one(compiled.sql, arguments)
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
            readers.dispose()
            row = _fetch_one(compiled.sql, arguments)
        if row is None:
            return None
        return {
            column: convert(value) if convert else value
            for column, convert, value in zip(
                compiled.columns, compiled.converters, row, strict=True
            )
        }

    def _compile(self) -> _Compiled:
        dialect = readers.dialect
        compiled = self.statement.compile(dialect=dialect)
        columns = self.statement.selected_columns
        self._compiled = _Compiled(
            sql=compiled.string,
            positions=tuple(compiled.positiontup or ())
            if compiled.positional
            else None,
            columns=tuple(columns.keys()),
            converters=tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in columns
            ),
        )
        return self._compiled


def _fetch_one(sql: str, arguments: Any) -> Any:
    """Raises the driver's errors as SQLAlchemy raises them (OperationalError when
    the server is unavailable), its values hidden."""
    dbapi_error = readers.dialect.loaded_dbapi.Error
    try:
        connection = readers.raw_connection()
    except dbapi_error as error:  # could not connect
        raise _wrapped(sql, error, lost=False) from error
    try:
        cursor = connection.cursor()
        cursor.execute(sql, arguments)
        row = cursor.fetchone()
        cursor.close()
    except dbapi_error as error:
        lost = readers.dialect.is_disconnect(error, connection.dbapi_connection, None)
        connection.invalidate()
        raise _wrapped(sql, error, lost=lost) from error
    finally:
        connection.close()
    return row


def _wrapped(sql: str, error: Exception, *, lost: bool) -> DBAPIError:
    return DBAPIError.instance(
        sql,
        None,
        error,
        readers.dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=lost,
        dialect=readers.dialect,
    )


_reader_threads: RunVar[CapacityLimiter] = RunVar("reader_threads")


def _reader_slots() -> CapacityLimiter:
    """READ_THREADS threads for run_query per event loop: a few of its own, so that
    reads never queue behind the shared threadpool's work, and not more than the
    cores can serve (the figures behind the number are in bench/)."""
    try:
        return _reader_threads.get()
    except LookupError:
        _reader_threads.set(CapacityLimiter(READ_THREADS))
        return _reader_threads.get()


async def run_query(query: Callable[[], T]) -> T:
    """Run a short query from async code. sqlite lives in this process: the query
    costs less than a hand-off to a thread, so it runs inline. A networked database
    runs on a few threads of its own, so waiting for it never stalls the loop."""
    if engine.dialect.name in IN_PROCESS:
        return query()
    return await to_thread.run_sync(query, limiter=_reader_slots())


async def in_transaction(work: Callable[[Session], T]) -> T:
    """Run ``work`` in one transaction (committed when it returns), on a thread."""

    def run() -> T:
        with SessionLocal.begin() as session:
            return work(session)

    return await to_thread.run_sync(run)


def ping() -> bool:
    """Whether the database answers."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return False
    return True
