"""Generation refuses bad answers cleanly and survives hostile free text."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from .hooks import extension, post_gen, pre_gen
from .support import TEMPLATE, Bakery, Environment, read_env_file, run


def generate(output: Path, **answers: str) -> subprocess.CompletedProcess[str]:
    """The cookiecutter command line, as a user runs it."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            "--no-input",
            str(TEMPLATE),
            "-o",
            str(output),
            *(f"{key}={value}" for key, value in answers.items()),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"project_slug": "Auth Service"}, "project_slug 'Auth Service' must start"),
        ({"project_slug": "1service"}, "project_slug '1service' must start"),
        ({"project_slug": "auth_service"}, "project_slug 'auth_service' must start"),
        ({"project_slug": "-auth"}, "project_slug '-auth' must start"),
        ({"package_name": "auth-service"}, "is not a valid Python identifier"),
        ({"package_name": "class"}, "is a Python keyword"),
        ({"package_name": "match"}, "is a Python keyword"),
        ({"package_name": "jwt"}, "would shadow the 'jwt' module"),
        ({"package_name": "fastapi"}, "would shadow the 'fastapi' module"),
        ({"package_name": "tests"}, "would shadow the 'tests' module"),
        ({"package_name": "json"}, "would shadow the 'json' module"),
        ({"package_name": "Auth"}, "must be lowercase"),
        ({"package_name": "caf\u00e9"}, "is not a valid Python identifier"),
        ({"project_slug": "a" * 61}, "is longer than 60 characters"),
        ({"package_name": "a" * 61}, "is longer than 60 characters"),
        ({"description": "Line one\nline two"}, "description must be a single line"),
    ],
    ids=lambda value: value if isinstance(value, str) else "-".join(value.values()),
)
def test_bad_answer_stops_generation_with_its_reason_and_leaves_nothing(
    tmp_path: Path, answers: dict[str, str], message: str
) -> None:
    result = generate(tmp_path, **answers)
    assert result.returncode != 0
    first_line = result.stderr.strip().splitlines()[0]
    assert first_line.startswith("ERROR: ") and message in first_line, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_invalid_choice_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    result = generate(tmp_path, database="mysql")
    assert result.returncode != 0
    assert "mysql provided for choice variable database" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_refusal_names_every_problem_at_once() -> None:
    found = pre_gen.problems(
        {
            "project_slug": "Bad",
            "package_name": "class",
            "description": "two\nlines",
        }
    )
    assert len(found) == 3


@pytest.mark.parametrize("slug", ["auth", "auth-service", "a1-b2"])
def test_good_slugs_pass(slug: str) -> None:
    assert pre_gen.check_slug(slug) is None


@pytest.mark.parametrize("name", ["auth_service", "my_auth2", "identity"])
def test_good_package_names_pass(name: str) -> None:
    assert pre_gen.check_package_name(name) is None


HOSTILE = {
    "project_name": 'O\'Brien "Quoted" \\ Caf\u00e9 \u2603 {braces} 100%',
    "author": 'Ren\u00e9e "Q" O\'Hara \\',
    "description": "One line with \"\"\" and ''' and \\N{BULLET} and \\x00 and tabs\there",
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory):
    return Bakery(tmp_path_factory.mktemp("hostile")).bake(**HOSTILE)


def test_hostile_free_text_yields_valid_toml_that_keeps_it(hostile) -> None:
    project = tomllib.loads((hostile.path / "pyproject.toml").read_text())["project"]
    assert project["description"] == hostile.context["description"]
    assert project["authors"] == [{"name": HOSTILE["author"]}]


def test_hostile_free_text_yields_clean_code_that_runs(hostile, tmp_path: Path) -> None:
    run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=hostile.path)
    run([sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "."], cwd=hostile.path)
    env = Environment.create(tmp_path / "env", hostile.path)
    title = run(
        [env.bin("python"), "-c", f"from {hostile.package}.main import app; print(app.title)"],
        cwd=hostile.path,
    ).stdout
    assert title.rstrip("\n") == hostile.context["project_name"]


def test_the_longest_names_allowed_still_lint_clean(tmp_path: Path) -> None:
    longest = Bakery(tmp_path).bake(
        project_slug="s" * 60, package_name="p" * 60, database="postgresql", structure="layered"
    )
    run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=longest.path)
    run([sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "."], cwd=longest.path)


def test_each_generation_gets_its_own_secret(tmp_path: Path) -> None:
    secrets = []
    for run_number in range(2):
        bakery = Bakery(tmp_path / str(run_number))
        secrets.append(read_env_file(bakery.bake().path / ".env")["SECRET_KEY"])
    assert secrets[0] != secrets[1]


# The post-generation helpers on their own.


def test_the_modules_of_unselected_choices_are_dropped_and_the_chosen_one_placed() -> None:
    answers = {"jwt_library": "python-jose", "structure": "layered"}
    assert extension.unselected_files("pkg", answers) == [
        "src/pkg/jwt_codec_pyjwt.py",
        "src/pkg/jwt_codec_joserfc.py",
    ]
    moves = extension.layout_moves("pkg", answers)
    assert moves["src/pkg/jwt_codec_python_jose.py"] == "src/pkg/core/jwt_codec.py"


def test_apply_layout_moves_modules_and_makes_packages(tmp_path: Path) -> None:
    package = tmp_path / "src" / "pkg"
    package.mkdir(parents=True)
    moves = extension.layout_moves("pkg", {"jwt_library": "pyjwt", "structure": "layered"})
    for source in moves:
        (tmp_path / source).write_text(f"# {Path(source).stem}\n")
    post_gen.apply_layout(tmp_path, moves)
    assert (package / "api" / "routes" / "auth.py").read_text() == "# auth_router\n"
    assert (package / "api" / "__init__.py").exists()
    assert (package / "api" / "routes" / "__init__.py").exists()
    assert not (package / "auth_router.py").exists()
    assert not (package / "__init__.py").exists()  # the package's own is the template's


def test_write_env_replaces_only_the_secret(tmp_path: Path) -> None:
    (tmp_path / ".env.example").write_text("# comment\nSECRET_KEY=\nALGORITHM=HS256\n")
    post_gen.write_env(tmp_path)
    lines = (tmp_path / ".env").read_text().splitlines()
    assert lines[0] == "# comment"
    assert lines[1].startswith("SECRET_KEY=") and len(lines[1]) > 70
    assert lines[2] == "ALGORITHM=HS256"


@pytest.mark.parametrize("text", [*HOSTILE.values(), "\\", '"', 'a\\"b', "\u2028\t\x00"])
def test_py_string_round_trips_any_text(text: str) -> None:
    import ast

    literal = extension.py_string(text)
    assert ast.literal_eval(literal) == text
    assert literal.startswith('"') and '"' not in literal[1:-1]
