"""Command line: ``python -m {{ cookiecutter.package_name }} create-superuser``."""

import argparse
import getpass
import sys

from pydantic import ValidationError

{{ imports(database="SessionLocal, migrate", user_schemas="UserCreate", user_service="UsernameTakenError, create_user") }}


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
        description="{{ cookiecutter.package_name }} administration.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser(
        "create-superuser", help="create a superuser (prompts for the password)"
    )
    create.add_argument(
        "--username", help="the new superuser's name (prompted if left out)"
    )
    arguments = parser.parse_args(argv)
    return create_superuser(arguments.username)


if __name__ == "__main__":
    sys.exit(main())
