"""Request and response bodies for logging in and out, browser sessions, and
password reset."""

from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

{{ imports(mfa_schemas="Otp, RecoveryCodeText", schemas="RequestModel", user_schemas="Email, NewPassword, Sent") }}


class LoginRequest(RequestModel):
    """JSON credentials for POST /login."""

    username: str
    password: str


#: A form field's text: an empty field counts as one not sent.
FormText = Annotated[str, Field(min_length=1)]


#: The grants that complete a sign-in waiting for its second factor, named as
#: Auth0 names them, so that clients written for it work unchanged.
OTP_GRANT = "http://auth0.com/oauth/grant-type/mfa-otp"
RECOVERY_CODE_GRANT = "http://auth0.com/oauth/grant-type/mfa-recovery-code"
#: The fields each grant of the token endpoint needs.
GRANT_FIELDS = {
    "password": ("username", "password"),
    "refresh_token": ("refresh_token",),
    OTP_GRANT: ("mfa_token", "otp"),
    RECOVERY_CODE_GRANT: ("mfa_token", "recovery_code"),
}


class TokenForm(RequestModel):
    """The OAuth2 token request (form fields): the password grant, the
    refresh_token grant that OAuth2 client libraries send to renew tokens, or a
    grant that completes a sign-in with its second factor (``mfa_token`` from the
    password grant's 403, and a code or a recovery code)."""

    grant_type: Literal["password", "refresh_token", OTP_GRANT, RECOVERY_CODE_GRANT] = (
        "password"
    )
    username: FormText | None = None
    password: FormText | None = Field(
        default=None, json_schema_extra={"format": "password"}
    )
    refresh_token: FormText | None = None
    mfa_token: FormText | None = None
    otp: Otp | None = None
    recovery_code: RecoveryCodeText | None = None
    scope: str = ""

    # The fields each grant needs, as the validator below checks them.
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "if": {
                        "properties": {"grant_type": {"const": grant}},
                        "required": ["grant_type"],
                    },
                    "then": {"required": list(fields)},
                }
                for grant, fields in GRANT_FIELDS.items()
            ]
            + [
                {
                    "if": {"not": {"required": ["grant_type"]}},
                    "then": {"required": ["username", "password"]},
                }
            ]
        }
    )

    @model_validator(mode="after")
    def fields_of_the_grant(self) -> Self:
        needed = GRANT_FIELDS[self.grant_type]
        if any(getattr(self, name) is None for name in needed):
            raise ValueError(
                f"grant_type={self.grant_type} needs {' and '.join(needed)}"
            )
        return self


class MfaLogin(RequestModel):
    """The ticket of a sign-in waiting for its second factor (``mfa_token``), and
    a current code from the authenticator app or one recovery code."""

    mfa_token: Annotated[str, Field(min_length=1, max_length=128)]
    otp: Sent[Otp] = None
    recovery_code: Sent[RecoveryCodeText] = None

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [{"required": ["otp"]}, {"required": ["recovery_code"]}]
        }
    )

    @model_validator(mode="after")
    def one_proof(self) -> Self:
        if (self.otp is None) == (self.recovery_code is None):
            raise ValueError("send otp or recovery_code (one of them)")
        return self


class Refusal(BaseModel):
    """Why a request was refused."""

    detail: str


class MfaRequired(BaseModel):
    """A right password of a user with a second factor (403): no tokens yet, but a
    ticket to complete the sign-in with a code (POST /login/mfa, or the OTP grant
    of POST /token) within a few minutes. Auth0's shape."""

    detail: str
    error: Literal["mfa_required"] = "mfa_required"
    error_description: str
    mfa_token: str


class PasswordResetRequest(RequestModel):
    """The address of the account whose password was forgotten."""

    email: Email


class VerificationRequest(RequestModel):
    """Signed out: the address that needs a new verification link."""

    email: Email


#: A token as the service makes them (URL-safe base64).
OneTimeTokenText = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
]


class EmailVerification(RequestModel):
    """The token from the verification mail."""

    token: OneTimeTokenText


class PasswordResetConfirm(RequestModel):
    """The token from the reset mail, and the new password."""

    token: OneTimeTokenText
    new_password: NewPassword


class RefreshRequest(RequestModel):
    """A refresh token, for POST /token/refresh and POST /logout."""

    refresh_token: str


class Token(BaseModel):
    """An OAuth2 bearer token response, with the refresh token that renews it."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (a type, not a secret)
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


class SessionStarted(BaseModel):
    """A browser session's CSRF token: send it back as X-CSRF-Token with every
    request that changes state (the session itself is in the cookie)."""

    csrf_token: str


class SessionToken(BaseModel):
    """A short-lived access token of a browser session, for other services; no
    refresh token (ask again)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (a type, not a secret)
    expires_in: int


class LoginInfo(BaseModel):
    """One live login: when it started and was last used (to the minute), the
    client address and user agent it started from, and whether it is the one
    asking."""

    id: str
    created_at: datetime
    last_used_at: datetime | None
    client: str | None
    user_agent: str | None
    current: bool


class JsonWebKeySet(BaseModel):
    """Public keys as a JWK set (RFC 7517): each with ``kty``, ``kid``, ``use``,
    ``alg`` and the key's own members."""

    keys: list[dict[str, str]]


class AuthorizationServerMetadata(BaseModel):
    """RFC 8414 metadata. No authorization endpoint (users log in with a password
    at the token endpoint), hence no response types; clients are public (no client
    authentication)."""

    issuer: str
    token_endpoint: str
    jwks_uri: str
    grant_types_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    response_types_supported: list[str]


class Message(BaseModel):
    message: str
