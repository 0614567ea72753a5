"""Settings: secrets only from the environment, strong ones in production."""

import secrets

import pytest
from pydantic import ValidationError

{{ imports(config="Settings, load_settings") }}

STRONG = secrets.token_urlsafe(32)


def make(**values: object) -> Settings:
    return Settings(_env_file=None, **values)


@pytest.mark.parametrize(
    "secret",
    ["", "short", "changeme", "your_secret_key", "a" * 32, " " * 40, "abcd" * 10],
)
def test_production_refuses_a_weak_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        make(environment="production", secret_key=secret)


def test_production_wants_a_key_as_long_as_the_algorithms_hash() -> None:
    with pytest.raises(ValidationError, match="64 characters for HS512"):
        make(environment="production", secret_key=STRONG, algorithm="HS512")
    longer = secrets.token_urlsafe(48)
    assert make(environment="production", secret_key=longer, algorithm="HS512")


def test_production_accepts_a_strong_secret() -> None:
    assert (
        make(environment="production", secret_key=STRONG).secret_key.get_secret_value()
        == STRONG
    )


@pytest.mark.parametrize("environment", ["development", "test"])
def test_development_without_secret_gets_a_random_one(environment: str) -> None:
    first = make(environment=environment, secret_key="").secret_key.get_secret_value()
    second = make(environment=environment, secret_key="").secret_key.get_secret_value()
    assert len(first) >= 32
    assert first != second


def test_start_up_error_is_one_line_without_the_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", "hunter2-is-not-a-secret")
    monkeypatch.chdir("/")  # no .env here
    with pytest.raises(SystemExit) as exit_info:
        load_settings()
    message = str(exit_info.value)
    assert message.startswith("Invalid configuration:")
    assert "SECRET_KEY" in message
    assert "hunter2" not in message
    assert "\n" not in message


@pytest.mark.parametrize("algorithm", ["none", "PS256", "ES512", "hs256"])
def test_algorithm_outside_the_allow_list_is_refused(algorithm: str) -> None:
    with pytest.raises(ValidationError, match="algorithm"):
        make(environment="test", algorithm=algorithm)


def test_production_wants_a_strong_secret_where_it_encrypts_the_stored_keys() -> None:
    with pytest.raises(ValidationError, match="32 characters for ES256"):
        make(environment="production", algorithm="ES256", secret_key="short")
    assert make(environment="production", algorithm="ES256", secret_key=STRONG)
    # With PRIVATE_KEY the service stores no key: SECRET_KEY has no use.
    assert make(environment="production", algorithm="ES256", private_key="x")


def test_a_private_key_goes_with_an_algorithm_that_signs_with_one() -> None:
    with pytest.raises(ValidationError, match="not HS256"):
        make(
            environment="test",
            algorithm="HS256",
            private_key="-----BEGIN PRIVATE KEY-----",
        )
    with pytest.raises(ValidationError, match="not both"):
        make(
            environment="test",
            algorithm="ES256",
            private_key="x",
            private_key_file="key.pem",
        )
{%- if cookiecutter.jwt_library == "python-jose" %}


def test_eddsa_is_refused_saying_that_python_jose_cannot_sign_it() -> None:
    with pytest.raises(ValidationError, match="python-jose cannot sign EdDSA"):
        make(environment="test", algorithm="EdDSA", private_key="x")
{%- endif %}


def test_mail_settings_that_cannot_work_are_refused() -> None:
    url = "https://app.example/reset?token={token}"
    with pytest.raises(ValidationError, match="EMAIL_VERIFICATION_URL need SMTP_HOST"):
        make(environment="production", secret_key=STRONG, password_reset_url=url)
    with pytest.raises(ValidationError, match=r"an http\(s\) URL containing"):
        make(environment="test", password_reset_url="https://app.example/reset")
    with pytest.raises(ValidationError, match="EMAIL_FROM"):
        make(environment="test", smtp_host="mail.example")
    with pytest.raises(ValidationError, match="needs EMAIL_VERIFICATION_URL"):
        make(environment="test", require_verified_email=True, pages_enabled=False)
    assert make(
        environment="production",
        secret_key=STRONG,
        password_reset_url=url,
        smtp_host="mail.example",
        email_from="accounts@example.com",
    )


def test_mailed_links_open_the_pages_unless_a_client_app_takes_them() -> None:
    pages = make(environment="test", public_url="https://id.example")
    assert pages.password_reset_url == (
        "https://id.example/account/reset-password?token={token}"
    )
    assert pages.email_verification_url == (
        "https://id.example/account/verify-email?token={token}"
    )
    app = "https://app.example/reset?token={token}"
    assert make(environment="test", password_reset_url=app).password_reset_url == app
    # Where no mail goes out (production without SMTP_HOST), or without the pages,
    # there is no link to mail.
    for off in (
        make(environment="production", secret_key=STRONG),
        make(environment="test", pages_enabled=False),
    ):
        assert off.password_reset_url is None
        assert off.email_verification_url is None


def test_state_changes_with_the_cookie_come_from_public_url_or_cors_origins() -> None:
    remote = make(
        environment="test",
        public_url="https://id.example/auth",
        cors_origins="https://app.example",
    )
    assert remote.allowed_origins == {"https://id.example", "https://app.example"}
    # On this machine, a browser may name it any way.
    local = make(environment="test", public_url="http://localhost:8000")
    assert local.allowed_origins == {
        "http://localhost:8000",
        "http://127.0.0.1:8000",
        "http://[::1]:8000",
    }


@pytest.mark.parametrize("minutes", [0, -5])
def test_token_lifetime_must_be_positive(minutes: int) -> None:
    with pytest.raises(ValidationError):
        make(environment="test", access_token_expire_minutes=minutes)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_plain_postgresql_url_gets_the_psycopg_driver(scheme: str) -> None:
    settings = make(environment="test", database_url=f"{scheme}://u:p@db:5432/app")
    assert settings.database_url == "postgresql+psycopg://u:p@db:5432/app"


def test_secret_is_not_shown_in_repr() -> None:
    assert STRONG not in repr(make(environment="test", secret_key=STRONG))


@pytest.mark.parametrize(
    "values",
    [{"first_superuser": "admin"}, {"first_superuser_password": "a long password"}],
)
def test_first_superuser_and_its_password_go_together(values: dict) -> None:
    with pytest.raises(ValidationError, match="FIRST_SUPERUSER"):
        make(environment="test", **values)


def test_cors_origins_are_read_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    assert make(environment="test").cors_origins == [
        "https://a.example",
        "https://b.example",
    ]


def test_the_issuer_is_a_url_and_the_public_url_by_default() -> None:
    settings = make(environment="test", public_url="https://auth.example.com/")
    assert settings.public_url == settings.jwt_issuer == "https://auth.example.com"
    for issuer in ["auth-service", "ftp://auth.example.com", "https://x.example?a=b"]:
        with pytest.raises(ValidationError, match="jwt_issuer"):
            make(environment="test", jwt_issuer=issuer)


@pytest.mark.parametrize("name", ["public_url", "jwt_issuer"])
def test_production_wants_https_urls_but_for_this_machine(name: str) -> None:
    with pytest.raises(ValidationError, match=f"{name.upper()} must be an https URL"):
        make(environment="production", secret_key=STRONG, **{name: "http://a.example"})
    trusted = ["https://auth.example.com", "http://localhost:8000", "http://[::1]"]
    for url in trusted:
        assert make(environment="production", secret_key=STRONG, **{name: url})
