"""Logging in and out: the OAuth2 token endpoint, its JSON twins, and logout."""

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, Response, status

{{ imports(auth_schemas="LoginRequest, Message, RefreshRequest, Token, TokenForm", auth_service="authenticate, logout, refresh, start_session", database="SessionDep", dependencies="UNAUTHENTICATED, CurrentUser, unauthorized", throttle="ThrottledError, check, record_failure, record_success") }}

router = APIRouter(tags=["auth"])

UNAUTHORIZED = {
    status.HTTP_401_UNAUTHORIZED: {"description": "Incorrect credentials"},
    status.HTTP_429_TOO_MANY_REQUESTS: {"description": "Too many failed logins"},
}


def _login(
    session: SessionDep, request: Request, username: str, password: str
) -> Token:
    client = request.client.host if request.client else None
    try:
        check(session, username, client)
    except ThrottledError as throttled:
        raise HTTPException(
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            detail="Too many failed logins; try again later",
            headers={"Retry-After": str(throttled.retry_after)},
        ) from None
    user = authenticate(session, username, password)
    if user is None:
        record_failure(session, username, client)
        raise unauthorized("Incorrect username or password")
    record_success(session, username)
    return start_session(session, user)


def _refresh(session: SessionDep, refresh_token: str) -> Token:
    token = refresh(session, refresh_token)
    if token is None:
        raise unauthorized("Invalid refresh token")
    return token


@router.post("/token", responses=UNAUTHORIZED)
def token(
    form: Annotated[TokenForm, Form()], session: SessionDep, request: Request
) -> Token:
    """OAuth2 token endpoint: ``grant_type=password`` with ``username`` and
    ``password``, or ``grant_type=refresh_token`` with ``refresh_token``."""
    if form.grant_type == "refresh_token":
        return _refresh(session, form.refresh_token or "")
    return _login(session, request, form.username or "", form.password or "")


@router.post("/login", responses=UNAUTHORIZED)
def login(credentials: LoginRequest, session: SessionDep, request: Request) -> Token:
    """The same as POST /token with the password grant, with a JSON body."""
    return _login(session, request, credentials.username, credentials.password)


@router.post("/token/refresh", responses=UNAUTHORIZED)
def refresh_token(body: RefreshRequest, session: SessionDep) -> Token:
    """A new token pair for a refresh token, which is used up (rotation); using
    one a second time revokes its whole login."""
    return _refresh(session, body.refresh_token)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def log_out(body: RefreshRequest, session: SessionDep) -> Response:
    """End the login the refresh token belongs to: its refresh and access tokens."""
    logout(session, body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/protected", responses=UNAUTHENTICATED)
async def protected(user: CurrentUser) -> Message:
    """An example of a route that needs a valid token."""
    return Message(message=f"Welcome {user.username}")
