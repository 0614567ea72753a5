"""Registering and reading users."""

from fastapi import APIRouter, HTTPException, status

{{ imports(database="SessionDep", dependencies="CurrentUser", models="User", user_schemas="UserCreate, UserPublic", user_service="UsernameTakenError, create_user") }}

router = APIRouter(tags=["users"])


def register(data: UserCreate, session: SessionDep) -> User:
    """Create an account; log in with POST /token or POST /login afterwards."""
    try:
        return create_user(session, data)
    except UsernameTakenError:
        raise HTTPException(
            status_code=status.HTTP_409_CONFLICT, detail="Username already registered"
        ) from None


# POST /users/ (seed 002) and POST /register (seed 004) are the same operation.
for path in ("/users/", "/register"):
    router.add_api_route(
        path,
        register,
        methods=["POST"],
        status_code=status.HTTP_201_CREATED,
        response_model=UserPublic,
        responses={
            status.HTTP_409_CONFLICT: {"description": "Username already registered"}
        },
    )


@router.get("/users/me", response_model=UserPublic)
def read_current_user(user: CurrentUser) -> User:
    return user
