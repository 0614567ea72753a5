"""Request and response bodies for users."""

import unicodedata
from datetime import datetime
from email import policy
from typing import Annotated, Self, TypeVar

from email_validator import EmailNotValidError, validate_email
from fastapi import Path
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

{{ imports(passwords="MAX_BYTES, MIN_LENGTH, too_long", schemas="RequestModel") }}

#: Ids and offsets beyond what the database stores are refused before any query.
MAX_ID = 2**31 - 1
#: A user's id in a route's path.
UserId = Annotated[int, Path(ge=1, le=MAX_ID)]

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


T = TypeVar("T")


def _sent(value: object) -> object:
    if value is None:
        raise ValueError("must not be null")
    return value


#: A field that may be left out, but is never null when sent (as the schema says).
Sent = Annotated[T | SkipJsonSchema[None], AfterValidator(_sent)]

#: A current code from an authenticator app, for a change that needs a second
#: factor (checked, never stored).
ProofCode = Annotated[str, Field(min_length=1, max_length=16)]

#: A password being set: long enough, and short enough to hash without truncation.
NewPassword = Annotated[str, Field(min_length=MIN_LENGTH), AfterValidator(_fits_hasher)]
FullName = Annotated[str, Field(max_length=255)]


def normalized_email(address: str) -> str:
    """The one form of an address that is stored, compared and mailed to: Unicode
    NFKC with full case folding (RFC 5893's NFKC_Casefold), the same on every
    database, so that "Ärger@example.com" and "ärger@example.com" are one."""
    folded = unicodedata.normalize("NFKC", address).casefold()
    return unicodedata.normalize("NFKC", folded)


def _as_mail_reads_it(address: str) -> str | None:
    """The address a mail's To header would carry, once the mail library has parsed
    (and decoded) it; None if it cannot."""
    try:
        header = policy.default.header_factory("To", address)
    except ValueError:  # line breaks, among others
        return None
    addresses = getattr(header, "addresses", ())
    return addresses[0].addr_spec if len(addresses) == 1 else None


def _deliverable_address(address: str) -> str:
    """The address, normalised, if it is well formed and mail would go to exactly
    it: an RFC 2047 encoded word, say, is refused, since mail software decodes it
    into another address."""
    try:
        valid = validate_email(
            normalized_email(address), check_deliverability=False, test_environment=True
        )
    except EmailNotValidError:
        # The library's reasons quote parts of the address: none is repeated.
        raise ValueError("not a valid email address") from None
    address = normalized_email(valid.normalized)
    if "=?" in address or _as_mail_reads_it(address) != address:
        raise ValueError("not an address mail can be sent to as it is written")
    return address


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
            "description": "An email address, stored in lower case (Unicode case "
            "folding); addresses at the special-use domains arpa, invalid, local, "
            "localhost and onion are refused, as are RFC 2047 encoded words",
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


class UserChanges(RequestModel):
    """What may change about a user (privileged fields are ignored)."""

    email: Email | None = None
    full_name: FullName | None = None


class UserUpdateMe(UserChanges):
    """What users may change about themselves. A new email address (or none) needs
    the current password: a stolen access token must not be enough to move the
    account's password resets to another mailbox."""

    #: Checked, never stored (left out of ``model_dump``).
    current_password: Sent[str] = Field(default=None, exclude=True)
    #: With a second factor on, a new address needs a current code too (unless
    #: this login proved one in the last few minutes).
    otp: Sent[ProofCode] = Field(default=None, exclude=True)

    # The rule the validator below checks.
    model_config = ConfigDict(
        json_schema_extra={"dependentRequired": {"email": ["current_password"]}}
    )

    @model_validator(mode="after")
    def password_with_an_email(self) -> Self:
        if "email" in self.model_fields_set and self.current_password is None:
            raise ValueError("current_password is needed to change the email address")
        return self


class UserAdminUpdate(UserChanges):
    """What a superuser may change about any user."""

    is_active: Sent[bool] = None
    is_superuser: Sent[bool] = None


class PasswordChange(RequestModel):
    """The current password and the new one; with a second factor on, a current
    code too (unless this login proved one in the last few minutes)."""

    current_password: str
    new_password: NewPassword
    otp: ProofCode | None = None


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
