"""Request dependencies: who is calling."""

from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import OAuth2PasswordBearer

{{ imports(database="SessionDep", models="User", tokens="InvalidTokenError, decode_access_token") }}

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token")


def get_current_user(
    session: SessionDep, token: Annotated[str, Depends(oauth2_scheme)]
) -> User:
    """The active user the bearer token belongs to; 401 otherwise."""
    try:
        subject = decode_access_token(token)
    except InvalidTokenError:
        subject = None
    user = session.get(User, int(subject)) if subject and subject.isdigit() else None
    if user is None or not user.is_active:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="Could not validate credentials",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
