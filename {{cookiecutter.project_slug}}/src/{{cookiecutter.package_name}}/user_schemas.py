"""Request and response bodies for users."""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
)

{{ imports(passwords="MAX_BYTES, MIN_LENGTH") }}

#: ASCII only, so that case-insensitive comparison means the same on every database
#: and look-alike characters cannot impersonate another user.
Username = Annotated[
    str,
    StringConstraints(
        min_length=3, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$"
    ),
]


class UserCreate(BaseModel):
    """A new account. Privileged fields (is_active, is_superuser) are not accepted
    here and are ignored if sent."""

    username: Username
    password: str = Field(min_length=MIN_LENGTH)
    email: EmailStr | None = None
    full_name: str | None = Field(default=None, max_length=255)

    @field_validator("password")
    @classmethod
    def password_fits_hasher(cls, password: str) -> str:
        if len(password.encode()) > MAX_BYTES:
            raise ValueError(f"must be at most {MAX_BYTES} bytes when UTF-8 encoded")
        return password


class UserPublic(BaseModel):
    """A user as the API shows it: never a password or a hash."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    email: str | None
    full_name: str | None
    is_active: bool
    is_superuser: bool
    created_at: datetime

    @field_validator("created_at")
    @classmethod
    def in_utc(cls, value: datetime) -> datetime:
        """Timestamps are stored in UTC; sqlite returns them without the zone."""
        return value if value.tzinfo else value.replace(tzinfo=UTC)
