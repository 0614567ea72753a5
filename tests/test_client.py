"""A client generated from the service's /openapi.json by a third-party generator
(openapi-python-client) drives it as a team's other services would: register, log
in with the OAuth2 form and with JSON, read /users/me, refresh (both grants) and
log out. On the first variant only: every variant serves the same document (each
variant's own tests hold its operation ids and what it states)."""

from __future__ import annotations

import importlib
import json
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from .support import http, run, variant_params

pytestmark = pytest.mark.parametrize("variant", variant_params(first_only=True))

CLIENT = "generated_auth_client"


@pytest.fixture
def client_package(serve: Callable[..., str], tmp_path: Path) -> Iterator[tuple[str, Callable]]:
    """The service's base URL, and an importer of the client generated from its schema."""
    base = serve("client", cheap_hashing=True)
    status, schema = http("GET", f"{base}/openapi.json")
    assert status == 200
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(schema))
    generated = run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            spec,
            "--meta",
            "none",
            "--output-path",
            tmp_path / CLIENT,
        ],
        cwd=tmp_path,
    )
    assert "warning" not in generated.stdout.lower() + generated.stderr.lower()
    sys.path.insert(0, str(tmp_path))

    def load(module: str) -> ModuleType:
        return importlib.import_module(f"{CLIENT}.{module}")

    yield base, load
    sys.path.remove(str(tmp_path))
    for name in [n for n in sys.modules if n.split(".")[0] == CLIENT]:
        del sys.modules[name]


def test_a_generated_client_registers_logs_in_refreshes_and_reads_the_user(
    client_package: tuple[str, Callable[[str], ModuleType]],
) -> None:
    base, load = client_package
    models = load("models")
    users = {name: load(f"api.users.{name}") for name in ("register", "read_current_user")}
    auth = {
        name: load(f"api.auth.{name}") for name in ("token", "login", "refresh_token", "log_out")
    }
    anonymous = load("client").Client(base_url=base, raise_on_unexpected_status=True)

    def authenticated(token: str) -> object:
        return load("client").AuthenticatedClient(
            base_url=base, token=token, raise_on_unexpected_status=True
        )

    password = secrets.token_urlsafe(16)
    created = users["register"].sync(
        client=anonymous,
        body=models.UserCreate(username="client-user", password=password, email="c@example.test"),
    )
    assert isinstance(created, models.UserPublic), created
    assert created.username == "client-user"

    form = models.TokenForm(username="client-user", password=password)
    tokens = auth["token"].sync(client=anonymous, body=form)
    assert isinstance(tokens, models.Token), tokens
    me = users["read_current_user"].sync(client=authenticated(tokens.access_token))
    assert isinstance(me, models.UserPublic) and me.id == created.id

    by_json = auth["login"].sync(
        client=anonymous, body=models.LoginRequest(username="client-user", password=password)
    )
    assert isinstance(by_json, models.Token), by_json

    grant = models.TokenFormGrantType.REFRESH_TOKEN
    renewed = auth["token"].sync(
        client=anonymous,
        body=models.TokenForm(grant_type=grant, refresh_token=tokens.refresh_token),
    )
    assert isinstance(renewed, models.Token), renewed
    again = auth["refresh_token"].sync(
        client=anonymous, body=models.RefreshRequest(refresh_token=renewed.refresh_token)
    )
    assert isinstance(again, models.Token), again
    me = users["read_current_user"].sync(client=authenticated(again.access_token))
    assert isinstance(me, models.UserPublic) and me.username == "client-user"

    response = auth["log_out"].sync_detailed(
        client=anonymous, body=models.RefreshRequest(refresh_token=again.refresh_token)
    )
    assert response.status_code == 204
    gone = users["read_current_user"].sync_detailed(client=authenticated(again.access_token))
    assert gone.status_code == 401
