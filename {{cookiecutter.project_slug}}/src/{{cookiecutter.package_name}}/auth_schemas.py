"""Request and response bodies for logging in and out."""

from typing import Literal, Self

from pydantic import BaseModel, Field, model_validator

{{ imports(schemas="RequestModel") }}


class LoginRequest(RequestModel):
    """JSON credentials for POST /login."""

    username: str
    password: str


class TokenForm(RequestModel):
    """The OAuth2 token request (form fields): the password grant, or the
    refresh_token grant that OAuth2 client libraries send to renew tokens."""

    grant_type: Literal["password", "refresh_token"] = "password"
    username: str | None = None
    password: str | None = Field(default=None, json_schema_extra={"format": "password"})
    refresh_token: str | None = None
    scope: str = ""

    @model_validator(mode="after")
    def fields_of_the_grant(self) -> Self:
        if self.grant_type == "password" and (
            self.username is None or self.password is None
        ):
            raise ValueError("grant_type=password needs username and password")
        if self.grant_type == "refresh_token" and self.refresh_token is None:
            raise ValueError("grant_type=refresh_token needs refresh_token")
        return self


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


class Message(BaseModel):
    message: str
