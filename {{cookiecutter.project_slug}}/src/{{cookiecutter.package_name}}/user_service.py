"""Reading and creating users."""

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

{{ imports(models="User", passwords="hash_password", user_schemas="UserCreate") }}


class UsernameTakenError(Exception):
    """Another user already has this username (in any letter case)."""


def get_user_by_username(session: Session, username: str) -> User | None:
    return session.scalar(
        select(User).where(func.lower(User.username) == username.lower())
    )


def create_user(session: Session, data: UserCreate) -> User:
    """Store a new, active, non-privileged user; raises UsernameTakenError."""
    if get_user_by_username(session, data.username) is not None:
        raise UsernameTakenError(data.username)
    user = User(
        username=data.username,
        email=data.email,
        full_name=data.full_name,
        hashed_password=hash_password(data.password),
    )
    session.add(user)
    try:
        session.commit()
    except IntegrityError as error:  # taken between the check and the insert
        session.rollback()
        raise UsernameTakenError(data.username) from error
    return user
