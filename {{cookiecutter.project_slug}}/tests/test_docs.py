"""/docs and /redoc work without any third-party host, and the API document says
what the service does."""

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


def test_a_method_a_path_lacks_is_405_listing_every_method_it_has(
    client: TestClient,
) -> None:
    schema = client.get("/openapi.json").json()
    for path, operations in schema["paths"].items():
        methods = {method.upper() for method in operations}
        missing = next(m for m in ("PUT", "DELETE", "PATCH") if m not in methods)
        response = client.request(missing, path.replace("{user_id}", "1"))
        assert response.status_code == 405, (missing, path)
        assert response.headers["allow"] == ", ".join(sorted(methods)), path


def test_a_word_where_a_user_id_goes_is_not_a_user_id(client: TestClient) -> None:
    """/users/me is not /users/{user_id} with a bad id: DELETE /users/me does not
    exist (405), rather than being a malformed DELETE /users/{user_id} (422)."""
    response = client.delete("/users/me")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, PATCH"


def test_the_token_form_states_what_each_grant_needs(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["TokenForm"]
    needs = {
        rule["if"]["properties"]["grant_type"]["const"]: rule["then"]["required"]
        for rule in schema["allOf"]
        if "properties" in rule["if"]
    }
    assert needs == {
        "password": ["username", "password"],
        "refresh_token": ["refresh_token"],
        "http://auth0.com/oauth/grant-type/mfa-otp": ["mfa_token", "otp"],
        "http://auth0.com/oauth/grant-type/mfa-recovery-code": [
            "mfa_token",
            "recovery_code",
        ],
    }
    (default,) = [rule for rule in schema["allOf"] if "not" in rule["if"]]
    assert default["then"]["required"] == ["username", "password"]
    for field in ("username", "password"):  # an empty form field counts as absent
        assert schema["properties"][field]["anyOf"][0]["minLength"] == 1
        form = {"username": "someone", "password": "secret"} | {field: ""}
        assert client.post("/token", data=form).status_code == 422
    refresh = {"grant_type": "refresh_token"}
    assert client.post("/token", data=refresh).status_code == 422


def test_the_schema_states_the_text_rule_of_every_request_field(
    client: TestClient,
) -> None:
    """Every free text field of a request body carries the pattern that refuses
    control characters, as validation does."""
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    pattern = re.compile(schemas["UserCreate"]["properties"]["password"]["pattern"])
    assert pattern.match("a passphrase") and not pattern.match("new\nline")
    for name in ("LoginRequest", "RefreshRequest", "PasswordChange", "UserUpdateMe"):
        for field in schemas[name]["properties"].values():
            for option in field.get("anyOf", [field]):
                if option.get("type") == "string":
                    assert "pattern" in option or "format" in option, name
