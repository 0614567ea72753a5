"""Schemathesis against each running service's own OpenAPI schema, with every check
and its stateful phase (sequences of calls following the links it infers): no
server error, no answer or header outside the schema, every schema-valid request
accepted and every invalid one refused. On a pairwise-covering set of variants: every pair
of choices of any two options that change behaviour (database, JWT library, hasher)
appears in one of them, and every structure in one (a structure only moves code;
each variant's own suite proves its imports). The API is the same in all 36; what
differs is each option's code, and pairs are where two options' code meets. Every
variant still serves the seed flows over HTTP."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .support import http, run, variant_params

pytestmark = pytest.mark.parametrize("variant", variant_params(pairwise=True))

#: The few schema-valid requests the service refuses by a declared rule.
CONFIG = Path(__file__).with_name("schemathesis.toml")


def test_the_api_answers_as_its_schema_says_under_every_schemathesis_check(
    serve: Callable[..., str],
) -> None:
    """Property-based requests to every operation of the OpenAPI schema, then
    sequences of calls, authenticated as the superuser that start-up creates from
    FIRST_SUPERUSER.
    Hashing at its lowest cost: this is about the API (the flows above hash for real)."""
    password = secrets.token_urlsafe(16)
    base = serve(
        "schema", cheap_hashing=True, FIRST_SUPERUSER="root", FIRST_SUPERUSER_PASSWORD=password
    )
    status, token = http("POST", f"{base}/token", form={"username": "root", "password": password})
    assert status == 200, token
    run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            CONFIG,
            "run",
            f"{base}/openapi.json",
            "--header",
            f"Authorization: Bearer {token['access_token']}",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            "5",
            "--seed",
            "1",
            "--checks",
            "all",
        ],
        timeout=600,
    )
