"""The README, .ci/run and the GitHub workflow run one and the same test command."""

import re
import sys
from pathlib import Path

import yaml

from .support import TEMPLATE, run


def readme_command(heading: str) -> str:
    """The one command in the first bash block after ``heading`` in README.md."""
    readme = (TEMPLATE / "README.md").read_text()
    section = readme[readme.index(heading) :]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, heading
    lines = [line for line in block.group(1).splitlines() if line and not line.startswith("#")]
    assert len(lines) == 1, lines
    return lines[0]


def test_ci_run_ends_with_the_readme_test_command() -> None:
    script = (TEMPLATE / ".ci" / "run").read_text().strip().splitlines()
    assert script[-1] == readme_command("## Run the tests")


def test_github_workflow_runs_the_readme_test_command_for_each_database() -> None:
    workflow = yaml.safe_load((TEMPLATE / ".github" / "workflows" / "ci.yml").read_text())
    job = workflow["jobs"]["variants"]
    assert job["strategy"]["matrix"]["database"] == ["sqlite", "postgresql"]
    assert job["env"]["TEMPLATE_TEST_DATABASE"] == "${{ matrix.database }}"
    assert job["env"]["CI"] == "true"
    assert "postgres" in job["services"]
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert [run for run in runs if "pytest" in run] == [readme_command("## Run the tests")]


def test_github_workflow_passes_actionlint() -> None:
    run(["actionlint", "-no-color", TEMPLATE / ".github" / "workflows" / "ci.yml"])


def test_readme_quick_start_generates_the_project_it_then_serves(tmp_path: Path) -> None:
    """Its generating step, run as written (into a temporary folder instead of
    ``..``), makes the folder it then enters and the package it then serves: the
    runtime checks serve that package with the same command."""
    steps = readme_command("## Quick start").split(" && ")
    generate = next(step for step in steps if step.startswith("cookiecutter "))
    enter = next(step for step in steps if step.startswith("cd "))
    serve = steps[-1].split()
    arguments = [
        tmp_path if word == ".." else TEMPLATE if word == "." else word for word in generate.split()
    ]
    run([sys.executable, "-m", *arguments], cwd=tmp_path)
    project = tmp_path / enter.removeprefix("cd ../")
    (python, flag, package, command) = serve
    assert (python, flag, command) == (".venv/bin/python", "-m", "serve")
    assert (project / "src" / package / "__main__.py").is_file()


def test_generated_pre_commit_config_is_valid() -> None:
    """Checked once: the file is the same in every variant (nothing in it is rendered)."""
    config = TEMPLATE / "{{cookiecutter.project_slug}}" / ".pre-commit-config.yaml"
    assert not re.search(r"\{\{|\{%", config.read_text())
    run([sys.executable, "-m", "pre_commit", "validate-config", config])
