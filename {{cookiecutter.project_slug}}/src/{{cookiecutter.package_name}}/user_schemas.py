"""Request and response bodies for users."""

from datetime import datetime
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

{{ imports(passwords="MAX_BYTES, MIN_LENGTH, too_long", schemas="RequestModel") }}

#: ASCII only, so that case-insensitive comparison means the same on every database
#: and look-alike characters cannot impersonate another user.
Username = Annotated[
    str,
    StringConstraints(
        min_length=3, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$"
    ),
]


def _fits_hasher(password: str) -> str:
    if too_long(password):
        raise ValueError(f"must be at most {MAX_BYTES} bytes when UTF-8 encoded")
    return password


#: A password being set: long enough, and short enough to hash without truncation.
NewPassword = Annotated[str, Field(min_length=MIN_LENGTH), AfterValidator(_fits_hasher)]
FullName = Annotated[str, Field(max_length=255)]


def _deliverable_address(address: str) -> str:
    """The address, normalised (its domain lower-cased), if it is well formed."""
    try:
        return validate_email(
            address, check_deliverability=False, test_environment=True
        ).normalized
    except EmailNotValidError:
        # The library's reasons quote parts of the address: none is repeated.
        raise ValueError("not a valid email address") from None


#: An email address (``.test`` addresses included, for testing); addresses at the
#: other special-use domains (arpa, invalid, local, localhost, onion) are refused.
Email = Annotated[
    str,
    Field(max_length=320),
    AfterValidator(_deliverable_address),
    WithJsonSchema(
        {
            "type": "string",
            "format": "email",
            "maxLength": 320,
            "description": "An email address; addresses at the special-use domains "
            "arpa, invalid, local, localhost and onion are refused",
        }
    ),
]


class UserCreate(RequestModel):
    """A new account. Privileged fields (is_active, is_superuser) are not accepted
    here and are ignored if sent."""

    username: Username
    password: NewPassword
    email: Email | None = None
    full_name: FullName | None = None


class UserUpdateMe(RequestModel):
    """What users may change about themselves (privileged fields are ignored)."""

    email: Email | None = None
    full_name: FullName | None = None


class UserAdminUpdate(UserUpdateMe):
    """What a superuser may change about any user."""

    is_active: bool | SkipJsonSchema[None] = None
    is_superuser: bool | SkipJsonSchema[None] = None

    @field_validator("is_active", "is_superuser")
    @classmethod
    def not_null(cls, value: bool | None) -> bool:
        if value is None:
            raise ValueError("must be true or false")
        return value


class PasswordChange(RequestModel):
    current_password: str
    new_password: NewPassword


class UserPublic(BaseModel):
    """A user as the API shows it: never a password or a hash."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    email: str | None
    full_name: str | None
    is_active: bool
    is_superuser: bool
    is_verified: bool
    created_at: datetime
