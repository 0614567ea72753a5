"""Command line: ``python -m {{ cookiecutter.package_name }} serve|migrate|create-superuser``."""

import argparse
import getpass
import sys

import uvicorn
from pydantic import ValidationError

{{ imports(database="SessionLocal, migrate", user_schemas="UserCreate", user_service="UsernameTakenError, create_user") }}

APP = "{{ cookiecutter.package_name }}.main:app"


def serve(host: str, port: int, workers: int) -> int:
    """Run the service with uvicorn (it migrates the schema as it starts)."""
    # The service logs each request itself (without query strings): no access log.
    uvicorn.run(APP, host=host, port=port, workers=workers, access_log=False)
    return 0


def migrate_database() -> int:
    """Bring the database to the latest migration."""
    migrate()
    print("database is at the latest migration")
    return 0


def create_superuser(username: str | None) -> int:
    """Prompt for the password (never echoed), then create the superuser."""
    username = username or input("Username: ").strip()
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
    migrate()
    with SessionLocal() as session:
        try:
            create_user(session, data, is_superuser=True)
        except UsernameTakenError:
            print(f"error: user {username!r} already exists", file=sys.stderr)
            return 1
    print(f"superuser {username!r} created")
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
    arguments = parser.parse_args(argv)
    if arguments.command == "serve":
        return serve(arguments.host, arguments.port, arguments.workers)
    if arguments.command == "migrate":
        return migrate_database()
    return create_superuser(arguments.username)


if __name__ == "__main__":
    sys.exit(main())
