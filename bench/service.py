"""Benchmark a generated service against a bare FastAPI endpoint on the same server.

    python3 bench/service.py [--database sqlite|postgresql] [--jwt-library ...]
                             [--password-hashing ...] [--structure ...]
                             [--workers 1 2] [--duration 10] [--connections 32]

Generates the variant, installs it into its own environment, and for each worker
count starts (with uvicorn, uvloop and httptools, no access log, as `serve` does):
a bare FastAPI app with an `async def` and a `def` endpoint; the "floor", an app made
of the service's own request middleware, bearer dependency and response model that
does no work (what any GET /users/me with this contract costs at least); then the
service on a sqlite file or a throwaway PostgreSQL. It seeds users straight into the
database (one password hash shared by all, so 100,000 users take seconds) and drives
load with wrk (installed with apt-get when missing).
Prints requests/s, p50 and p99, and the ratio to the bare `async def` endpoint;
GET /users/me is measured with a bearer token and with a browser session's cookie.
Then the write routes PATCH /users/me and POST /token/refresh (one connection
each) idle and then during 60 correct logins at once in a loop, with the logins'
answers by status (503: the hashing queue was full). The service signs with its
default, ES256 and a key it made; last, /users/me and a login with it signing with
HS256 (SECRET_KEY) instead.

A script that prints figures, not a test: these machines are shared and noisy, so
compare ratios measured in one run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from local_extensions import LAYOUTS, module_path  # noqa: E402
from tests.support import (  # noqa: E402
    OPTIONS,
    Bakery,
    Environment,
    Postgres,
    PostgresServer,
    find_postgres_bin,
    free_port,
    http,
)

PASSWORD = "benchmark password"
REFERENCE_APP = """\
from fastapi import FastAPI

app = FastAPI()


@app.get("/async")
async def bare_async() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/sync")
def bare_sync() -> dict[str, str]:
    return {"status": "ok"}
"""
#: The least any GET /users/me can cost with this service's contract, built from the
#: service's own parts: its request-log middleware (one JSON line and X-Request-ID
#: per request, security headers), the caller's dependency chain (a bearer token or
#: the session cookie) and the UserPublic response model; but no token check and no
#: database read.
FLOOR_APP = """\
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI

from {dependencies} import oauth2_scheme, session_cookie
from {middleware} import RequestMiddleware, configure_logging
from {user_schemas} import UserPublic

CALLER = UserPublic(
    id=1,
    username="user1",
    email=None,
    full_name=None,
    is_active=True,
    is_superuser=False,
    is_verified=False,
    created_at=datetime.now(UTC),
)


async def caller(
    token: Annotated[str | None, Depends(oauth2_scheme)],
    cookie: Annotated[str | None, Depends(session_cookie)],
) -> UserPublic:
    return CALLER


configure_logging()
app = FastAPI()
app.add_middleware(RequestMiddleware)


@app.get("/floor")
async def floor(user: Annotated[UserPublic, Depends(caller)]) -> UserPublic:
    return user
"""
#: A wrk script for one fixed request (``body`` in a Lua long string, so JSON fits).
REQUEST = """\
wrk.method = "{method}"
wrk.body = [[{body}]]
wrk.headers["Content-Type"] = "{content_type}"
"""
#: Correct logins in a loop (arguments: the first and last user number, the
#: url-encoded password), cycling through those users so that no (account, address)
#: pair nor any user's cap on live logins takes them all; answers are counted by
#: status and printed at the end as "status N: M".
#: A 503 delays one next request by its Retry-After (at most 5 s), as a client would.
LOGIN_FLOOD = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local threads = {}

function setup(thread)
  thread:set("offset", #threads * 37)
  table.insert(threads, thread)
end

function init(args)
  first, users = tonumber(args[1]), tonumber(args[2]) - tonumber(args[1]) + 1
  password, n = args[3], offset
  answers, backoff = {}, 0
end

function request()
  n = n + 1
  local user = first + n % users
  return wrk.format(nil, nil, nil, "username=user" .. user .. "&password=" .. password)
end

function response(status, headers, body)
  answers[status] = (answers[status] or 0) + 1
  if status == 503 then
    local after = headers["Retry-After"] or headers["retry-after"]
    backoff = math.min(tonumber(after) or 1, 5) * 1000
  end
end

function delay()
  local ms = backoff
  backoff = 0
  return ms
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("answers")) do
      total[status] = (total[status] or 0) + count
    end
  end
  for status, count in pairs(total) do
    io.write(string.format("status %d: %d\\n", status, count))
  end
end
"""
#: POST /token/refresh in a chain (argument: the first refresh token): each answer's
#: refresh token is the next request's, as refresh tokens are good for one use.
REFRESH_CHAIN = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function init(args)
  token = args[1]
end

function request()
  return wrk.format(nil, nil, nil, '{"refresh_token": "' .. token .. '"}')
end

function response(status, headers, body)
  token = body:match('"refresh_token"%s*:%s*"([^"]+)"') or token
end
"""
#: How many correct logins at once load the service while the write routes are timed.
FLOOD = 60
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass
class Figure:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    #: Requests answered within the run (wrk's count), when known.
    answered: int | None = None

    def percentiles(self) -> str:
        """p50 / p99 in ms, or why there are none."""
        if self.answered == 0:
            return "no answer in the run"
        return f"{self.p50_ms:.2f} / {self.p99_ms:.2f}"


def wrk_command(
    url: str,
    *,
    duration: int,
    connections: int,
    headers: dict[str, str] | None = None,
    script: str | None = None,
    script_args: tuple[str, ...] = (),
    timeout: int | None = None,
) -> list[str]:
    """A wrk command line: 2 threads, or 1 for a single connection."""
    threads = min(2, connections)
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    if script:
        args += ["-s", script]
    if timeout:
        args += ["--timeout", f"{timeout}s"]
    return [*args, url, *(["--", *script_args] if script_args else [])]


def wrk(url: str, **options: Any) -> Figure:
    """One wrk run with latency figures (``options``: those of wrk_command)."""
    command = wrk_command(url, **options)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return parse_wrk(url, output)


def parse_wrk(url: str, output: str) -> Figure:
    """The figures in wrk's report (run with --latency)."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))

    def percentile(p: int) -> float:
        found = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if not found:
            raise SystemExit(f"unexpected wrk output:\n{output}")
        value, unit = found.groups()
        return float(value) * UNITS[unit]

    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    errors = int(bad.group(1)) if bad else 0
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    answered = int(re.search(r"(\d+) requests in", output).group(1))
    return Figure(url, rps, percentile(50), percentile(99), errors, answered)


@dataclass
class Flood:
    """A background wrk run of logins; its figures are filled in when it has ended."""

    logins: Figure | None = None
    #: Answers by HTTP status, counted by the script.
    statuses: dict[int, int] = field(default_factory=dict)

    def answers(self) -> str:
        """Answers by status, 503 (hashing queue full) always among them."""
        counts = {503: 0} | self.statuses
        return ", ".join(f"{n} x {status}" for status, n in sorted(counts.items()))


@contextmanager
def login_flood(base: str, tmp: Path, connections: int, seconds: int) -> Iterator[Flood]:
    """``connections`` correct logins at once in a loop on POST /token for
    ``seconds``, from 2 s before the body runs; waits for the end. They log in as
    user3..user100: user1 and user2 are left to the routes timed meanwhile."""
    script = tmp / "login_flood.lua"
    script.write_text(LOGIN_FLOOD)
    command = wrk_command(
        base + "/token",
        duration=seconds,
        connections=connections,
        script=str(script),
        script_args=("3", "100", urllib.parse.quote_plus(PASSWORD)),
        timeout=60,  # queued logins wait long; wrk's default (2 s) would drop them
    )
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    flood = Flood()
    try:
        time.sleep(2)
        yield flood
        output, _ = process.communicate(timeout=seconds + 30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode:
        raise SystemExit(f"wrk (login flood) failed:\n{output}")
    flood.logins = parse_wrk(base + "/token", output)
    flood.statuses = {
        int(status): int(n) for status, n in re.findall(r"^status (\d+): (\d+)$", output, re.M)
    }


@contextmanager
def uvicorn(
    env: Environment, app: str, cwd: Path, workers: int, settings: dict[str, str]
) -> Iterator[str]:
    """A uvicorn server as the service's `serve` runs it; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            env.bin("uvicorn"),
            app,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
        ],
        cwd=cwd,
        env={**os.environ, **settings},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its workers too can be ended, if they hang
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _ = http("GET", f"{base}/openapi.json")
                if status == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{app} did not start")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def login_form(username: str) -> str:
    return urllib.parse.urlencode({"username": username, "password": PASSWORD})


def tokens_for(base: str, username: str) -> dict[str, str]:
    """A new login's token pair."""
    status, body = http("POST", f"{base}/token", form={"username": username, "password": PASSWORD})
    assert status == 200, body
    return body


def session_cookie(base: str, username: str) -> str:
    """A new browser session's cookie (``name=secret``), signed in as a page of the
    service would (its origin is PUBLIC_URL's default)."""
    request = urllib.request.Request(
        f"{base}/session",
        data=json.dumps({"username": username, "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json", "Origin": "http://localhost:8000"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.headers["Set-Cookie"].partition(";")[0]


def token_for(base: str, username: str) -> str:
    return tokens_for(base, username)["access_token"]


def login_time_ratio(base: str, rounds: int = 30) -> tuple[float, float]:
    """Median seconds of a login with a wrong password for an existing user and for
    a username that does not exist, interleaved so drift hits both alike."""
    times: dict[str, list[float]] = {"user1": [], "nobody": []}
    for _ in range(rounds):
        for username, spent in times.items():
            started = time.perf_counter()
            status, _ = http(
                "POST",
                f"{base}/token",
                form={"username": username, "password": "wrong password"},
            )
            spent.append(time.perf_counter() - started)
            assert status == 401, status
    return statistics.median(times["user1"]), statistics.median(times["nobody"])


class Database:
    """Where the service keeps its users: a sqlite file or a throwaway PostgreSQL."""

    def __init__(self, kind: str, tmp: Path) -> None:
        self.kind = kind
        self.server: PostgresServer | None = None
        if kind == "postgresql":
            bindir = find_postgres_bin()
            if bindir is None:
                raise SystemExit("PostgreSQL server binaries (initdb, pg_ctl) are needed")
            self.server = PostgresServer(bindir)
            self.server.start()
            self.url = Postgres(self.server.admin_url).create_database("bench")
        else:
            self.url = f"sqlite:///{tmp / 'bench.db'}"

    def add_users(self, first: int, last: int, hashed: str) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        rows = [(f"user{n}", hashed, now, now) for n in range(first, last + 1)]
        sql = (
            "INSERT INTO users (username, hashed_password, is_active, is_superuser,"
            " created_at, updated_at) VALUES ({0}, {0}, true, false, {0}, {0})"
        )
        if self.kind == "postgresql":
            import psycopg

            with psycopg.connect(self.url) as connection, connection.cursor() as cursor:
                cursor.executemany(sql.format("%s"), rows)
        else:
            with sqlite3.connect(self.url.removeprefix("sqlite:///")) as connection:
                connection.executemany(sql.format("?"), rows)

    def stop(self) -> None:
        if self.server:
            self.server.stop()


def run_python(env: Environment, cwd: Path, settings: dict[str, str], code: str) -> str:
    return subprocess.run(
        [env.bin("python"), "-c", code],
        cwd=cwd,
        env={**os.environ, **settings},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def measure(
    args: argparse.Namespace,
    workers: int,
    env: Environment,
    project: Path,
    modules: dict[str, str],
    tmp: Path,
) -> list[Figure]:
    """The figures for one worker count; ``modules``: the service's module paths by role."""
    duration, connections = args.duration, args.connections
    figures = []
    with uvicorn(env, "bench_reference:app", tmp, workers, {}) as base:
        for path in ("/async", "/sync"):
            figure = wrk(base + path, duration=duration, connections=connections)
            figure.name = f"bare FastAPI `{path[1:]} def`"
            figures.append(figure)

    (tmp / f"w{workers}").mkdir()
    database = Database(args.database, tmp / f"w{workers}")
    settings = {
        "ENVIRONMENT": "production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "DATABASE_URL": database.url,
        # The login loops below are not an attack: no throttling per account and
        # address nor per address (which counts logins in flight too).
        "LOGIN_MAX_FAILURES": "0",
        "LOGIN_MAX_FAILURES_PER_ADDRESS": "0",
    }
    try:
        with uvicorn(env, "bench_floor:app", tmp, workers, settings) as base:
            figure = wrk(
                base + "/floor",
                duration=duration,
                connections=connections,
                headers={"Authorization": "Bearer unchecked"},
            )
            figure.name = "floor: own middleware + bearer, no work"
            figures.append(figure)

        run_python(env, project, settings, f"from {modules['database']} import migrate; migrate()")
        hashed = run_python(
            env,
            project,
            settings,
            f"import asyncio, inspect; from {modules['passwords']} import hash_password\n"
            f"hashed = hash_password({PASSWORD!r})\n"  # async where logins hold no thread
            "print(asyncio.run(hashed) if inspect.isawaitable(hashed) else hashed)",
        )
        database.add_users(1, 100, hashed)
        with uvicorn(env, f"{modules['main']}:app", project, workers, settings) as base:
            figures.append(users_me(base, "GET /users/me (100 users)", args))
            figure = wrk(
                base + "/users/me",
                duration=duration,
                connections=connections,
                headers={"Cookie": session_cookie(base, "user2")},
            )
            figure.name = "GET /users/me (100 users), session cookie"
            figures.append(figure)

            idle = wrk(base + "/health", duration=duration, connections=1)
            idle.name = "GET /health, idle (1 connection)"
            figures.append(idle)

            form = tmp / "login.lua"
            form.write_text(
                REQUEST.format(
                    method="POST",
                    body=login_form("user1"),
                    content_type="application/x-www-form-urlencoded",
                )
            )
            for concurrency in (1, 8):
                figure = wrk(
                    base + "/token", duration=duration, connections=concurrency, script=str(form)
                )
                figure.name = f"POST /token, {concurrency} at once"
                figures.append(figure)

            with login_flood(base, tmp, 8, duration + 4) as flood:
                busy = wrk(base + "/health", duration=duration, connections=1)
                busy.name = "GET /health during 8 logins in a loop"
                figures.append(busy)
            figures.append(Figure(f"answers to those 8 logins: {flood.answers()}", 0, 0, 0))

            known, unknown = login_time_ratio(base)
            figures.append(
                Figure(
                    f"login: unknown / known user time = {unknown / known:.2f}"
                    f" ({unknown * 1000:.0f} ms / {known * 1000:.0f} ms)",
                    0,
                    0,
                    0,
                )
            )

            database.add_users(101, 100_000, hashed)
            # A new login: the ones above may have ended the first (a cap per user).
            figures.append(users_me(base, "GET /users/me (100,000 users)", args))

            # Last: the flood leaves up to FLOOD logins queued in the server.
            figures += writes_during_logins(base, tmp, duration)

        # The same service signing with HMAC: what only holders of the secret verify.
        hmac = {**settings, "ALGORITHM": "HS256"}
        with uvicorn(env, f"{modules['main']}:app", project, workers, hmac) as base:
            figures.append(users_me(base, "GET /users/me (100,000 users), HS256", args))
            figure = wrk(base + "/token", duration=duration, connections=1, script=str(form))
            figure.name = "POST /token, 1 at once, HS256"
            figures.append(figure)
    finally:
        database.stop()
    return figures


def users_me(base: str, name: str, args: argparse.Namespace) -> Figure:
    """GET /users/me under load, with a new login of user1."""
    bearer = {"Authorization": f"Bearer {token_for(base, 'user1')}"}
    figure = wrk(
        base + "/users/me",
        duration=args.duration,
        connections=args.connections,
        headers=bearer,
    )
    figure.name = name
    return figure


def writes_during_logins(base: str, tmp: Path, duration: int) -> list[Figure]:
    """PATCH /users/me and POST /token/refresh, one connection each, idle and then
    during FLOOD correct logins in a loop, with a p50 / p99 summary of each."""
    patch = tmp / "patch_me.lua"
    patch.write_text(
        REQUEST.format(method="PATCH", body='{"full_name": "x"}', content_type="application/json")
    )
    chain = tmp / "refresh_chain.lua"
    chain.write_text(REFRESH_CHAIN)
    # Logged in before the flood; each refresh run starts a token chain of its own.
    bearer = {"Authorization": f"Bearer {token_for(base, 'user1')}"}
    starts = iter([tokens_for(base, "user2")["refresh_token"] for _ in range(2)])

    def probes() -> dict[str, Figure]:
        # A 60 s timeout, so that slow answers count in the latencies (wrk leaves out
        # those over its default 2 s), not as errors.
        return {
            "PATCH /users/me": wrk(
                base + "/users/me",
                duration=duration,
                connections=1,
                headers=bearer,
                script=str(patch),
                timeout=60,
            ),
            "POST /token/refresh": wrk(
                base + "/token/refresh",
                duration=duration,
                connections=1,
                script=str(chain),
                script_args=(next(starts),),
                timeout=60,
            ),
        }

    idle = probes()
    with login_flood(base, tmp, FLOOD, 2 * duration + 4) as flood:
        busy = probes()
    assert flood.logins
    flood.logins.name = f"POST /token, {FLOOD} at once in a loop"
    figures = []
    for route, figure in idle.items():
        figure.name = f"{route}, idle (1 connection)"
        figures.append(figure)
    figures.append(flood.logins)
    figures.append(Figure(f"answers to those {FLOOD} logins: {flood.answers()}", 0, 0, 0))
    for route, figure in busy.items():
        figure.name = f"{route} during {FLOOD} logins"
        if not figure.answered:
            figure.name += f": no answer in {duration} s"
        figures.append(figure)
    for route in idle:
        before, during = idle[route], busy[route]
        ratio = f" ({during.p99_ms / before.p99_ms:.1f}x p99)" if during.answered else ""
        figures.append(
            Figure(
                f"{route} p50 / p99 ms, idle / during {FLOOD} logins:"
                f" {before.percentiles()} -> {during.percentiles()}{ratio}",
                0,
                0,
                0,
            )
        )
    return figures


def print_table(title: str, figures: list[Figure]) -> None:
    reference = figures[0].requests_per_second
    print(f"\n{title}")
    print(
        f"| {'measure':<44} | {'req/s':>8} | {'p50 ms':>7} | {'p99 ms':>7} | {'x bare async':>12} |"
    )
    print(f"|{'-' * 46}|{'-' * 10}|{'-' * 9}|{'-' * 9}|{'-' * 14}|")
    for f in figures:
        if not f.requests_per_second:
            print(f"| {f.name:<44} | {'':>8} | {'':>7} | {'':>7} | {'':>12} |")
            continue
        ratio = f.requests_per_second / reference
        errors = f" ({f.errors} errors)" if f.errors else ""
        print(
            f"| {f.name + errors:<44} | {f.requests_per_second:>8.0f} | {f.p50_ms:>7.2f} "
            f"| {f.p99_ms:>7.2f} | {ratio:>12.2f} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for option, choices in OPTIONS.items():
        parser.add_argument(f"--{option.replace('_', '-')}", choices=choices, default=choices[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        install = ["apt-get", "install", "-y", "-q", "wrk"]
        if os.geteuid() != 0:
            install.insert(0, "sudo")
        print(f"wrk is missing; running: {' '.join(install)}")
        subprocess.run(install, check=True)
    answers = {option: getattr(args, option) for option in OPTIONS}
    with tempfile.TemporaryDirectory(prefix="bench-") as name:
        tmp = Path(name)
        started = time.monotonic()
        baked = Bakery(tmp / "bakery").bake(**answers)
        generated = time.monotonic() - started
        env = Environment.create(tmp / "env", baked.path)
        installed = time.monotonic() - started - generated
        (tmp / "bench_reference.py").write_text(REFERENCE_APP)
        modules = {
            role: module_path(baked.package, args.structure, role)
            for role in LAYOUTS[args.structure]
        }
        (tmp / "bench_floor.py").write_text(FLOOR_APP.format(**modules))
        print(
            f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{datetime.now(UTC):%Y-%m-%d}"
        )
        print(
            f"variant {' '.join(f'{k}={v}' for k, v in answers.items())}: "
            f"generated in {generated:.1f} s, installed in {installed:.1f} s"
        )
        for workers in args.workers:
            figures = measure(args, workers, env, baked.path, modules, tmp)
            print_table(
                f"uvicorn --workers {workers}, wrk {args.connections} connections, "
                f"{args.duration} s per row",
                figures,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
