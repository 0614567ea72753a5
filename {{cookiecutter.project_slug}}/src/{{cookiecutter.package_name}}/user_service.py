"""Reading, creating, changing and deleting users."""

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

{{ imports(models="User", passwords="hash_password", user_schemas="UserCreate, UserUpdateMe") }}


class UsernameTakenError(Exception):
    """Another user already has this username (in any letter case)."""


def get_user_by_username(session: Session, username: str) -> User | None:
    return session.scalar(
        select(User).where(func.lower(User.username) == username.lower())
    )


def list_users(session: Session, skip: int, limit: int) -> list[User]:
    return list(
        session.scalars(select(User).order_by(User.id).offset(skip).limit(limit))
    )


def create_user(
    session: Session, data: UserCreate, *, is_superuser: bool = False
) -> User:
    """Store a new active user; raises UsernameTakenError."""
    if get_user_by_username(session, data.username) is not None:
        raise UsernameTakenError(data.username)
    user = User(
        username=data.username,
        email=data.email,
        full_name=data.full_name,
        hashed_password=hash_password(data.password),
        is_superuser=is_superuser,
    )
    session.add(user)
    try:
        session.commit()
    except IntegrityError as error:  # taken between the check and the insert
        session.rollback()
        raise UsernameTakenError(data.username) from error
    return user


def update_user(session: Session, user: User, changes: UserUpdateMe) -> User:
    """Apply the fields that were sent (of the schema the caller may use)."""
    for field, value in changes.model_dump(exclude_unset=True).items():
        setattr(user, field, value)
    session.commit()
    return user


def delete_user(session: Session, user: User) -> None:
    """Delete ``user``; their sessions and tokens go with them."""
    session.delete(user)
    session.commit()


def create_first_superuser(
    session: Session, username: str, password: str
) -> User | None:
    """Create the configured first superuser unless the username exists (so every
    start-up may call it). Invalid values raise ValueError naming the problem,
    never the password."""
    if get_user_by_username(session, username) is not None:
        return None
    try:
        data = UserCreate(username=username, password=password)
    except ValidationError as error:
        problems = "; ".join(
            f"{e['loc'][0]}: {e['msg']}" for e in error.errors(include_input=False)
        )
        raise ValueError(
            f"FIRST_SUPERUSER / FIRST_SUPERUSER_PASSWORD: {problems}"
        ) from None
    try:
        return create_user(session, data, is_superuser=True)
    except UsernameTakenError:  # another worker created it meanwhile
        return None
