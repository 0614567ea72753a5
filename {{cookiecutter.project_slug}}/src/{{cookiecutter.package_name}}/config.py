"""Settings, read from the environment and from a .env file in the working directory."""

import secrets
import warnings
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: This service's name (the default token issuer and audience) and database name.
SERVICE_NAME = "{{ cookiecutter.project_slug }}"
DATABASE_NAME = "{{ cookiecutter.package_name }}"

MIN_SECRET_LENGTH = 32
PLACEHOLDER_SECRETS = frozenset(
    {
        "changeme",
        "change-me",
        "secret",
        "secret_key",
        "your_secret_key",
        "your-secret-key",
    }
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["production", "development", "test"] = "production"
{%- if cookiecutter.database == "postgresql" %}
    database_url: str = f"postgresql+psycopg://postgres@localhost:5432/{DATABASE_NAME}"
{%- else %}
    database_url: str = f"sqlite:///./{DATABASE_NAME}.db"
{%- endif %}
    secret_key: SecretStr = SecretStr("")
    algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    access_token_expire_minutes: int = Field(default=30, gt=0, le=24 * 60)
    refresh_token_expire_days: int = Field(default=14, gt=0, le=365)
    jwt_issuer: str = Field(default=SERVICE_NAME, min_length=1)
    jwt_audience: str = Field(default=SERVICE_NAME, min_length=1)
    #: Apply the migrations at start-up (under a lock, so replicas may start at once).
    auto_migrate: bool = True
    first_superuser: str | None = None
    first_superuser_password: SecretStr | None = None
    login_max_failures: int = Field(default=5, ge=0)
    login_failure_window_seconds: int = Field(default=900, gt=0)
    #: Browser origins allowed to call the API, comma-separated; none by default.
    cors_origins: Annotated[list[str], NoDecode] = []

    @field_validator("cors_origins", mode="before")
    @classmethod
    def split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def use_psycopg_driver(cls, url: str) -> str:
        """Accept plain postgresql:// and postgres:// URLs: add the psycopg driver."""
        for scheme in ("postgresql://", "postgres://"):
            if url.startswith(scheme):
                return "postgresql+psycopg://" + url.removeprefix(scheme)
        return url

    @model_validator(mode="after")
    def superuser_needs_a_password(self) -> "Settings":
        if bool(self.first_superuser) != bool(self.first_superuser_password):
            raise ValueError(
                "set both FIRST_SUPERUSER and FIRST_SUPERUSER_PASSWORD, or neither"
            )
        return self

    @model_validator(mode="after")
    def require_strong_secret(self) -> "Settings":
        """Refuse a missing, short or placeholder SECRET_KEY in production."""
        secret = self.secret_key.get_secret_value()
        weak = len(secret) < MIN_SECRET_LENGTH or secret.lower() in PLACEHOLDER_SECRETS
        if not weak:
            return self
        if self.environment == "production":
            raise ValueError(
                f"SECRET_KEY must be set to a random value of at least "
                f"{MIN_SECRET_LENGTH} characters, e.g. the output of: "
                'python -c "import secrets; print(secrets.token_urlsafe(64))"'
            )
        if secret:
            warnings.warn(
                "SECRET_KEY is weak; acceptable only in development and test",
                stacklevel=2,
            )
        else:
            self.secret_key = SecretStr(secrets.token_urlsafe(64))
        return self


def load_settings() -> Settings:
    """Read the settings; a bad value stops start-up with one readable line that
    never echoes the values themselves (they may be secrets)."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])).upper() or 'settings'}: {e['msg']}"
            for e in error.errors(include_input=False, include_url=False)
        )
        raise SystemExit(f"Invalid configuration: {problems}") from None


settings = load_settings()
