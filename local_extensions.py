"""Jinja helpers shared by every file of the template and by its hooks (installed
by template_extension.py, which reloads this file for every rendering).

The one source of truth for *where* each module of the generated package lives
in each structure. Template files are written once, under their role name in
``src/{{cookiecutter.package_name}}/``; they import each other through
``imports(...)``, and the post-generation hook moves them with ``layout_moves()``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, pass_context
from jinja2.runtime import Context

#: role -> module path (dotted, below the package) for each structure.
LAYOUTS: dict[str, dict[str, str]] = {
    "flat": {
        "config": "config",
        "database": "database",
        "user_models": "user_models",
        "auth_models": "auth_models",
        "passwords": "passwords",
        "tokens": "tokens",
        "jwt_codec": "jwt_codec",
        "keys": "keys",
        "auth_schemas": "auth_schemas",
        "auth_service": "login_service",
        "dependencies": "dependencies",
        "auth_router": "auth",
        "user_schemas": "user_schemas",
        "user_service": "user_service",
        "users_router": "users",
        "throttle": "throttle",
        "mail": "mail",
        "email_links": "email_links",
        "middleware": "middleware",
        "schemas": "schemas",
        "errors": "errors",
        "sessions": "sessions",
        "sessions_router": "session_routes",
        "pages": "pages",
        "page_views": "page_views",
        "mfa_models": "mfa_models",
        "mfa": "mfa",
        "mfa_schemas": "mfa_schemas",
        "mfa_login": "mfa_login",
        "mfa_router": "mfa_routes",
        "main": "main",
    },
    "layered": {
        "config": "core.config",
        "database": "core.database",
        "user_models": "models.user",
        "auth_models": "models.auth",
        "passwords": "core.passwords",
        "tokens": "core.tokens",
        "jwt_codec": "core.jwt_codec",
        "keys": "core.keys",
        "auth_schemas": "schemas.auth",
        "auth_service": "services.auth",
        "dependencies": "api.deps",
        "auth_router": "api.routes.auth",
        "user_schemas": "schemas.user",
        "user_service": "services.users",
        "users_router": "api.routes.users",
        "throttle": "services.throttle",
        "mail": "core.mail",
        "email_links": "services.email_links",
        "middleware": "core.middleware",
        "schemas": "schemas.base",
        "errors": "api.errors",
        "sessions": "services.sessions",
        "sessions_router": "api.routes.sessions",
        "pages": "api.routes.pages",
        "page_views": "api.page_views",
        "mfa_models": "models.mfa",
        "mfa": "services.mfa",
        "mfa_schemas": "schemas.mfa",
        "mfa_login": "services.mfa_login",
        "mfa_router": "api.routes.mfa",
        "main": "main",
    },
    "domain": {
        "config": "config",
        "database": "database",
        "user_models": "users.models",
        "auth_models": "auth.models",
        "passwords": "users.passwords",
        "tokens": "auth.tokens",
        "jwt_codec": "auth.jwt_codec",
        "keys": "auth.keys",
        "auth_schemas": "auth.schemas",
        "auth_service": "auth.service",
        "dependencies": "auth.dependencies",
        "auth_router": "auth.router",
        "user_schemas": "users.schemas",
        "user_service": "users.service",
        "users_router": "users.router",
        "throttle": "auth.throttle",
        "mail": "mail",
        "email_links": "auth.email_links",
        "middleware": "middleware",
        "schemas": "schemas",
        "errors": "errors",
        "sessions": "auth.sessions",
        "sessions_router": "auth.session_router",
        "pages": "web.router",
        "page_views": "web.views",
        "mfa_models": "mfa.models",
        "mfa": "mfa.service",
        "mfa_schemas": "mfa.schemas",
        "mfa_login": "auth.mfa_login",
        "mfa_router": "mfa.router",
        "main": "main",
    },
}

#: Every prompt with a list of choices, as cookiecutter.json (beside this file) has it.
CHOICES: dict[str, list[str]] = {
    key: value
    for key, value in json.loads(
        (Path(__file__).with_name("cookiecutter.json")).read_text(encoding="utf-8")
    ).items()
    if isinstance(value, list) and not key.startswith("_")
}

#: Roles written once per choice of an option: the template holds one module per
#: choice (see ``option_module``); generation keeps the chosen one, under the role's
#: place in the structure, and drops the others.
OPTION_ROLES: dict[str, str] = {"jwt_codec": "jwt_library"}

#: What each option adds to the generated project's dependencies.
REQUIREMENTS: dict[str, dict[str, str]] = {
    "jwt_library": {
        "pyjwt": "pyjwt[crypto]>=2.12",
        "python-jose": "python-jose[cryptography]>=3.5",
        "joserfc": "joserfc>=1.6",
    },
    "database": {
        "sqlite": "",
        "postgresql": "psycopg[binary]>=3.2",
    },
}

LINE_LENGTH = 88


def module_path(package: str, structure: str, role: str) -> str:
    """Dotted import path of ``role`` in ``structure``."""
    return f"{package}.{LAYOUTS[structure][role]}"


def _name_key(name: str) -> tuple[int, str]:
    """isort's order-by-type: CONSTANTS, then Classes, then everything else, each
    in case-insensitive order."""
    bare = name.split(" as ")[0]
    kind = 0 if bare.isupper() and len(bare) > 1 else 1 if bare[:1].isupper() else 2
    return kind, bare.lower()


def import_lines(package: str, structure: str, names: dict[str, str]) -> str:
    """``from ... import ...`` lines for ``names`` ({role: "A, b"}; "" imports the
    module itself, "as name" imports it under one name in every structure),
    merged, sorted as isort sorts them and wrapped as ruff format wraps them."""
    by_module: dict[str, set[str]] = {}
    for role, imported in names.items():
        module = module_path(package, structure, role)
        if imported and not imported.startswith("as "):
            wanted = {name.strip() for name in imported.split(",")}
        else:
            module, _, leaf = module.rpartition(".")
            alias = imported.removeprefix("as ").strip() or leaf
            wanted = {leaf if alias == leaf else f"{leaf} as {alias}"}
        by_module.setdefault(module, set()).update(wanted)
    return "\n".join(
        import_from(module, ", ".join(wanted)) for module, wanted in sorted(by_module.items())
    )


def import_from(module: str, names: str) -> str:
    """``from module import names`` (comma-separated), sorted as isort sorts them and
    wrapped as ruff format wraps them."""
    ordered = sorted({name.strip() for name in names.split(",")}, key=_name_key)
    line = f"from {module} import {', '.join(ordered)}"
    if len(line) > LINE_LENGTH:
        body = "".join(f"    {name},\n" for name in ordered)
        line = f"from {module} import (\n{body})"
    return line


def option_module(role: str, choice: str) -> str:
    """The template's module for ``role`` under one choice: ``jwt_codec_python_jose``."""
    return f"{role}_{choice.replace('-', '_')}"


def module_file(package: str, structure: str, role: str) -> str:
    """The file of ``role`` in ``structure``, relative to the generated project:
    ``src/pkg/users/models.py``."""
    return f"src/{package}/{LAYOUTS[structure][role].replace('.', '/')}.py"


def layout_moves(package: str, answers: dict[str, str]) -> dict[str, str]:
    """Where the post-generation hook moves each role file: {from: to}, relative to
    the project root; roles already in place are left out."""
    moves = {}
    for role in LAYOUTS[answers["structure"]]:
        written = role
        if role in OPTION_ROLES:
            written = option_module(role, answers[OPTION_ROLES[role]])
        source = f"src/{package}/{written}.py"
        target = module_file(package, answers["structure"], role)
        if target != source:
            moves[source] = target
    return moves


def unselected_files(package: str, answers: dict[str, str]) -> list[str]:
    """The template's modules for the choices not made (relative to the project)."""
    return [
        f"src/{package}/{option_module(role, choice)}.py"
        for role, option in OPTION_ROLES.items()
        for choice in CHOICES[option]
        if choice != answers[option]
    ]


def py_string(value: str) -> str:
    """A Python string literal for any text, in the form ruff format keeps: double
    quotes, with double quotes inside written as \\x22 rather than \\"."""
    body = json.dumps(value, ensure_ascii=False)[1:-1]
    return '"' + body.replace('\\"', "\\x22") + '"'


def _answers(context: Context) -> dict[str, Any]:
    return context["cookiecutter"]


@pass_context
def _imports(context: Context, **names: str) -> str:
    answers = _answers(context)
    return import_lines(answers["package_name"], answers["structure"], names)


@pass_context
def _where(context: Context, role: str) -> str:
    answers = _answers(context)
    return module_file(answers["package_name"], answers["structure"], role)


@pass_context
def _layout_moves(context: Context) -> dict[str, str]:
    answers = _answers(context)
    return layout_moves(answers["package_name"], answers)


@pass_context
def _unselected_files(context: Context) -> list[str]:
    answers = _answers(context)
    return unselected_files(answers["package_name"], answers)


@pass_context
def _requirement(context: Context, option: str) -> str:
    return REQUIREMENTS[option][_answers(context)[option]]


def install(environment: Environment) -> None:
    """Add ``imports``, ``import_from``, ``where``, ``layout_moves``,
    ``unselected_files``, ``requirement`` and the ``py_string`` filter (called by
    template_extension.py for every Jinja environment)."""
    environment.globals.update(
        imports=_imports,
        import_from=import_from,
        where=_where,
        layout_moves=_layout_moves,
        unselected_files=_unselected_files,
        requirement=_requirement,
    )
    environment.filters["py_string"] = py_string
