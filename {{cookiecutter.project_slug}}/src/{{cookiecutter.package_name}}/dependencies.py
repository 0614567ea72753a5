"""Request dependencies: who is calling, and may they."""

from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import select

{{ imports(database="SessionDep", models="AuthSession, User", tokens="InvalidTokenError, decode_access_token") }}

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token")

#: What routes that need a token (or a superuser's) may answer besides their own.
UNAUTHENTICATED = {
    status.HTTP_401_UNAUTHORIZED: {"description": "Missing, invalid or revoked token"}
}
NOT_SUPERUSER = UNAUTHENTICATED | {
    status.HTTP_403_FORBIDDEN: {"description": "Superuser privileges required"}
}


def unauthorized(detail: str) -> HTTPException:
    """A 401 that tells the client to authenticate with a bearer token."""
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


def get_current_user(
    session: SessionDep, token: Annotated[str, Depends(oauth2_scheme)]
) -> User:
    """The active user the bearer token belongs to, if its login is not revoked;
    401 otherwise."""
    try:
        claims = decode_access_token(token)
    except InvalidTokenError:
        claims = None
    user = None
    if claims and claims.subject.isdigit():
        user = session.scalar(
            select(User)
            .join(AuthSession, AuthSession.user_id == User.id)
            .where(
                User.id == int(claims.subject),
                AuthSession.id == claims.session_id,
                AuthSession.revoked_at.is_(None),
            )
        )
    if user is None or not user.is_active:
        raise unauthorized("Could not validate credentials")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_current_superuser(user: CurrentUser) -> User:
    """The current user if a superuser; 403 otherwise."""
    if not user.is_superuser:
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail="Superuser privileges required",
        )
    return user


CurrentSuperuser = Annotated[User, Depends(get_current_superuser)]
