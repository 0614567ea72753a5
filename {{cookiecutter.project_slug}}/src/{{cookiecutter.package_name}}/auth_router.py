"""Logging in: the OAuth2 password flow and its JSON twin."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm

{{ imports(auth_schemas="LoginRequest, Message, Token", auth_service="authenticate, issue_token", database="SessionDep", dependencies="CurrentUser") }}

router = APIRouter(tags=["auth"])

UNAUTHORIZED = {
    status.HTTP_401_UNAUTHORIZED: {"description": "Incorrect username or password"}
}


def _login(session: SessionDep, username: str, password: str) -> Token:
    user = authenticate(session, username, password)
    if user is None:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="Incorrect username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return issue_token(user)


@router.post("/token", responses=UNAUTHORIZED)
def login_for_access_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], session: SessionDep
) -> Token:
    """OAuth2 password flow (form fields ``username`` and ``password``)."""
    return _login(session, form.username, form.password)


@router.post("/login", responses=UNAUTHORIZED)
def login(credentials: LoginRequest, session: SessionDep) -> Token:
    """The same as POST /token, with a JSON body."""
    return _login(session, credentials.username, credentials.password)


@router.get("/protected")
def protected(user: CurrentUser) -> Message:
    """An example of a route that needs a valid token."""
    return Message(message=f"Welcome {user.username}")
