"""uv.lock makes installs reproducible: once a generated project has one (made as
its README says), the CI workflow's install step and the Dockerfile's install
instruction, run as written, install exactly the locked versions, and refuse a lock
that no longer matches pyproject.toml. On the first variant: the install step and
instruction are the same in every variant, and the locks differ only by the
libraries chosen."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from .support import Baked, run, uv, variant_params

pytestmark = pytest.mark.parametrize("variant", variant_params(first_only=True))


@pytest.fixture
def locked(baked: Baked, tmp_path: Path) -> Path:
    """A copy of the project with a uv.lock, made as its README says."""
    project = tmp_path / "project"
    shutil.copytree(baked.path, project, ignore=shutil.ignore_patterns(".venv", "*.db"))
    readme = (project / "README.md").read_text()
    assert re.search(r"^uv lock\b", readme, re.M), "the README says how to make uv.lock"
    run([uv(), "lock", "--quiet"], cwd=project)
    return project


def shell(script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``script`` run by bash, with uv on PATH (as setup-uv or the uv image puts it)."""
    path = f"{Path(uv()).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env={**os.environ, "PATH": path, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def locked_versions(project: Path) -> dict[str, str]:
    lock = tomllib.loads((project / "uv.lock").read_text())
    return {p["name"]: p["version"] for p in lock["package"] if "version" in p}


def installed_versions(python: Path) -> dict[str, str]:
    frozen = run([uv(), "pip", "freeze", "--python", python]).stdout.splitlines()
    return {
        name.lower().replace("_", "-"): version
        for name, _, version in (line.partition("==") for line in frozen)
        if version
    }


def test_ci_installs_exactly_the_locked_versions(locked: Path, tmp_path: Path) -> None:
    workflow = yaml.safe_load((locked / ".github" / "workflows" / "ci.yml").read_text())
    steps = workflow["jobs"]["test"]["steps"]
    assert any(step.get("uses", "").startswith("astral-sh/setup-uv@") for step in steps)
    install = next(step["run"] for step in steps if step.get("name", "").startswith("Install"))
    github_path = tmp_path / "github_path"
    result = shell(install, locked, GITHUB_PATH=str(github_path))
    assert result.returncode == 0, result.stderr
    venv = locked / ".venv"
    assert github_path.read_text().split() == [str(venv / "bin")]
    installed = installed_versions(venv / "bin" / "python")
    locked_packages = locked_versions(locked)
    assert {"pytest", "pre-commit", "ruff"} <= installed.keys()  # the dev extra
    for name, version in installed.items():
        assert locked_packages.get(name) == version, name


def test_docker_image_installs_exactly_the_locked_versions_and_refuses_a_stale_lock(
    baked: Baked, locked: Path, tmp_path: Path
) -> None:
    dockerfile = (locked / "Dockerfile").read_text()
    build_stage = re.split(r"^FROM ", dockerfile, flags=re.M)[1]
    instruction = re.search(r"^RUN (if \[ -f uv\.lock \].*?fi)$", build_stage, re.M | re.S)
    assert instruction, "the build stage installs from uv.lock when there is one"
    assert re.search(r"^COPY [^\n]*uv\.lock\*", build_stage, re.M)
    assert "UV_PROJECT_ENVIRONMENT=/opt/venv" in build_stage

    def build(project: Path, venv: Path) -> subprocess.CompletedProcess[str]:
        run([uv(), "venv", "--quiet", "--python", "python3", venv])
        script = instruction.group(1).replace("\\\n", "\n").replace("/opt/venv", str(venv))
        return shell(script, project, UV_PROJECT_ENVIRONMENT=str(venv))

    image = tmp_path / "opt-venv"
    result = build(locked, image)
    assert result.returncode == 0, result.stderr
    installed = installed_versions(image / "bin" / "python")
    locked_packages = locked_versions(locked)
    assert "fastapi" in installed and "pytest" not in installed  # no dev tools
    for name, version in installed.items():
        assert locked_packages.get(name) == version, name
    module = run(
        [
            image / "bin" / "python",
            "-c",
            f"import {baked.package}; print({baked.package}.__file__)",
        ],
        cwd=tmp_path,
    ).stdout
    assert module.startswith(str(image))  # installed, not a link to the sources

    pyproject = locked / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("dependencies = [", 'dependencies = [\n    "six",', 1)
    )
    stale = build(locked, tmp_path / "stale-venv")
    assert stale.returncode != 0
    assert "lock" in stale.stderr.lower()
