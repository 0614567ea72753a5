"""Refuse answers that would generate a broken project.

Runs before any file is rendered; cookiecutter removes the (still empty) project
folder when this exits non-zero. The answers arrive as JSON, so no quote,
backslash or newline in them can change this script.
"""

from __future__ import annotations

import json
import keyword
import re
import sys

ANSWERS_JSON = r"""{{ cookiecutter | tojson }}"""

SLUG = re.compile(r"[a-z][a-z0-9-]*\Z")
MAX_LENGTH = 60

#: Top-level modules the generated service or its tests import: a package of
#: the same name would shadow them.
SHADOWED = frozenset(
    {
        "alembic",
        "argon2",
        "bcrypt",
        "email_validator",
        "fastapi",
        "httpx",
        "httpx2",
        "jose",
        "joserfc",
        "jwt",
        "multipart",
        "psycopg",
        "pwdlib",
        "pydantic",
        "pydantic_settings",
        "pytest",
        "python_multipart",
        "sqlalchemy",
        "starlette",
        "tests",
        "uvicorn",
    }
    | set(sys.stdlib_module_names)
)


def check_slug(slug: str) -> str | None:
    """Return why ``slug`` is not a usable folder/distribution name, or None."""
    if not SLUG.match(slug):
        return (
            f"project_slug {slug!r} must start with a lowercase letter and contain "
            "only lowercase letters, digits and hyphens"
        )
    if len(slug) > MAX_LENGTH:
        return f"project_slug {slug!r} is longer than {MAX_LENGTH} characters"
    return None


def check_package_name(name: str) -> str | None:
    """Return why ``name`` is not a usable import name, or None."""
    if not name.isidentifier() or not name.isascii():
        return f"package_name {name!r} is not a valid Python identifier"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"package_name {name!r} is a Python keyword"
    if name.lower() in SHADOWED:
        return f"package_name {name!r} would shadow the {name!r} module the service imports"
    if name != name.lower():
        return f"package_name {name!r} must be lowercase"
    if len(name) > MAX_LENGTH:
        return f"package_name {name!r} is longer than {MAX_LENGTH} characters"
    return None


def check_description(description: str) -> str | None:
    """Return why ``description`` cannot be the package's summary, or None."""
    if len(description.splitlines()) > 1:
        return "description must be a single line: it becomes the package's summary"
    return None


def problems(answers: dict[str, object]) -> list[str]:
    """Every reason to refuse ``answers``."""
    found = [
        check_slug(str(answers.get("project_slug", ""))),
        check_package_name(str(answers.get("package_name", ""))),
        check_description(str(answers.get("description", ""))),
    ]
    return [problem for problem in found if problem]


def main() -> int:
    found = problems(json.loads(ANSWERS_JSON))
    for problem in found:
        print(f"ERROR: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
