"""Every variant installs from its own pyproject into its own environment, passes its
own tests (which run its migrations on an empty database and `alembic check`), and
serves the seeds' flows over HTTP from a fresh database. PostgreSQL variants do all
of it against a real PostgreSQL server."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator

import pytest

from .support import Baked, Environment, free_port, http, run, variant_params, wait_for

pytestmark = pytest.mark.parametrize("variant", variant_params())

#: Settings the generated project reads; the tests choose them, not the caller's shell.
SERVICE_SETTINGS = {
    "DATABASE_URL",
    "SECRET_KEY",
    "ENVIRONMENT",
    "TEST_DATABASE_URL",
    "ALGORITHM",
    "ACCESS_TOKEN_EXPIRE_MINUTES",
}


def clean_env(**overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in SERVICE_SETTINGS and key not in {"VIRTUAL_ENV", "PYTHONPATH"}
    }
    return {**env, **overrides}


@pytest.fixture
def env(baked: Baked, environments: Callable[[Baked], Environment]) -> Environment:
    return environments(baked)


def test_own_test_suite_passes(
    baked: Baked, env: Environment, database_url: Callable[[str], str]
) -> None:
    overrides = {}
    if baked.answers["database"] == "postgresql":
        overrides["TEST_DATABASE_URL"] = database_url("tests")
    result = run(
        [env.bin("python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=baked.path,
        env=clean_env(**overrides),
    )
    assert " passed" in result.stdout
    assert "skipped" not in result.stdout


@pytest.fixture
def server(baked: Baked, env: Environment, database_url: Callable[[str], str]) -> Iterator[str]:
    """``uvicorn <package>.main:app`` started as the README says, with the .env that
    generation wrote (production settings and the fresh secret)."""
    port = free_port()
    process = subprocess.Popen(
        [env.bin("uvicorn"), f"{baked.package}.main:app", "--port", str(port)],
        cwd=baked.path,
        env=clean_env(DATABASE_URL=database_url("serve")),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/health", process)
        yield base
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_serves_the_seed_flows_over_http(server: str) -> None:
    # Seed 002: create a user with JSON, then log in with the OAuth2 form.
    status, user = http(
        "POST", f"{server}/users/", json_body={"username": "JohnDoe", "password": "johnspassword"}
    )
    assert status == 201
    assert user["username"] == "JohnDoe"
    assert "hashed_password" not in user
    status, token = http(
        "POST", f"{server}/token", form={"username": "JohnDoe", "password": "johnspassword"}
    )
    assert status == 200
    assert token["token_type"] == "bearer"

    # Seeds 000, 001, 003: the token opens GET /users/me.
    status, me = http("GET", f"{server}/users/me", token=token["access_token"])
    assert (status, me["username"]) == (200, "JohnDoe")

    # Seed 004: register, log in with JSON, call the protected route.
    credentials = {"username": "testuser", "password": "testpass"}
    assert http("POST", f"{server}/register", json_body=credentials)[0] == 201
    status, token = http("POST", f"{server}/login", json_body=credentials)
    assert status == 200
    status, greeting = http("GET", f"{server}/protected", token=token["access_token"])
    assert (status, greeting) == (200, {"message": "Welcome testuser"})

    # And the refusals the seeds promise.
    status, body = http("POST", f"{server}/token", form={"username": "JohnDoe", "password": "nope"})
    assert (status, body) == (401, {"detail": "Incorrect username or password"})
    assert http("GET", f"{server}/users/me")[0] == 401
    assert http("POST", f"{server}/register", json_body=credentials)[0] == 409
