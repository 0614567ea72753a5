"""Reading, creating, changing and deleting users."""

import contextlib

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

{{ imports(passwords="hash_password_blocking", user_models="UNIQUE_EMAIL, User", user_schemas="UserChanges, UserCreate") }}


class UsernameTakenError(Exception):
    """Another user already has this username (in any letter case)."""


class EmailTakenError(Exception):
    """Another user already has this email address (addresses are normalised)."""


class UserNotFoundError(Exception):
    """No user has this id."""


class SelfLockoutError(Exception):
    """A superuser tried to delete, deactivate or demote themselves (the message
    says which)."""


class FirstSuperuserError(Exception):
    """FIRST_SUPERUSER cannot be created as configured (the message says why)."""


def get_user_by_username(session: Session, username: str) -> User | None:
    return session.scalar(
        select(User).where(func.lower(User.username) == username.lower())
    )


def get_user(session: Session, user_id: int) -> User:
    """The user with this id; raises UserNotFoundError."""
    user = session.get(User, user_id)
    if user is None:
        raise UserNotFoundError(user_id)
    return user


def list_users(session: Session, skip: int, limit: int) -> list[User]:
    return list(
        session.scalars(select(User).order_by(User.id).offset(skip).limit(limit))
    )


def check_username_free(session: Session, username: str) -> None:
    """Raise UsernameTakenError if the name is taken (before hashing a password)."""
    if get_user_by_username(session, username) is not None:
        raise UsernameTakenError(username)


def check_email_free(session: Session, email: str, user_id: int | None = None) -> None:
    """Raise EmailTakenError if a user other than ``user_id`` has the address
    (normalised, as the schemas give it)."""
    holder = session.scalar(select(User.id).where(User.email == email))
    if holder is not None and holder != user_id:
        raise EmailTakenError


def check_new_user(session: Session, data: UserCreate) -> None:
    """Raise UsernameTakenError or EmailTakenError before a password is hashed."""
    check_username_free(session, data.username)
    if data.email is not None:
        check_email_free(session, data.email)


def create_user(
    session: Session,
    data: UserCreate,
    hashed_password: str,
    *,
    is_superuser: bool = False,
) -> User:
    """Add a new active user with its password's hash to the session (the caller
    commits); raises UsernameTakenError or EmailTakenError."""
    user = User(
        username=data.username,
        email=data.email,
        full_name=data.full_name,
        hashed_password=hashed_password,
        is_superuser=is_superuser,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as error:  # taken between the check and the insert
        session.rollback()
        if UNIQUE_EMAIL.name in str(error.orig):
            raise EmailTakenError from error
        raise UsernameTakenError(data.username) from error
    return user


def update_user(session: Session, user: User, changes: UserChanges) -> User:
    """Apply the fields that were sent (of the schema the caller may use); a new
    email address is not verified. Raises EmailTakenError."""
    values = changes.model_dump(exclude_unset=True)
    if values.get("email") is not None:
        check_email_free(session, values["email"], user.id)
    if "email" in values and values["email"] != user.email:
        user.is_verified = False
    for field, value in values.items():
        setattr(user, field, value)
    try:
        session.flush()
    except IntegrityError as error:  # taken between the check and the update
        session.rollback()
        raise EmailTakenError from error
    return user


def delete_user(session: Session, user: User) -> None:
    """Delete ``user``; their sessions and tokens go with them."""
    session.delete(user)
    session.flush()


def create_first_superuser(session: Session, username: str, password: str) -> None:
    """Create the configured first superuser unless it exists (so every start-up
    may call it). Raises FirstSuperuserError, naming the problem and never the
    password, for invalid values or a username held by a user who is not a
    superuser (registered by someone else before the operator configured it)."""
    existing = get_user_by_username(session, username)
    if existing is not None:
        if not existing.is_superuser:
            raise FirstSuperuserError(
                f"FIRST_SUPERUSER {username!r} is already a user who is not a "
                "superuser; choose another name, or promote that user if it is yours"
            )
        return
    try:
        data = UserCreate(username=username, password=password)
    except ValidationError as error:
        problems = "; ".join(
            f"{e['loc'][0]}: {e['msg']}" for e in error.errors(include_input=False)
        )
        raise FirstSuperuserError(
            f"FIRST_SUPERUSER / FIRST_SUPERUSER_PASSWORD: {problems}"
        ) from None
    with contextlib.suppress(UsernameTakenError):  # another worker created it
        create_user(
            session, data, hash_password_blocking(data.password), is_superuser=True
        )
