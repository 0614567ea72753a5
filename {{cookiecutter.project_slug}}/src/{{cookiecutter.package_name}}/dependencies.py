"""Request dependencies: who is calling, and may they."""

from functools import partial
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer

{{ imports(auth_service="find_caller", database="run_query", tokens="InvalidTokenError, decode_access_token", user_schemas="UserPublic") }}

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token")

#: What routes that need a token (or a superuser's) may answer besides their own.
UNAUTHENTICATED = {
    status.HTTP_401_UNAUTHORIZED: {"description": "Missing, invalid or revoked token"}
}
NOT_SUPERUSER = UNAUTHENTICATED | {
    status.HTTP_403_FORBIDDEN: {"description": "Superuser privileges required"}
}


def client_address(request: Request) -> str | None:
    """The caller's address, as the server saw it (from X-Forwarded-For only when
    the connection came from a proxy in FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client else None


def unauthorized(detail: str) -> HTTPException:
    """A 401 that tells the client to authenticate with a bearer token."""
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


async def get_current_user(
    token: Annotated[str, Depends(oauth2_scheme)],
) -> UserPublic:
    """The active user the bearer token belongs to, if its login is not revoked;
    401 otherwise. Read-only: a route that changes the user loads it itself."""
    try:
        claims = decode_access_token(token)
    except InvalidTokenError:
        claims = None
    user = None
    if claims:
        user = await run_query(partial(find_caller, claims.user_id, claims.session_id))
    if user is None:
        raise unauthorized("Could not validate credentials")
    return user


CurrentUser = Annotated[UserPublic, Depends(get_current_user)]


async def get_current_superuser(user: CurrentUser) -> UserPublic:
    """The current user if a superuser; 403 otherwise."""
    if not user.is_superuser:
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail="Superuser privileges required",
        )
    return user


CurrentSuperuser = Annotated[UserPublic, Depends(get_current_superuser)]
