"""A team adds a feature to a generated project exactly as its README's "Adding a
model and a route" says: the README's files written as they stand, its commands
run as they stand. Alembic must see the new model (a non-empty migration that
upgrades an existing database, then `alembic check` clean), the new migration must
already be in the project's style (ruff clean without running ruff on it), and the
new route must be served. One variant per structure: the structure decides where
the feature's modules go. And a field that is not a column, added to UserPublic as
the README allows, is served."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from .support import Baked, Environment, clean_env, run, variant_params

SECTION = "## Adding a model and a route"

#: Register and log in, in the project's folder with its test hashing, then ``then``.
AS_A_USER = """
from fastapi.testclient import TestClient

import {passwords} as passwords
from {package}.main import app
from tests.cheap_hashing import cheap

passwords.password_hash = cheap(passwords.password_hash)
user = {{"username": "alice", "password": "correct horse battery staple"}}
with TestClient(app) as client:
    assert client.post("/register", json=user).status_code == 201
    token = client.post("/login", json=user).json()["access_token"]
    headers = {{"Authorization": f"Bearer {{token}}"}}
{then}"""
LIST_ITEMS = """
    answer = client.get("/items", headers=headers)
    assert (answer.status_code, answer.json()) == (200, []), answer.text
"""
SHOW_ME = """
    me = client.get("/users/me", headers=headers)
    assert me.status_code == 200, me.text
    print(me.json())
"""


def readme_blocks(readme: str) -> list[tuple[str, str]]:
    """The (language, text) of each code block of the section, in order."""
    section = readme[readme.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    return re.findall(r"```(\w+)\n(.*?)```", section, re.S)


def edit_main(main: Path, edit: str) -> None:
    """The README's edit of main.py: its import, and its line after the last
    include_router of create_app."""
    imports = [line for line in edit.splitlines() if line.startswith("from ")]
    body = [line for line in edit.splitlines() if line.startswith("    ")]
    lines = main.read_text().splitlines()
    last_include = max(i for i, line in enumerate(lines) if "app.include_router(" in line)
    lines[last_include + 1 : last_include + 1] = body
    first_import = next(i for i, line in enumerate(lines) if line.startswith("from "))
    lines[first_import:first_import] = imports
    main.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("variant", variant_params(one_per="structure"))
def test_a_feature_added_as_the_readme_says_is_migrated_and_served(
    baked: Baked, env: Environment, tmp_path: Path
) -> None:
    project = tmp_path / baked.path.name
    shutil.copytree(baked.path, project, ignore=shutil.ignore_patterns("__pycache__"))
    environment = clean_env(
        baked,
        PYTHONPATH=str(project / "src"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'existing.db'}",
        ENVIRONMENT="test",
    )
    environment["PATH"] = f"{env.path / 'bin'}:{environment['PATH']}"
    run([env.bin("python"), "-m", baked.package, "migrate"], cwd=project, env=environment)
    versions = project / "src" / baked.package / "migrations" / "versions"
    shipped = set(versions.glob("*.py"))

    for language, text in readme_blocks((project / "README.md").read_text()):
        if language == "bash":
            run(["bash", "-c", text], cwd=project, env=environment)
            continue
        first, _, code = text.partition("\n")
        path = project / first.removeprefix("# ").split(":")[0]
        if path.name == "main.py":
            edit_main(path, code)
            run([env.bin("ruff"), "check", "--fix", "--quiet", path], cwd=project)
        else:
            path.write_text(code)

    (new,) = set(versions.glob("*.py")) - shipped
    assert re.search(r"op\.create_table\(\s*\"items\"", new.read_text()), new.read_text()
    run([env.bin("ruff"), "check", "."], cwd=project)
    run([env.bin("ruff"), "format", "--check", "."], cwd=project)
    script = AS_A_USER.format(
        package=baked.package, passwords=baked.module("passwords"), then=LIST_ITEMS
    )
    run([env.bin("python"), "-c", script], cwd=project, env=environment)


@pytest.mark.parametrize("variant", variant_params(first_only=True))
def test_a_field_that_is_not_a_column_can_be_added_to_userpublic(
    baked: Baked, env: Environment, tmp_path: Path
) -> None:
    """As the README's "Who is calling" says: with a default, it is served by every
    route that shows a user, /users/me (the snapshot) included."""
    project = tmp_path / baked.path.name
    shutil.copytree(baked.path, project, ignore=shutil.ignore_patterns("__pycache__"))
    schemas = project / baked.module_file("user_schemas")
    source = schemas.read_text()
    anchor = "    created_at: datetime\n"
    assert source.count(anchor) == 1
    schemas.write_text(source.replace(anchor, anchor + '    plan: str = "free"\n'))
    environment = clean_env(
        baked,
        PYTHONPATH=str(project / "src"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'service.db'}",
        ENVIRONMENT="test",
    )
    script = AS_A_USER.format(
        package=baked.package, passwords=baked.module("passwords"), then=SHOW_ME
    )
    shown = run([env.bin("python"), "-c", script], cwd=project, env=environment).stdout
    assert "'plan': 'free'" in shown
