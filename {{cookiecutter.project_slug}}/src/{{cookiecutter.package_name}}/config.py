"""Settings, read from the environment and from a .env file in the working directory."""

import math
import secrets
import warnings
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: This service's name (the default token audience) and database name.
SERVICE_NAME = "{{ cookiecutter.project_slug }}"
#: Its name for people: the API docs' title, the pages', authenticator apps'.
SERVICE_TITLE = {{ cookiecutter.project_name | py_string }}
DATABASE_NAME = "{{ cookiecutter.package_name }}"

#: A key at least as long as the algorithm's hash (RFC 7518, section 3.2); 32
#: characters where SECRET_KEY encrypts the stored signing keys.
MIN_SECRET_LENGTH = {"HS256": 32, "HS384": 48, "HS512": 64}
MIN_ENCRYPTION_SECRET_LENGTH = 32
#: A secret's estimated entropy (its length times the Shannon entropy of its
#: characters) must reach this: 32 random hex digits give ~120 bits, 32 x "a" none.
MIN_SECRET_BITS = 100
#: Hosts a URL may name over plain http in production: this machine's.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
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


#: How access tokens are signed.
Algorithm = Literal["HS256", "HS384", "HS512", "RS256", "ES256"{% if cookiecutter.jwt_library != "python-jose" %}, "EdDSA"{% endif %}]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["production", "development", "test"] = "production"
{%- if cookiecutter.database == "postgresql" %}
    database_url: str = f"postgresql+psycopg://postgres@localhost:5432/{DATABASE_NAME}"
{%- else %}
    database_url: str = f"sqlite:///./{DATABASE_NAME}.db"
{%- endif %}
    secret_key: SecretStr = SecretStr("")
    #: HMAC with SECRET_KEY, or a private key whose public half other services
    #: verify with: PRIVATE_KEY, or PRIVATE_KEY_FILE, in PEM, or else keys the
    #: service makes and stores, encrypted with SECRET_KEY.
    algorithm: Algorithm = "ES256"
    private_key: SecretStr | None = None
    private_key_file: Path | None = None
    access_token_expire_minutes: int = Field(default=30, gt=0, le=24 * 60)
    refresh_token_expire_days: int = Field(default=14, gt=0, le=365)
    #: Where clients reach this service: the addresses its metadata gives.
    public_url: str = "http://localhost:8000"
    #: The tokens' ``iss`` and the metadata's issuer, a URL (RFC 8414): PUBLIC_URL
    #: unless set.
    jwt_issuer: str = ""
    jwt_audience: str = Field(default=SERVICE_NAME, min_length=1)
    #: Apply the migrations at start-up (under a lock, so replicas may start at once).
    auto_migrate: bool = True
    first_superuser: str | None = None
    first_superuser_password: SecretStr | None = None
    #: Wrong passwords per account and client address, then per address across
    #: accounts, within the window before 429s; 0 turns that limit off.
    login_max_failures: int = Field(default=5, ge=0)
    login_max_failures_per_address: int = Field(default=100, ge=0)
    login_failure_window_seconds: int = Field(default=900, gt=0)
    registration_max_per_hour: int = Field(default=20, ge=0)
    #: Requests for a mailed link (password reset, verification) per address and
    #: hour, and per email address and hour.
    mail_requests_max_per_hour: int = Field(default=5, ge=0)
    #: Live logins kept per user; a new login beyond it ends the oldest.
    max_sessions_per_user: int = Field(default=20, gt=0)
    #: Request bodies larger than this get 413 before they are read.
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    #: Proxies whose X-Forwarded-For and X-Forwarded-Proto are believed by `serve`
    #: (comma-separated addresses or networks, "*" for all); none by default.
    forwarded_allow_ips: str = ""
    #: Expired and revoked logins, used refresh tokens and old throttle records are
    #: deleted this often by every worker (bounded batches); 0 leaves it to `purge`.
    purge_interval_seconds: int = Field(default=600, ge=0)
    #: Browser origins allowed to call the API, comma-separated; none by default.
    cors_origins: Annotated[list[str], NoDecode] = []
    #: The mail server; without SMTP_HOST, mails go to the log (development).
    smtp_host: str | None = None
    smtp_port: int | None = Field(default=None, gt=0, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    email_from: str | None = None
    #: The client application's page that resets a password: "{token}" in it is
    #: replaced by the reset token. Unset: password reset by email is off.
    password_reset_url: str | None = None
    password_reset_token_minutes: int = Field(default=30, gt=0, le=24 * 60)
    #: The client application's page that confirms an email address ("{token}" as
    #: above). Unset: no verification mails.
    email_verification_url: str | None = None
    #: Refuse logins (403) of users whose email address is not verified.
    require_verified_email: bool = False
    #: The service's own pages under /account (sign in, register, password reset,
    #: email verification, the account); off for API-only deployments.
    pages_enabled: bool = True
    #: A browser session (the session cookie) ends when unused this long, and this
    #: long after it started whatever its use.
    session_idle_minutes: int = Field(default=60, gt=0, le=30 * 24 * 60)
    session_max_hours: int = Field(default=24, gt=0, le=365 * 24)
    #: Superusers have their powers only in logins made with a second factor:
    #: those without one are asked to set one up.
    require_mfa_for_superusers: bool = False

    @field_validator("cors_origins", mode="before")
    @classmethod
    def split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator(
        "private_key",
        "private_key_file",
        "smtp_host",
        "smtp_port",
        "smtp_user",
        "smtp_password",
        "email_from",
        "password_reset_url",
        "email_verification_url",
        mode="before",
    )
    @classmethod
    def empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("public_url", "jwt_issuer")
    @classmethod
    def base_url(cls, url: str) -> str:
        """An http(s) URL with a host, and no query or fragment; without its
        trailing slash (paths are added to it)."""
        parts = urlsplit(url)
        if url and (
            parts.scheme not in ("https", "http")
            or not parts.hostname
            or parts.query
            or parts.fragment
        ):
            raise ValueError("must be an http(s) URL with a host and no query")
        return url.rstrip("/")

    @field_validator("password_reset_url", "email_verification_url")
    @classmethod
    def link_with_a_token(cls, url: str | None) -> str | None:
        if url is not None and (
            "{token}" not in url or not url.startswith(("https://", "http://"))
        ):
            raise ValueError("must be an http(s) URL containing {token}")
        return url

    @field_validator("database_url")
    @classmethod
    def use_psycopg_driver(cls, url: str) -> str:
        """Accept plain postgresql:// and postgres:// URLs: add the psycopg driver."""
        for scheme in ("postgresql://", "postgres://"):
            if url.startswith(scheme):
                return "postgresql+psycopg://" + url.removeprefix(scheme)
        return url

{%- if cookiecutter.jwt_library == "python-jose" %}

    @field_validator("algorithm", mode="before")
    @classmethod
    def no_eddsa(cls, value: object) -> object:
        if value == "EdDSA":
            raise ValueError(
                "python-jose cannot sign EdDSA: use RS256 or ES256 (PyJWT and "
                "joserfc projects can use EdDSA)"
            )
        return value
{%- endif %}

    @model_validator(mode="after")
    def issuer_is_a_url_clients_trust(self) -> "Settings":
        """The issuer defaults to PUBLIC_URL; in production both are https (plain
        http only for localhost, which browsers treat as secure too)."""
        self.jwt_issuer = self.jwt_issuer or self.public_url
        if self.environment == "production":
            urls = {"PUBLIC_URL": self.public_url, "JWT_ISSUER": self.jwt_issuer}
            for name, url in urls.items():
                parts = urlsplit(url)
                if parts.scheme != "https" and parts.hostname not in LOCAL_HOSTS:
                    raise ValueError(
                        f"{name} must be an https URL in production (http only for "
                        "localhost)"
                    )
        return self

    @model_validator(mode="after")
    def private_key_only_for_asymmetric_algorithms(self) -> "Settings":
        given = [self.private_key is not None, self.private_key_file is not None]
        if all(given):
            raise ValueError("set PRIVATE_KEY or PRIVATE_KEY_FILE, not both")
        if any(given) and self.algorithm.startswith("HS"):
            raise ValueError(
                "PRIVATE_KEY and PRIVATE_KEY_FILE need an ALGORITHM that signs with "
                f"a private key, not {self.algorithm}"
            )
        return self

    @model_validator(mode="after")
    def links_open_the_pages(self) -> "Settings":
        """Mailed links open the service's own pages unless PASSWORD_RESET_URL and
        EMAIL_VERIFICATION_URL point them at a client app (where mail goes: in
        production, with SMTP_HOST)."""
        if self.pages_enabled and self.mail_is_sent:
            pages = self.public_url + "/account"
            self.password_reset_url = (
                self.password_reset_url or pages + "/reset-password?token={token}"
            )
            self.email_verification_url = (
                self.email_verification_url or pages + "/verify-email?token={token}"
            )
        return self

    @model_validator(mode="after")
    def mail_goes_somewhere(self) -> "Settings":
        if self.smtp_host and not self.email_from:
            raise ValueError("SMTP_HOST needs EMAIL_FROM, the sender of every mail")
        links = self.password_reset_url or self.email_verification_url
        if self.environment == "production" and links and not self.smtp_host:
            raise ValueError(
                "PASSWORD_RESET_URL and EMAIL_VERIFICATION_URL need SMTP_HOST in "
                "production: without a mail server, mails would only reach the log"
            )
        if self.require_verified_email and not self.email_verification_url:
            raise ValueError(
                "REQUIRE_VERIFIED_EMAIL needs EMAIL_VERIFICATION_URL (or the pages, "
                "and mail going out): users could never verify their address"
            )
        return self

    @model_validator(mode="after")
    def superuser_needs_a_password(self) -> "Settings":
        if bool(self.first_superuser) != bool(self.first_superuser_password):
            raise ValueError(
                "set both FIRST_SUPERUSER and FIRST_SUPERUSER_PASSWORD, or neither"
            )
        return self

    @model_validator(mode="after")
    def require_strong_secret(self) -> "Settings":
        """Refuse a missing, short, placeholder or low-entropy SECRET_KEY in
        production, where it signs tokens or encrypts the stored signing keys (it
        has no use with PRIVATE_KEY)."""
        if self.private_key is not None or self.private_key_file is not None:
            return self
        secret = self.secret_key.get_secret_value()
        minimum = MIN_SECRET_LENGTH.get(self.algorithm, MIN_ENCRYPTION_SECRET_LENGTH)
        weak = (
            len(secret) < minimum
            or secret.lower() in PLACEHOLDER_SECRETS
            or estimated_bits(secret) < MIN_SECRET_BITS
        )
        if not weak:
            return self
        if self.environment == "production":
            raise ValueError(
                f"SECRET_KEY must be set to a random value of at least {minimum} "
                f"characters for {self.algorithm} (not a word or a repeated "
                "pattern), e.g. the output of: "
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

    @property
    def session_cookie(self) -> str:
        """The session cookie's name: in production with the ``__Host-`` prefix,
        which browsers accept only from a secure origin, for this host alone and
        the whole site."""
        return "__Host-session" if self.environment == "production" else "session"

    @property
    def cookie_is_secure(self) -> bool:
        """Cookies are sent over https only, but in development on plain http."""
        return self.environment == "production" or self.public_url.startswith("https:")

    @property
    def allowed_origins(self) -> frozenset[str]:
        """The browser origins whose requests may change state with the session
        cookie: this service's own (PUBLIC_URL's; on this machine, by any of its
        names) and CORS_ORIGINS."""
        parts = urlsplit(self.public_url)
        hosts = {parts.netloc}
        if parts.hostname in LOCAL_HOSTS:
            port = f":{parts.port}" if parts.port else ""
            hosts = {f"{host}{port}" for host in ("localhost", "127.0.0.1", "[::1]")}
        return frozenset({f"{parts.scheme}://{host}" for host in hosts}).union(
            self.cors_origins
        )

    @property
    def mail_is_sent(self) -> bool:
        """Whether mails go anywhere: to SMTP_HOST, or (not in production) to the
        log."""
        return bool(self.smtp_host) or self.environment != "production"


def estimated_bits(secret: str) -> float:
    """Length times the Shannon entropy of the characters: low for repeated or
    few distinct characters, whatever the length."""
    if not secret:
        return 0.0
    counts = Counter(secret).values()
    per_character = -sum(n / len(secret) * math.log2(n / len(secret)) for n in counts)
    return len(secret) * per_character


def derived_key(purpose: bytes) -> bytes:
    """A 256-bit key for one ``purpose`` (encrypting stored signing keys, say),
    derived from SECRET_KEY with HKDF-SHA256: each purpose has its own key, and
    none of them tells anything of the secret or of another."""
    return _derived_key(settings.secret_key.get_secret_value(), purpose)


@lru_cache(maxsize=8)
def _derived_key(secret: str, purpose: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose)
    return hkdf.derive(secret.encode())


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
