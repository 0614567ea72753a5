"""/docs and /redoc work without any third-party host."""

import re

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_their_assets_from_this_service(
    client: TestClient, page: str
) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png))"', response.text)
    assert assets
    for asset in assets:
        assert asset.startswith("/"), f"{page} loads {asset} from another host"
        assert client.get(asset).status_code == 200


def test_operations_are_named_after_their_routes(client: TestClient) -> None:
    """Stable, readable operation ids for generated clients, one per operation."""
    schema = client.get("/openapi.json").json()
    ids = [
        op["operationId"] for path in schema["paths"].values() for op in path.values()
    ]
    assert sorted(ids) == sorted(set(ids))
    assert {"create_user", "register", "token", "read_current_user"} <= set(ids)
    assert all(re.fullmatch(r"[a-z][a-z_]*", operation) for operation in ids)
