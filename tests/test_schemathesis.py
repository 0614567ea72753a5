"""Schemathesis against each running service's own OpenAPI schema: no server error
and no answer outside the schema. On a pairwise-covering set of variants: every pair
of choices of any two options that change behaviour (database, JWT library, hasher)
appears in one of them, and every structure in one (a structure only moves code;
each variant's own suite proves its imports). The API is the same in all 36; what
differs is each option's code, and pairs are where two options' code meets. Every
variant still serves the seed flows over HTTP."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable

import pytest

from .support import http, run, variant_params

pytestmark = pytest.mark.parametrize("variant", variant_params(pairwise=True))

SCHEMA_CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
]


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_schema(
    serve: Callable[..., str],
) -> None:
    """Stateless property-based requests to every operation of the OpenAPI schema,
    authenticated as the superuser that start-up creates from FIRST_SUPERUSER.
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
            "run",
            f"{base}/openapi.json",
            "--header",
            f"Authorization: Bearer {token['access_token']}",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "5",
            "--seed",
            "1",
            "--checks",
            ",".join(SCHEMA_CHECKS),
        ],
        timeout=600,
    )
