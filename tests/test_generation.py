"""Every variant renders into a clean, complete, lint-free project."""

from __future__ import annotations

import ast
import fnmatch
import json
import re
import sys
import tomllib

import pytest
import yaml

from .hooks import extension
from .roles import differences
from .support import (
    OPTIONS,
    TEMPLATE,
    Baked,
    Bakery,
    read_env_file,
    run,
    schema_errors,
    variant_params,
)

pytestmark = pytest.mark.parametrize("variant", variant_params())

#: What rendering leaves behind when it goes wrong (a closing "}}" ends nested dicts).
RESIDUE = re.compile(r"\{\{|\{%|%\}|\{#|cookiecutter\.")


def test_context_matches_the_requested_answers(baked: Baked) -> None:
    """cookiecutter ignores a misspelled key: check every answer was really used."""
    for key, value in baked.answers.items():
        assert baked.context[key] == value, key


#: Files copied as they are: the service's own templates (its pages are Jinja too),
#: in which only a cookiecutter variable would be residue.
UNRENDERED = json.loads((TEMPLATE / "cookiecutter.json").read_text())["_copy_without_render"]


def test_no_template_residue_in_names_or_contents(baked: Baked) -> None:
    for path in baked.path.rglob("*"):
        relative = path.relative_to(baked.path)
        if "__pycache__" in relative.parts:  # bytecode of runtime checks that ran first
            continue
        assert not RESIDUE.search(str(relative)), relative
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            if any(fnmatch.fnmatch(path.name, pattern) for pattern in UNRENDERED):
                assert "cookiecutter." not in text, relative
            else:
                assert not RESIDUE.search(text), relative


def test_files_of_unselected_options_are_absent(baked: Baked) -> None:
    unselected = extension.unselected_files(baked.package, baked.answers)
    assert unselected
    for path in unselected:
        assert not (baked.path / path).exists(), path
    for role in extension.OPTION_ROLES:
        assert [p.name for p in baked.package_dir.rglob(f"{role}_*.py")] == []


def test_every_module_is_where_the_structure_puts_it(baked: Baked) -> None:
    layout = extension.LAYOUTS[baked.answers["structure"]]
    modules = {
        path.relative_to(baked.package_dir).with_suffix("").as_posix().replace("/", ".")
        for path in baked.package_dir.rglob("*.py")
        if not path.name.startswith("__") and "migrations" not in path.parts
    }
    assert modules == set(layout.values())
    for folder in {p.parent for p in baked.package_dir.rglob("*.py")}:
        if "migrations" not in folder.parts:
            assert (folder / "__init__.py").exists(), folder


def test_a_structure_moves_code_and_never_changes_it(baked: Baked, bakery: Bakery) -> None:
    """The project of the next structure (same answers otherwise) is this one with its
    modules moved: read with every module named by its role, each file is the same,
    apart from the README that describes the structure, the fresh secret, and the
    empty ``__init__.py`` of the folders a structure adds."""
    structures = OPTIONS["structure"]
    following = structures[(structures.index(baked.answers["structure"]) + 1) % len(structures)]
    moved = bakery.bake(**{**baked.answers, "structure": following})
    assert differences(baked, moved) == []


def test_no_module_shares_the_package_name(baked: Baked) -> None:
    """``auth_service/auth_service.py`` reads as a mistake (the default package name)."""
    names = {p.stem for p in baked.package_dir.rglob("*.py")}
    names |= {p.name for p in baked.package_dir.rglob("*") if p.is_dir()}
    assert baked.package not in names


#: The users feature: its models, schemas, service and password rules.
USERS_CORE = ("user_models", "user_schemas", "user_service", "passwords")
#: The auth feature, which may use users, never the reverse.
AUTH = (
    "auth_models",
    "auth_schemas",
    "auth_service",
    "auth_router",
    "dependencies",
    "throttle",
    "tokens",
    "jwt_codec",
)


#: The second factors' feature below its router, which uses users only.
MFA_CORE = ("mfa_models", "mfa_schemas", "mfa")


@pytest.mark.parametrize(
    ("feature", "others"),
    [(USERS_CORE, AUTH + MFA_CORE), (MFA_CORE, AUTH)],
    ids=["users-import-neither-auth-nor-mfa", "mfa-never-imports-auth"],
)
def test_features_depend_one_way(
    baked: Baked, feature: tuple[str, ...], others: tuple[str, ...]
) -> None:
    """Dependencies run one way: auth uses users and asks mfa whether a second
    factor is due; mfa uses users. Below its router (which may use auth's request
    dependencies, as any feature's router would), a feature never imports those that
    use it, so each structure keeps the features separable."""
    forbidden = {baked.module(role) for role in others}
    for role in feature:
        path = baked.path / baked.module_file(role)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported = {node.module} | {f"{node.module}.{a.name}" for a in node.names}
                assert not imported & forbidden, (role, node.module)


def test_each_feature_owns_its_tables(baked: Baked) -> None:
    tables = {
        "user_models": {"User"},
        "auth_models": {
            "AuthSession",
            "RefreshToken",
            "LoginThrottle",
            "StoredKey",
            "OneTimeToken",
            "MailRequest",
            "MfaTicket",
        },
        "mfa_models": {"TotpFactor", "RecoveryCode"},
    }
    for role, classes in tables.items():
        source = (baked.path / baked.module_file(role)).read_text()
        defined = {n.name for n in ast.parse(source).body if isinstance(n, ast.ClassDef)}
        assert defined == classes, role
    if baked.answers["structure"] == "domain":
        assert baked.module_file("user_models").endswith("/users/models.py")
        assert baked.module_file("auth_models").endswith("/auth/models.py")
        assert baked.module_file("mfa_models").endswith("/mfa/models.py")


def test_readme_shows_where_each_module_is(baked: Baked) -> None:
    readme = (baked.path / "README.md").read_text()
    section = readme.split("## Where the code is")[1].split("\n## ")[0]
    named = set(re.findall(r"`(src/[^`]+)`", section))
    modules = {p for p in baked.package_dir.rglob("*.py") if p.name != "__init__.py"}
    assert {baked.path / path for path in named if path.endswith(".py")} == {
        p for p in modules if "migrations" not in p.parts
    }
    assert all((baked.path / path).exists() for path in named)


def test_pyproject_declares_exactly_the_chosen_libraries(baked: Baked) -> None:
    project = tomllib.loads((baked.path / "pyproject.toml").read_text())["project"]
    names = {re.match(r"[A-Za-z0-9_.-]+", d).group().lower() for d in project["dependencies"]}
    jwt_packages = {"pyjwt": "pyjwt", "python-jose": "python-jose", "joserfc": "joserfc"}
    for choice, package in jwt_packages.items():
        assert (package in names) == (baked.answers["jwt_library"] == choice), package
    assert ("psycopg" in names) == (baked.answers["database"] == "postgresql")
    assert {"fastapi", "sqlalchemy", "alembic", "pwdlib", "pydantic-settings"} <= names
    assert project["name"] == baked.context["project_slug"]


def test_ruff_check_is_clean(baked: Baked) -> None:
    run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=baked.path)


def test_ruff_format_is_clean(baked: Baked) -> None:
    run([sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "."], cwd=baked.path)


def test_env_holds_a_fresh_secret_and_is_git_ignored(baked: Baked) -> None:
    env = read_env_file(baked.path / ".env")
    assert len(env["SECRET_KEY"]) >= 64
    assert env["SECRET_KEY"] not in (baked.path / ".env.example").read_text()
    assert ".env" in (baked.path / ".gitignore").read_text().splitlines()
    assert (baked.path / ".env").stat().st_mode & 0o077 == 0


def test_github_workflow_is_a_valid_workflow(baked: Baked) -> None:
    workflow = baked.path / ".github" / "workflows" / "ci.yml"
    assert schema_errors("github-workflows", workflow) == []
    jobs = yaml.safe_load(workflow.read_text())["jobs"]
    assert ("services" in jobs["test"]) == (baked.answers["database"] == "postgresql")


def test_github_workflow_passes_actionlint(baked: Baked) -> None:
    """Expressions, action versions and runner images too, which a schema cannot see."""
    run(["actionlint", "-no-color", baked.path / ".github" / "workflows" / "ci.yml"])


def test_dockerfile_passes_hadolint(baked: Baked) -> None:
    run(["hadolint", baked.path / "Dockerfile"])


def test_compose_file_is_valid_and_runs_the_service(baked: Baked) -> None:
    compose = baked.path / "compose.yaml"
    assert schema_errors("compose-spec", compose) == []
    services = yaml.safe_load(compose.read_text())["services"]
    assert services["api"]["build"] == "."
    assert ("db" in services) == (baked.answers["database"] == "postgresql")
