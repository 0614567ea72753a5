"""Request and response bodies for logging in."""

from typing import Literal

from pydantic import BaseModel


class LoginRequest(BaseModel):
    """JSON credentials for POST /login."""

    username: str
    password: str


class Token(BaseModel):
    """An OAuth2 bearer token response."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (a type, not a secret)
    expires_in: int


class Message(BaseModel):
    message: str
