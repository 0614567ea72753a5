"""Every variant installs from its own pyproject into its own environment, passes its
own tests (which run its migrations on an empty database and `alembic check`), and
serves the seeds' flows over HTTP from a fresh database. PostgreSQL variants do all
of it against a real PostgreSQL server.

The flows hash passwords at the generated tests' cost (same algorithms, same code):
they are about the API. Each hashing choice also logs in at its production cost."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .support import (
    Baked,
    Environment,
    clean_env,
    http,
    run,
    variant_params,
)


@pytest.mark.parametrize("variant", variant_params())
def test_own_test_suite_passes(
    baked: Baked, env: Environment, database_url: Callable[[str], str], tmp_path: Path
) -> None:
    # Its own temporary root: pytest would otherwise sweep old runs (whole
    # environments of this suite) out of the shared one, every time.
    overrides = {"PYTEST_DEBUG_TEMPROOT": str(tmp_path)}
    if baked.answers["database"] == "postgresql":
        overrides["TEST_DATABASE_URL"] = database_url("tests")
    result = run(
        [env.bin("python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=baked.path,
        env=clean_env(baked, **overrides),
    )
    assert " passed" in result.stdout
    assert "skipped" not in result.stdout


@pytest.mark.parametrize("variant", variant_params())
def test_serves_the_seed_flows_over_http(serve: Callable[..., str]) -> None:
    server = serve("serve", cheap_hashing=True)
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


@pytest.mark.parametrize("variant", variant_params(one_per="password_hashing"))
def test_logs_in_with_passwords_hashed_at_production_cost(serve: Callable[..., str]) -> None:
    """The hashers exactly as configured: a user registers, logs in, and the token
    opens GET /users/me; a password differing in its last character does not."""
    server = serve("production-hashing")
    password = "correct horse battery staple"
    user = {"username": "carol", "password": password}
    assert http("POST", f"{server}/register", json_body=user)[0] == 201
    status, token = http("POST", f"{server}/login", json_body=user)
    assert status == 200
    status, me = http("GET", f"{server}/users/me", token=token["access_token"])
    assert (status, me["username"]) == (200, "carol")
    near_miss = {"username": "carol", "password": password[:-1] + "!"}
    assert http("POST", f"{server}/login", json_body=near_miss)[0] == 401
