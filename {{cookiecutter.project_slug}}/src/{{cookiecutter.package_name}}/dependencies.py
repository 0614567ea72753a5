"""Request dependencies: who is calling, and may they."""

from functools import partial
from typing import Annotated

from fastapi import Depends, Request, status
from fastapi.security import OAuth2PasswordBearer

{{ imports(auth_service="find_caller", database="run_query", keys="reload_keys", tokens="AccessToken, InvalidTokenError, UnknownKeyError, decode_access_token", user_schemas="UserPublic") }}

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token")
#: The same, for routes that also serve callers without a token.
optional_oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token", auto_error=False)

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
    every authenticated request): routes that change the user read its row in
    their own session, by id."""
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


async def get_optional_user(
    token: Annotated[str | None, Depends(optional_oauth2_scheme)],
) -> UserPublic | None:
    """The caller if a bearer token was sent (401 if it is not valid), else None."""
    return None if token is None else await get_current_user(token)


#: The caller if signed in: for routes that serve anyone.
OptionalUser = Annotated[UserPublic | None, Depends(get_optional_user)]


async def get_current_superuser(user: CurrentUser) -> UserPublic:
    """The current user if a superuser; 403 otherwise."""
    if not user.is_superuser:
        raise NotSuperuserError
    return user


CurrentSuperuser = Annotated[UserPublic, Depends(get_current_superuser)]
