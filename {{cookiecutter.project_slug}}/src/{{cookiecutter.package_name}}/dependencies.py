"""Request dependencies: who is calling, and may they."""

from functools import partial
from typing import Annotated

from fastapi import Depends, Request, status
from fastapi.security import OAuth2PasswordBearer

{{ imports(auth_service="find_caller", database="SessionDep, run_query", keys="reload_keys", tokens="AccessToken, InvalidTokenError, UnknownKeyError, decode_access_token", user_models="User", user_schemas="UserPublic") }}

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


class NotAuthenticatedError(Exception):
    """The bearer token is invalid, expired or revoked, or its user is gone."""


class NotSuperuserError(Exception):
    """The caller is not a superuser."""


async def get_current_user(
    token: Annotated[str, Depends(oauth2_scheme)],
) -> UserPublic:
    """The active user the bearer token belongs to, if its login is not revoked;
    401 otherwise. A read-only snapshot, read without a session (the fast path of
    every authenticated request): routes that change the user take
    CurrentUserRecord instead."""
    claims = await read_access_token(token)
    user = None
    if claims:
        user = await run_query(partial(find_caller, claims.user_id, claims.session_id))
    if user is None:
        raise NotAuthenticatedError
    return user


async def read_access_token(token: str) -> AccessToken | None:
    """What a valid access token says, or None. A token naming a key this worker
    does not know makes it read the keys again (rate-limited): the key may have
    been made since, by another process (rotate-keys)."""
    try:
        return decode_access_token(token)
    except UnknownKeyError:
        if not await run_query(reload_keys):
            return None
    except InvalidTokenError:
        return None
    try:
        return decode_access_token(token)
    except InvalidTokenError:
        return None


#: The caller, read-only: for routes that read who is calling.
CurrentUser = Annotated[UserPublic, Depends(get_current_user)]


def get_current_user_record(user: CurrentUser, session: SessionDep) -> User:
    """The caller as a row of the request's session, for routes that change it."""
    record = session.get(User, user.id)
    if record is None:  # deleted since the check above
        raise NotAuthenticatedError
    return record


#: The caller as a database row in the request's session: for routes that write.
CurrentUserRecord = Annotated[User, Depends(get_current_user_record)]


async def get_current_superuser(user: CurrentUser) -> UserPublic:
    """The current user if a superuser; 403 otherwise."""
    if not user.is_superuser:
        raise NotSuperuserError
    return user


CurrentSuperuser = Annotated[UserPublic, Depends(get_current_superuser)]
