"""Living projects: a project made with `cruft create` from an earlier commit of this
template takes today's template with `cruft update`: without conflicts, keeping its
owner's edits and its own .env, and ending up exactly like a project generated
today. One variant per structure, as the structure decides where each template
file lands, from each of two earlier commits: one whose structure map differs from
today's, and one from before .env was left to the project (its update follows the
README's one-line step, and the updated project's own tests pass beside that
release's .env)."""

from __future__ import annotations

import filecmp
import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from .support import TEMPLATE, Baked, Environment, clean_env, run, variant_params

GIT = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com"]
CRUFT = [sys.executable, "-m", "cruft"]

#: A commit whose structure map (local_extensions.LAYOUTS) lacks roles that today's
#: has: rendering today's templates with its helpers would fail.
OTHER_MAP = "972d6d9"
#: A commit whose projects do not list .env under [tool.cruft] skip: cruft patches
#: their .env unless it is out of the way (the README's step), and that .env still
#: says HS256 and the other settings of its day.
ENV_NOT_SKIPPED = "c471223"
OWNERS_LINE = "\n# the owner's own line\n"


def commit(repository: Path, message: str) -> None:
    run([*GIT, "add", "--all"], cwd=repository)
    run([*GIT, "commit", "--quiet", "--message", message], cwd=repository)


def template_repository(root: Path, earlier: str) -> Path:
    """A new repository holding this template's ``earlier`` commit."""
    archive = subprocess.run(
        ["git", "archive", earlier], cwd=TEMPLATE, capture_output=True, check=False
    )
    if archive.returncode:
        pytest.fail(f"commit {earlier} not found: a clone with its history is needed")
    repository = root / "template"
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(repository, filter="data")
    run(["git", "init", "--quiet"], cwd=repository)
    commit(repository, "earlier template")
    return repository


def replace_with_working_tree(repository: Path) -> None:
    """Make the repository's next commit the template as it is in this working tree."""
    run(["git", "rm", "--quiet", "-r", "."], cwd=repository)
    files = run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=TEMPLATE)
    for name in files.stdout.splitlines():
        if (TEMPLATE / name).is_file():
            (repository / name).parent.mkdir(parents=True, exist_ok=True)
            (repository / name).write_bytes((TEMPLATE / name).read_bytes())
    commit(repository, "today's template")


def differences(left: Path, right: Path, ignore: list[str]) -> list[str]:
    """Files that differ, or are in one tree only, below two folders."""
    found = []
    compared = filecmp.dircmp(left, right, ignore=ignore)
    pending = [(compared, Path())]
    while pending:
        here, relative = pending.pop()
        found += [str(relative / name) for name in here.left_only + here.right_only]
        found += [str(relative / name) for name in here.diff_files + here.funny_files]
        pending += [(sub, relative / name) for name, sub in here.subdirs.items()]
    return sorted(found)


def cruft_update(project: Path) -> None:
    """`cruft update`, with .env out of the way if the project does not skip it (the
    README's step for projects generated before 2026-11-21)."""
    if "[tool.cruft]" in (project / "pyproject.toml").read_text():
        run([*CRUFT, "update", "--skip-apply-ask"], cwd=project)
        return
    kept = project / ".git" / "env-kept"
    (project / ".env").rename(kept)
    try:
        run([*CRUFT, "update", "--skip-apply-ask"], cwd=project)
    finally:
        kept.rename(project / ".env")


@pytest.mark.parametrize("earlier", [OTHER_MAP, ENV_NOT_SKIPPED])
@pytest.mark.parametrize("variant", variant_params(one_per="structure"))
def test_cruft_update_from_an_earlier_template_matches_todays_and_keeps_the_owners_edits(
    earlier: str,
    variant: dict[str, str],
    baked: Baked,
    env: Environment,
    database_url: Callable[[str], str],
    tmp_path: Path,
) -> None:
    template = template_repository(tmp_path, earlier)
    run(
        [
            *CRUFT,
            "create",
            "--no-input",
            "--output-dir",
            tmp_path / "out",
            "--extra-context",
            json.dumps(variant),
            template,
        ],
        cwd=tmp_path,  # not this repository: its helpers would shadow the template's
    )
    (project,) = (tmp_path / "out").iterdir()
    run(["git", "init", "--quiet"], cwd=project)
    commit(project, "generated")
    secret_env = (project / ".env").read_text()

    # The owner edits the application module while the template moves on.
    main_module = project / "src" / baked.package / "main.py"
    main_module.write_text(main_module.read_text() + OWNERS_LINE)
    commit(project, "owner's edit")
    replace_with_working_tree(template)

    outdated = subprocess.run(
        [*CRUFT, "check"], cwd=project, capture_output=True, text=True, check=False
    )
    assert outdated.returncode == 1, outdated.stdout
    cruft_update(project)

    assert not list(project.rglob("*.rej")), "cruft update left conflicts"
    assert main_module.read_text().endswith(OWNERS_LINE)
    assert (project / ".env").read_text() == secret_env
    run([*CRUFT, "check"], cwd=project)
    main_module.write_text(main_module.read_text().removesuffix(OWNERS_LINE))
    ignore = [".git", ".env", ".cruft.json", "__pycache__", ".venv"]
    assert differences(project, baked.path, ignore) == []

    if earlier == ENV_NOT_SKIPPED:
        assert "ALGORITHM=HS256" in secret_env
    # Its own tests, beside that release's .env: once (on PostgreSQL, as the report
    # had it), since every project updated equals today's, and today's projects run
    # their own tests beside a team's .env (test_runtime).
    if earlier == ENV_NOT_SKIPPED and baked.answers["database"] == "postgresql":
        overrides = {
            "PYTHONPATH": str(project / "src"),
            "PYTEST_DEBUG_TEMPROOT": str(tmp_path),
            "TEST_DATABASE_URL": database_url("cruft"),
        }
        result = run(
            [env.bin("python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=project,
            env=clean_env(baked, **overrides),
        )
        assert " passed" in result.stdout
        assert "failed" not in result.stdout
