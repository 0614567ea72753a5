"""A database outage is the service's to survive, not its clients' to decode: while
PostgreSQL is down every route that needs it answers 503 with a JSON body and
``Retry-After`` (never a 500, never a reset connection, never a 401 for a valid
token); once it is back the same process answers normally, and nothing it confirmed
with a 201 is lost, even when the database restarts under registrations to two
processes at once.

On a PostgreSQL server of this module's own (this one is stopped and restarted, the
session's is shared) and one PostgreSQL variant: the code that meets the database is
the same in every variant. Hashing at its lowest cost: this is about the database."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import pytest

from .support import (
    INSTALL_HINT,
    Answer,
    Postgres,
    PostgresServer,
    find_postgres_bin,
    variant_params,
)
from .support import call as call_once

pytestmark = pytest.mark.parametrize(
    "variant", [p for p in variant_params() if p.values[0]["database"] == "postgresql"][:1]
)

#: Longer than the service's connect timeout (5 s): its answer, not ours, decides.
TIMEOUT = 15
#: How long the same process may take to answer normally once the database is back.
RECOVERY_SECONDS = 10
PASSWORD = "a long enough password"
ROOT = {"username": "root", "password": PASSWORD}
#: The restart under load: client threads, their registrations at most, and how long
#: they go on registering after the database is back.
THREADS = 6
MOST_PER_THREAD = 400
LOAD_AFTER_RESTART = 1.5


def call(method: str, url: str, **options: object) -> Answer:
    return call_once(method, url, timeout=TIMEOUT, **options)  # type: ignore[arg-type]


def is_retry_after(value: str) -> bool:
    """A Retry-After value: seconds, or an HTTP date (RFC 9110)."""
    if value.isdigit():
        return True
    try:
        parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    return True


def is_unavailable(answer: Answer) -> bool:
    """A 503 as a client can act on: a JSON body, and when to try again."""
    retry_after = answer.headers.get("retry-after", "")
    return answer.status == 503 and answer.is_json() and is_retry_after(retry_after)


def describe(answer: Answer) -> str:
    """The answer, with what is missing from a 503."""
    missing = []
    if answer.status == 503:
        if not answer.is_json():
            missing.append(f"not JSON: {answer.headers.get('content-type')}")
        if "retry-after" not in answer.headers:
            missing.append("no Retry-After")
        elif not is_retry_after(answer.headers["retry-after"]):
            missing.append(f"Retry-After {answer.headers['retry-after']!r}")
    return f"{answer}{' (' + ', '.join(missing) + ')' if missing else ''}"


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for this module alone: it goes down and comes back."""
    bindir = find_postgres_bin()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must prove the outage. {INSTALL_HINT}", pytrace=False)
        pytest.skip(f"NOT RUN: {INSTALL_HINT}")
    server = PostgresServer(bindir)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def database_url(
    own_postgres: PostgresServer, request: pytest.FixtureRequest
) -> Callable[[str], str]:
    """One fresh database on this module's server per test, shared by every server
    the test starts (``serve`` asks for it by the server's purpose)."""
    url = Postgres(own_postgres.admin_url).create_database(request.function.__name__[:63])
    return lambda _purpose: url


@contextmanager
def outage(server: PostgresServer) -> Iterator[None]:
    """The database is down inside the block, and up again after it."""
    server.halt()
    try:
        yield
    finally:
        server.resume()


def log_in(base: str, user: dict[str, str]) -> dict[str, str]:
    answer = call("POST", f"{base}/login", json_body=user)
    assert answer.status == 200, f"POST /login as {user['username']}: {answer}"
    return answer.json()  # type: ignore[return-value]


def register(base: str, username: str) -> dict:
    answer = call(
        "POST", f"{base}/register", json_body={"username": username, "password": PASSWORD}
    )
    assert answer.status == 201, f"POST /register {username}: {answer}"
    return answer.json()  # type: ignore[return-value]


def test_every_route_answers_503_with_retry_after_while_the_database_is_down(
    serve: Callable[..., str], own_postgres: PostgresServer
) -> None:
    """Each route that needs the database, with a request that would succeed: 503,
    a JSON body and Retry-After; GET /health 503. A token issued before the outage
    is not refused as invalid (401): it cannot be checked, which is a 503."""
    base = serve(
        "outage", cheap_hashing=True, FIRST_SUPERUSER="root", FIRST_SUPERUSER_PASSWORD=PASSWORD
    )
    alice = register(base, "alice")["id"]
    tokens = log_in(base, ROOT)
    access, refresh = tokens["access_token"], tokens["refresh_token"]
    newcomer = {"username": "newcomer", "password": PASSWORD}
    change = {"current_password": PASSWORD, "new_password": PASSWORD}
    requests: dict[str, tuple[str, str, dict]] = {
        "POST /token (password)": ("POST", "/token", {"form": ROOT}),
        "POST /token (refresh_token)": (
            "POST",
            "/token",
            {"form": {"grant_type": "refresh_token", "refresh_token": refresh}},
        ),
        "POST /login": ("POST", "/login", {"json_body": ROOT}),
        "POST /token/refresh": (
            "POST",
            "/token/refresh",
            {"json_body": {"refresh_token": refresh}},
        ),
        "POST /logout": ("POST", "/logout", {"json_body": {"refresh_token": refresh}}),
        "POST /register": ("POST", "/register", {"json_body": newcomer}),
        "POST /users/": ("POST", "/users/", {"json_body": newcomer}),
        "GET /users/me": ("GET", "/users/me", {"token": access}),
        "PATCH /users/me": (
            "PATCH",
            "/users/me",
            {"token": access, "json_body": {"full_name": "R"}},
        ),
        "POST /users/me/password": (
            "POST",
            "/users/me/password",
            {"token": access, "json_body": change},
        ),
        "GET /protected": ("GET", "/protected", {"token": access}),
        "GET /users/": ("GET", "/users/", {"token": access}),
        "GET /users/{id}": ("GET", f"/users/{alice}", {"token": access}),
        "PATCH /users/{id}": ("PATCH", f"/users/{alice}", {"token": access, "json_body": {}}),
        "DELETE /users/{id}": ("DELETE", f"/users/{alice}", {"token": access}),
        "GET /health": ("GET", "/health", {}),
    }
    with outage(own_postgres):
        answers = {
            name: call(method, base + path, **options)
            for name, (method, path, options) in requests.items()
        }
    wrong = [f"{name} -> {describe(a)}" for name, a in answers.items() if not is_unavailable(a)]
    assert not wrong, (
        "while the database was down, expected 503 with a JSON body and Retry-After; got:\n  "
        + "\n  ".join(wrong)
    )


def test_the_same_process_answers_normally_once_the_database_is_back(
    serve: Callable[..., str], own_postgres: PostgresServer
) -> None:
    """No restart of the service: after requests failed during the outage, logins,
    an access and a refresh token issued before it, and registrations work again,
    and every user registered before it is still there."""
    base = serve("recovery", cheap_hashing=True)
    users = ["ann", "bob", "cid"]
    for username in users:
        register(base, username)
    tokens = log_in(base, {"username": "ann", "password": PASSWORD})
    with outage(own_postgres):
        call("POST", f"{base}/register", json_body={"username": "dan", "password": PASSWORD})
        call("POST", f"{base}/login", json_body={"username": "ann", "password": PASSWORD})
        call("GET", f"{base}/users/me", token=tokens["access_token"])
        call("GET", f"{base}/health")

    deadline = time.monotonic() + RECOVERY_SECONDS
    while (health := call("GET", f"{base}/health")).status != 200:
        assert time.monotonic() < deadline, (
            f"GET /health still answers {health} {RECOVERY_SECONDS} s after the database came back"
        )
        time.sleep(0.05)
    me = call("GET", f"{base}/users/me", token=tokens["access_token"])
    assert me.status == 200, f"GET /users/me with a token from before the outage: {me}"
    assert me.json()["username"] == "ann"  # type: ignore[index]
    for username in users:
        log_in(base, {"username": username, "password": PASSWORD})
    renewed = call(
        "POST", f"{base}/token/refresh", json_body={"refresh_token": tokens["refresh_token"]}
    )
    assert renewed.status == 200, f"POST /token/refresh with a refresh token from before: {renewed}"
    register(base, "eve")


@dataclass
class Registration:
    username: str
    server: str
    answer: Answer
    at: float


def register_until(
    servers: list[str], thread: int, stop: threading.Event, into: list[Registration]
) -> None:
    """Distinct usernames, to the servers in turn, until told to stop."""
    for number in range(MOST_PER_THREAD):
        if stop.is_set():
            return
        username = f"t{thread}-u{number}"
        server = servers[(thread + number) % len(servers)]
        body = {"username": username, "password": PASSWORD}
        answer = call("POST", f"{server}/register", json_body=body)
        into.append(Registration(username, server, answer, time.monotonic()))


def test_a_restart_under_registrations_to_two_processes_loses_no_confirmed_user(
    serve: Callable[..., str], own_postgres: PostgresServer
) -> None:
    """Registrations from several threads to two processes on one database while it
    restarts: each is a 201 or a 503 (never a 500 or a dropped connection), both
    processes register again once it is back, and every user confirmed with a 201
    is listed afterwards; those confirmed last before and first after the restart
    began log in."""
    settings = {
        "FIRST_SUPERUSER": "root",
        "FIRST_SUPERUSER_PASSWORD": PASSWORD,
        # Hundreds of registrations from one address: not what is under test here.
        "REGISTRATION_MAX_PER_HOUR": "0",
    }
    servers = [serve(f"load-{n}", cheap_hashing=True, **settings) for n in (1, 2)]
    registrations: list[list[Registration]] = [[] for _ in range(THREADS)]
    stop = threading.Event()
    threads = [
        threading.Thread(target=register_until, args=(servers, n, stop, registrations[n]))
        for n in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    try:
        # Load first, so that both processes hold pooled connections the restart ends.
        deadline = time.monotonic() + 2
        while sum(map(len, registrations)) < 4 * THREADS and time.monotonic() < deadline:
            time.sleep(0.02)
        began = time.monotonic()
        own_postgres.restart()
        back = time.monotonic()
        time.sleep(LOAD_AFTER_RESTART)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=2 * TIMEOUT)
    answers = sorted((r for thread in registrations for r in thread), key=lambda r: r.at)
    statuses = dict(Counter(r.answer.status for r in answers))

    def when(r: Registration) -> str:
        return f"process {servers.index(r.server) + 1}, {r.at - began:+.2f} s"

    wrong = [
        f"{r.username} ({when(r)}) -> {describe(r.answer)}"
        for r in answers
        if r.answer.status != 201 and not is_unavailable(r.answer)
    ]
    assert not wrong, (
        f"{len(wrong)} of {len(answers)} registrations {statuses} were neither 201 nor a 503 "
        f"with JSON and Retry-After (restart from +0 s to +{back - began:.2f} s):\n  "
        + "\n  ".join(wrong[:10])
    )
    created = [r for r in answers if r.answer.status == 201]
    for server in servers:
        assert any(r.server == server and r.at > back for r in created), (
            f"{server} confirmed no registration in the {LOAD_AFTER_RESTART} s after the "
            f"restart {statuses}"
        )

    token = log_in(servers[0], ROOT)["access_token"]
    listed: set[str] = set()
    for skip in range(0, len(answers) + 100, 100):
        page = call("GET", f"{servers[0]}/users/?skip={skip}&limit=100", token=token)
        assert page.status == 200, f"GET /users/?skip={skip}: {page}"
        listed |= {user["username"] for user in page.json()}  # type: ignore[attr-defined]
    lost = [r.username for r in created if r.username not in listed]
    assert not lost, f"{len(lost)} of {len(created)} users confirmed with 201 are gone: {lost[:10]}"
    for server in servers:
        mine = [r for r in created if r.server == server]
        before = [r for r in mine if r.at < began][-1:]
        after = [r for r in mine if r.at > began][:1]
        for r in before + after:
            log_in(server, {"username": r.username, "password": PASSWORD})
