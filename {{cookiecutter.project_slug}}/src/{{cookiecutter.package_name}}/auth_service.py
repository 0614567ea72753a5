"""Checking credentials and issuing tokens."""

from sqlalchemy.orm import Session

{{ imports(auth_schemas="Token", config="settings", models="User", passwords="verify_password", tokens="create_access_token", user_service="get_user_by_username") }}


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with these credentials, or None.

    Costs one password check whether or not the user exists, and upgrades an
    outdated password hash on success.
    """
    user = get_user_by_username(session, username)
    valid, new_hash = verify_password(password, user.hashed_password if user else None)
    if user is None or not valid or not user.is_active:
        return None
    if new_hash is not None:
        user.hashed_password = new_hash
        session.commit()
    return user


def issue_token(user: User) -> Token:
    return Token(
        access_token=create_access_token(str(user.id)),
        expires_in=settings.access_token_expire_minutes * 60,
    )
