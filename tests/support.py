"""What the template's tests share: the variants, baking, environments and PostgreSQL."""

from __future__ import annotations

import base64
import functools
import importlib.util
import itertools
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from email.message import Message
from http.client import HTTPException
from importlib.resources import files
from pathlib import Path
from types import ModuleType

import psycopg
import pytest
from cookiecutter.main import cookiecutter
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from ruamel.yaml import YAML

TEMPLATE = Path(__file__).resolve().parent.parent
COOKIECUTTER_JSON = json.loads((TEMPLATE / "cookiecutter.json").read_text())


@functools.cache
def _vendored_schema(name: str) -> Validator:
    path = files("check_jsonschema.builtin_schemas.vendor") / f"{name}.json"
    schema = json.loads(path.read_text())
    validator = validator_for(schema)
    return validator(schema, format_checker=validator.FORMAT_CHECKER)


def schema_errors(name: str, path: Path) -> list[str]:
    """What the public schema ``name`` finds wrong with a YAML file: check-jsonschema's
    vendored copy (``--builtin-schema vendor.<name>``), checked in this process (a
    process per file cost 0.25 s, 72 times a run). Read as YAML 1.2, as GitHub and
    Compose read it ("on" is a key, not a boolean)."""
    document = YAML(typ="safe", pure=True).load(path.read_text())
    return [error.message for error in _vendored_schema(name).iter_errors(document)]


def load_template_module(path: str, name: str) -> ModuleType:
    """A Python file of the template (hook, extension) as a plain module."""
    spec = importlib.util.spec_from_file_location(name, TEMPLATE / path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


extension = load_template_module("local_extensions.py", "local_extensions")

#: Every prompt with a list of choices, in cookiecutter.json's order.
OPTIONS: dict[str, list[str]] = {
    key: value
    for key, value in COOKIECUTTER_JSON.items()
    if isinstance(value, list) and not key.startswith("_")
}

#: Every combination of choices: the product's promise is that each one works.
VARIANTS: list[dict[str, str]] = [
    dict(zip(OPTIONS, combination, strict=True))
    for combination in itertools.product(*OPTIONS.values())
]


#: TEMPLATE_TEST_DATABASE=sqlite (or postgresql) proves only that half of the matrix,
#: so that CI can run the two halves side by side with the same command.
SELECTED: list[dict[str, str]] = [
    v for v in VARIANTS if os.environ.get("TEMPLATE_TEST_DATABASE", v["database"]) == v["database"]
]


def variant_id(answers: dict[str, str]) -> str:
    return "-".join(answers[key] for key in OPTIONS)


def variant_params(
    one_per: str | None = None,
    *,
    covering: str | None = None,
    pairwise: bool = False,
    first_only: bool = False,
) -> list:
    """One pytest param per variant. ``one_per="structure"``: one variant for each
    choice of that option (for checks that only it can change), taken from the
    pairwise subset where it has one, so that such checks spread over the groups
    of variants that share an environment (and over the xdist workers); with
    ``covering="database"``, chosen so that every database is among them too.
    ``pairwise``: a covering subset, see ``pairwise_variants``. ``first_only``: the
    first variant alone (each option at its first choice), for checks no option changes.

    Variants whose options add the same dependencies run on one xdist worker, so
    that they share one environment (see the ``environments`` fixture)."""
    variants = SELECTED
    if one_per:
        candidates = pairwise_variants(SELECTED) + SELECTED
        taken: Counter[str] = Counter()
        variants = []
        for choice in OPTIONS[one_per]:
            matching = [v for v in candidates if v[one_per] == choice]
            if matching:
                # The first whose ``covering`` choice is the least taken so far.
                variant = min(matching, key=lambda v: taken[v[covering]] if covering else 0)
                taken[variant[covering] if covering else ""] += 1
                variants.append(variant)
    if pairwise:
        variants = pairwise_variants(SELECTED)
    if first_only:
        variants = SELECTED[:1]
    return [
        pytest.param(v, id=variant_id(v), marks=pytest.mark.xdist_group(dependency_group(v)))
        for v in variants
    ]


#: The options that change what the service does: ``structure`` only moves code.
BEHAVIOUR = tuple(option for option in OPTIONS if option != "structure")


def choice_pairs(answers: dict[str, str]) -> set[tuple[tuple[str, str], ...]]:
    """Every pair of the answers to two BEHAVIOUR options."""
    return set(itertools.combinations(((o, answers[o]) for o in BEHAVIOUR), 2))


def pairwise_variants(variants: list[dict[str, str]]) -> list[dict[str, str]]:
    """A few variants in which every pair of choices of any two BEHAVIOUR options
    appears at least once, and every choice of the others (a greedy covering array):
    6 of the 36, for checks too slow for all."""
    others = [option for option in OPTIONS if option not in BEHAVIOUR]

    def singles(variant: dict[str, str]) -> set[tuple[str, str]]:
        return {(option, variant[option]) for option in others}

    uncovered_pairs = set().union(*map(choice_pairs, variants))
    uncovered_singles = set().union(*map(singles, variants))
    chosen = []
    while uncovered_pairs or uncovered_singles:
        best = max(
            variants,
            key=lambda v: (
                len(choice_pairs(v) & uncovered_pairs),
                len(singles(v) & uncovered_singles),
            ),
        )
        chosen.append(best)
        uncovered_pairs -= choice_pairs(best)
        uncovered_singles -= singles(best)
    return chosen


def dependency_group(answers: dict[str, str]) -> str:
    """The answers that decide a variant's dependencies (local_extensions.REQUIREMENTS)."""
    return "-".join(answers[option] for option in extension.REQUIREMENTS)


def run(
    args: list[str | Path], cwd: Path | None = None, env: dict | None = None, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    """Run a command, failing the test with its output if it fails."""
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-8000:]}\n--- stderr\n{result.stderr[-8000:]}",
            pytrace=False,
        )
    return result


@dataclass
class Baked:
    """A generated project and the context cookiecutter actually used."""

    answers: dict[str, str]
    path: Path
    context: dict[str, str]

    @property
    def package(self) -> str:
        return self.context["package_name"]

    @property
    def package_dir(self) -> Path:
        return self.path / "src" / self.package

    def module(self, role: str) -> str:
        """The dotted import path of ``role`` in this project's structure."""
        return extension.module_path(self.package, self.answers["structure"], role)

    def module_file(self, role: str) -> str:
        """The file of ``role``, relative to the project: ``src/pkg/users/models.py``."""
        return extension.module_file(self.package, self.answers["structure"], role)


class Bakery:
    """Bakes each set of answers once per test session (per xdist worker)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.replay = root / "replay"
        self.config = root / "cookiecutter-config.yaml"
        self.config.write_text(f"replay_dir: {json.dumps(str(self.replay))}\n")
        self._baked: dict[str, Baked] = {}

    def bake(self, **answers: str) -> Baked:
        key = json.dumps(answers, sort_keys=True)
        if key not in self._baked:
            output = self.root / f"bake-{len(self._baked)}"
            path = Path(
                cookiecutter(
                    str(TEMPLATE),
                    no_input=True,
                    extra_context=answers,
                    output_dir=str(output),
                    config_file=str(self.config),
                )
            )
            replay = json.loads((self.replay / f"{TEMPLATE.name}.json").read_text())
            self._baked[key] = Baked(answers, path, replay["cookiecutter"])
        return self._baked[key]


def uv() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


@dataclass
class Environment:
    """A virtual environment holding generated projects, each installed from its own
    pyproject.toml (so a dependency it forgets to declare is missing here)."""

    path: Path

    def bin(self, name: str) -> Path:
        return self.path / "bin" / name

    @classmethod
    def create(cls, path: Path, project: Path) -> Environment:
        run([uv(), "venv", "--quiet", "--python", sys.executable, path])
        environment = cls(path)
        environment.install(project)
        return environment

    def install(self, project: Path, *, dependencies: bool = True) -> None:
        """Install ``project`` (editable) with its dev extras, or without resolving
        its dependencies when the environment already holds exactly them."""
        resolve = [] if dependencies else ["--no-deps"]
        run(
            [
                uv(),
                "pip",
                "install",
                "--quiet",
                "--python",
                self.bin("python"),
                *resolve,
                "--editable",
                f"{project}[dev]",
            ]
        )


def declared_dependencies(project: Path) -> str:
    """Everything a project's pyproject.toml asks to install, as one comparable key."""
    metadata = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    return json.dumps(
        [sorted(metadata["dependencies"]), metadata.get("optional-dependencies", {})],
        sort_keys=True,
    )


def read_env_file(path: Path) -> dict[str, str]:
    """The NAME=value lines of a .env-style file."""
    return dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )


def clean_env(baked: Baked, **overrides: str) -> dict[str, str]:
    """The caller's environment without anything the project reads as a setting
    (every setting is in its .env.example): the tests choose those."""
    settings = set(read_env_file(baked.path / ".env.example")) | {"TEST_DATABASE_URL"}
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in settings and key not in {"VIRTUAL_ENV", "PYTHONPATH"}
    }
    # Its own code first, whichever project of its environment was installed last.
    return {**env, "PYTHONPATH": str(baked.path / "src"), **overrides}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_postgres_bin() -> Path | None:
    """The folder holding initdb and pg_ctl: on PATH, or Debian's versioned folder."""
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found; install them with "
    "`sudo apt-get install -y postgresql` (Debian/Ubuntu) or `brew install postgresql`"
)


@dataclass
class Postgres:
    """Where the suite makes its databases: the server this session started, or
    the one TEMPLATE_TEST_POSTGRES_URL names (e.g. a CI service container)."""

    admin_url: str

    def create_database(self, name: str) -> str:
        """A new, empty database; returns its URL."""
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.admin_url.rsplit("/", 1)[0] + f"/{name}"


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster on a free loopback port, started with initdb and
    pg_ctl (as the postgres OS user when running as root: the server refuses root)."""

    bindir: Path
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pg-")))
    port: int = field(default_factory=free_port)

    def _as_owner(self, args: list[str | Path]) -> list[str]:
        args = [str(a) for a in args]
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *args]
        return args

    def start(self) -> None:
        data = self.root / "data"
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        run(
            self._as_owner(
                [
                    self.bindir / "initdb",
                    "-D",
                    data,
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ]
            )
        )
        self.resume()

    def _pg_ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.root} -h 127.0.0.1 -F -c fsync=off"
        data, log = self.root / "data", self.root / "server.log"
        pg_ctl = [self.bindir / "pg_ctl", "-D", data, "-o", options, "-l", log, "-w", *args]
        run(self._as_owner(pg_ctl))

    def resume(self) -> None:
        """Start the server on its data (after ``start`` created it, or ``halt``)."""
        self._pg_ctl("start")

    def halt(self) -> None:
        """Stop the server and keep its data, as an outage would: ``resume`` ends it."""
        self._pg_ctl("-m", "fast", "stop")

    def restart(self) -> None:
        """Stop the server (ending its connections) and start it again on its data."""
        self._pg_ctl("-m", "fast", "restart")

    def stop(self) -> None:
        subprocess.run(
            self._as_owner(
                [self.bindir / "pg_ctl", "-D", self.root / "data", "-m", "immediate", "stop"]
            ),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


@dataclass(frozen=True)
class Answer:
    """What a server answered: its status (0: no HTTP answer at all, ``error`` says
    why), headers (names in lower case) and body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str = ""

    def json(self) -> object:
        return json.loads(self.body or b"null")

    def is_json(self) -> bool:
        if not self.headers.get("content-type", "").startswith("application/json"):
            return False
        try:
            self.json()
        except ValueError:
            return False
        return True

    def __str__(self) -> str:
        if self.error:
            return f"no answer ({self.error})"
        return f"{self.status} {self.body[:200].decode(errors='replace')}"


def call(
    method: str,
    url: str,
    *,
    json_body: object = None,
    form: dict[str, str] | None = None,
    raw: bytes | None = None,
    token: str | None = None,
    timeout: float = 10,
) -> Answer:
    """One HTTP request with the standard library: a JSON body, a form, or ``raw``
    bytes (sent as JSON if they look like it). A refused, reset or timed-out
    connection is an answer too."""
    headers = {"Accept": "application/json"}
    data = raw
    if json_body is not None:
        data = json.dumps(json_body).encode()
    elif form is not None:
        data = urllib.parse.urlencode(form).encode()
    if data is not None:
        is_json = data.startswith(b"{")
        headers["Content-Type"] = (
            "application/json" if is_json else "application/x-www-form-urlencoded"
        )
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, _lower(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, _lower(error.headers), error.read())
    except (OSError, HTTPException) as error:
        return Answer(0, error=repr(error))


def _lower(headers: Message) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def http(method: str, url: str, **options: object) -> tuple[int, dict]:
    """``call``, for a JSON answer: (status, JSON body)."""
    answer = call(method, url, **options)  # type: ignore[arg-type]
    return answer.status, answer.json()  # type: ignore[return-value]


def forge_header(token: str, header: dict) -> str:
    """``token`` with another header (its signature no longer matches)."""
    head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return head + token[token.index(".") :]


def wait_for(url: str, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    """Wait until ``url`` answers 200, or fail with the server's output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if call("GET", url).status == 200:
            return
        time.sleep(0.1)
    process.kill()
    process.wait()
    pytest.fail(f"server did not answer at {url}:\n{log.read_text()}", pytrace=False)
