"""Living projects: a project made with `cruft create` from one commit of the template
takes a later commit's changes with `cruft update`, cleanly where its owner has not
edited, keeping the owner's edits and its own .env. One variant per structure, as the
structure decides where a changed template file lands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .support import TEMPLATE, run, variant_params

pytestmark = pytest.mark.parametrize("variant", variant_params(one_per="structure"))

GIT = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com"]
CRUFT = [sys.executable, "-m", "cruft"]

#: What the later template commit changes: a module every structure moves elsewhere,
#: and a new file.
LATER_LINE = "LATER_TEMPLATE_SETTING = True  # added by a later template commit\n"
NEW_FILE = "CHANGELOG.md"


def commit(repository: Path, message: str) -> None:
    run([*GIT, "add", "--all"], cwd=repository)
    run([*GIT, "commit", "--quiet", "--message", message], cwd=repository)


def template_repository(root: Path) -> Path:
    """The template as it is in this working tree, as the first commit of a new repo."""
    files = run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=TEMPLATE)
    repository = root / "template"
    for name in files.stdout.splitlines():
        if (TEMPLATE / name).is_file():
            (repository / name).parent.mkdir(parents=True, exist_ok=True)
            (repository / name).write_bytes((TEMPLATE / name).read_bytes())
    run(["git", "init", "--quiet"], cwd=repository)
    commit(repository, "template v1")
    return repository


def test_cruft_update_brings_template_changes_and_keeps_the_owners_edits(
    variant: dict[str, str], tmp_path: Path
) -> None:
    template = template_repository(tmp_path)
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
        ]
    )
    (project,) = (tmp_path / "out").iterdir()
    state = json.loads((project / ".cruft.json").read_text())
    package = state["context"]["cookiecutter"]["package_name"]
    run(["git", "init", "--quiet"], cwd=project)
    commit(project, "generated")
    secret_env = (project / ".env").read_text()

    # The owner edits the application module...
    main_module = project / "src" / package / "main.py"
    main_module.write_text(main_module.read_text() + "\n# the owner's own line\n")
    commit(project, "owner's edit")

    # ... while the template changes the settings module and adds a file.
    slug_dir = template / "{{cookiecutter.project_slug}}"
    config = slug_dir / "src" / "{{cookiecutter.package_name}}" / "config.py"
    config.write_text(config.read_text() + LATER_LINE)
    (slug_dir / NEW_FILE).write_text("# Changes\n")
    commit(template, "template v2")

    outdated = subprocess.run(
        [*CRUFT, "check"], cwd=project, capture_output=True, text=True, check=False
    )
    assert outdated.returncode == 1, outdated.stdout

    run([*CRUFT, "update", "--skip-apply-ask"], cwd=project)

    assert not list(project.rglob("*.rej")), "cruft update left conflicts"
    changed = run(["git", "status", "--porcelain"], cwd=project).stdout.splitlines()
    (config_module,) = [line[3:] for line in changed if line.endswith("config.py")]
    assert (project / config_module).read_text().endswith(LATER_LINE)
    assert (project / NEW_FILE).read_text() == "# Changes\n"
    assert main_module.read_text().endswith("# the owner's own line\n")
    assert (project / ".env").read_text() == secret_env
    run([*CRUFT, "check"], cwd=project)
