"""Command line: ``python -m {{ cookiecutter.package_name }} serve|migrate|create-superuser|rotate-keys|purge``."""

import argparse
import getpass
import sys
from datetime import UTC, datetime

import uvicorn
from alembic.util import CommandError
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import make_url
from sqlalchemy.exc import OperationalError

{{ imports(auth_service="purge", config="settings", database="SchemaOutdatedError, SessionLocal, migrate", keys="SigningKeyError, rotate_keys, verifying_time", main="start_up", passwords="hash_password_blocking", user_schemas="UserCreate, Username", user_service="FirstSuperuserError, UsernameTakenError, check_username_free, create_user") }}

APP = "{{ cookiecutter.package_name }}.main:app"


def serve(host: str, port: int, workers: int) -> int:
    """Migrate and create the first superuser here, so that a problem is one line,
    then run the service with uvicorn."""
    start_up()
    uvicorn.run(
        APP,
        host=host,
        port=port,
        workers=workers,
        # The service logs each request itself (without query strings).
        access_log=False,
        # X-Forwarded-For decides the client address (and so the throttle key):
        # believed only from the proxies named in FORWARDED_ALLOW_IPS.
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
    )
    return 0


def migrate_database() -> int:
    """Bring the database to the latest migration, saying what was applied."""
    applied = migrate()
    for migration in applied:
        print(f"applied {migration}")
    if not applied:
        print("nothing to apply: the database is at the latest migration")
    return 0


def ask_username(given: str | None) -> str | None:
    """The new superuser's name, checked before any password is asked for: a name
    that is invalid or taken is refused (given) or asked for again (prompted)."""
    while True:
        username = given if given is not None else input("Username: ").strip()
        try:
            TypeAdapter(Username).validate_python(username)
            with SessionLocal() as session:
                check_username_free(session, username)
        except ValidationError as error:
            problem = error.errors(include_input=False)[0]["msg"]
            print(f"error: username: {problem}", file=sys.stderr)
        except UsernameTakenError:
            print(f"error: user {username!r} already exists", file=sys.stderr)
        else:
            return username
        if given is not None:
            return None


def create_superuser(given: str | None) -> int:
    """Prompt for the password (never echoed), then create the superuser."""
    migrate()
    username = ask_username(given)
    if username is None:
        return 1
    password = getpass.getpass("Password: ")
    if getpass.getpass("Password (again): ") != password:
        print("error: the passwords do not match", file=sys.stderr)
        return 1
    try:
        data = UserCreate(username=username, password=password)
    except ValidationError as error:
        for problem in error.errors(include_input=False):
            print(f"error: {problem['loc'][0]}: {problem['msg']}", file=sys.stderr)
        return 1
    try:
        with SessionLocal.begin() as session:
            create_user(
                session, data, hash_password_blocking(password), is_superuser=True
            )
    except UsernameTakenError:
        print(f"error: user {username!r} already exists", file=sys.stderr)
        return 1
    print(f"superuser {username!r} created")
    return 0


def rotate() -> int:
    """Make a new signing key, the one every worker signs with from now on."""
    migrate()
    key = rotate_keys()
    until = datetime.now(UTC) + verifying_time()
    print(
        f"new signing key {key.kid}; the keys it replaces verify the tokens they "
        f"signed until {until:%Y-%m-%d %H:%M} UTC"
    )
    return 0


def purge_all() -> int:
    """Delete everything that expired, batch after batch."""
    total = 0
    while deleted := purge():
        total += deleted
    print(f"purged {total} expired or revoked rows")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m {{ cookiecutter.package_name }}",
        description="Run and administer the service. Settings come from the "
        "environment and .env, as for the service itself.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the service with uvicorn")
    run.add_argument("--host", default="127.0.0.1", help="address to listen on")
    run.add_argument("--port", type=int, default=8000, help="port to listen on")
    run.add_argument("--workers", type=int, default=1, help="worker processes")
    commands.add_parser("migrate", help="bring the database to the latest migration")
    create = commands.add_parser(
        "create-superuser", help="create a superuser (prompts for the password)"
    )
    create.add_argument(
        "--username", help="the new superuser's name (prompted if left out)"
    )
    commands.add_parser(
        "rotate-keys",
        help="sign with a new key from now on, on every worker (the previous one "
        "verifies until its tokens expire)",
    )
    commands.add_parser(
        "purge",
        help="delete expired logins, used tokens, old throttle records and retired "
        "signing keys",
    )
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "serve":
            return serve(arguments.host, arguments.port, arguments.workers)
        if arguments.command == "migrate":
            return migrate_database()
        if arguments.command == "rotate-keys":
            return rotate()
        if arguments.command == "purge":
            return purge_all()
        return create_superuser(arguments.username)
    except OperationalError as error:
        where = make_url(settings.database_url).render_as_string(hide_password=True)
        reason = str(error.orig).strip().splitlines()[0] if error.orig else ""
        print(f"error: cannot use the database at {where}: {reason}", file=sys.stderr)
    except (
        CommandError,
        FirstSuperuserError,
        SchemaOutdatedError,
        SigningKeyError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
