"""Alembic environment: the service's settings and models, on any database.

The models Alembic compares are those of every module the application imports:
a model in a new module is seen once the app imports it (its feature's router
does), with nothing else to register.
"""

import warnings
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

import {{ cookiecutter.package_name }}.main  # noqa: F401 (loads every model the app uses)
{{ imports(config="settings", database="make_engine, Base") }}

if context.config.config_file_name:  # the alembic command line, not the service
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)

# sqlite cannot reflect the case-insensitive username index, so autogenerate skips
# comparing it there (PostgreSQL compares it); the tests check the index itself.
warnings.filterwarnings("ignore", message=".*expression-based index")


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Print the SQL instead of running it (``alembic upgrade head --sql``)."""
    context.configure(
        url=settings.database_url,
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=settings.database_url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
elif (connection := context.config.attributes.get("connection")) is not None:
    run_migrations(connection)  # called from the service's start-up
else:
    engine = make_engine(settings.database_url)
    with engine.begin() as connection:
        run_migrations(connection)
    engine.dispose()
