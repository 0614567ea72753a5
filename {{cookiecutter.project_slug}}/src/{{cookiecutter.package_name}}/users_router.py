"""Registering users, managing your own account, and (superusers) everyone's."""

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, BackgroundTasks, Path, Query, Request, Response, status

{{ imports(auth_service="change_password, revoke_all_sessions", email_links="deliver_mails, request_verification", database="SessionDep", dependencies="NOT_SUPERUSER, UNAUTHENTICATED, CurrentSuperuser, CurrentUser, CurrentUserRecord, client_address", middleware="log_event", passwords="hash_password", throttle="registration_limits, reserve", user_models="User", user_schemas="PasswordChange, UserAdminUpdate, UserCreate, UserPublic, UserUpdateMe", user_service="SelfLockoutError, check_new_user, create_user, delete_user, get_user, list_users, same_address, update_user") }}

router = APIRouter(tags=["users"])

NOT_FOUND = {status.HTTP_404_NOT_FOUND: {"description": "No such user"}}
EMAIL_TAKEN = {
    status.HTTP_409_CONFLICT: {"description": "Email address already registered"}
}
SELF_LOCKOUT = {
    status.HTTP_400_BAD_REQUEST: {
        "description": "Superusers cannot lock themselves out"
    }
}

#: Ids and offsets beyond what the database stores are refused before any query.
MAX_ID = 2**31 - 1
UserId = Annotated[int, Path(ge=1, le=MAX_ID)]


REGISTRATION = {
    "status_code": status.HTTP_201_CREATED,
    "response_model": UserPublic,
    "responses": {
        status.HTTP_409_CONFLICT: {
            "description": "Username or email address already registered"
        },
        status.HTTP_429_TOO_MANY_REQUESTS: {
            "description": "Too many registrations from this address"
        },
    },
}


@router.post("/users/", name="create_user", **REGISTRATION)
@router.post("/register", name="register", **REGISTRATION)
async def register(
    data: UserCreate,
    session: SessionDep,
    request: Request,
    background: BackgroundTasks,
) -> User:
    """Create an account; log in with POST /token or POST /login afterwards. An
    email address given gets a verification mail."""
    await to_thread.run_sync(reserve, registration_limits(client_address(request)))
    await to_thread.run_sync(check_new_user, session, data)
    hashed_password = await hash_password(data.password)
    user = await to_thread.run_sync(create_user, session, data, hashed_password)
    await to_thread.run_sync(session.commit)
    await to_thread.run_sync(verify_new_address, user, None, background)
    return user


def verify_new_address(
    user: User, previous: str | None, background: BackgroundTasks
) -> None:
    """A verification mail to the user's address if it is new (sent after the
    answer)."""
    if user.email and not same_address(user.email, previous):
        request_verification(user.email)
        background.add_task(deliver_mails)


@router.get("/users/me", responses=UNAUTHENTICATED)
async def read_current_user(user: CurrentUser) -> UserPublic:
    return user


@router.patch(
    "/users/me", response_model=UserPublic, responses=UNAUTHENTICATED | EMAIL_TAKEN
)
def update_current_user(
    changes: UserUpdateMe,
    user: CurrentUserRecord,
    session: SessionDep,
    background: BackgroundTasks,
) -> User:
    """Change your name or address; a new address is unverified until its link is
    opened."""
    previous = user.email
    update_user(session, user, changes)
    session.commit()
    verify_new_address(user, previous, background)
    return user


@router.post(
    "/users/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=UNAUTHENTICATED
    | {
        status.HTTP_400_BAD_REQUEST: {"description": "Current password is incorrect"},
        status.HTTP_429_TOO_MANY_REQUESTS: {"description": "Too many wrong passwords"},
    },
)
async def change_current_password(
    body: PasswordChange, user: CurrentUser, request: Request
) -> Response:
    """Change your password; every login (this one included) ends: log in again.
    Wrong current passwords are throttled like failed logins."""
    await change_password(
        user, body.current_password, body.new_password, client_address(request)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/users/", response_model=list[UserPublic], responses=NOT_SUPERUSER)
def read_users(
    _admin: CurrentSuperuser,
    session: SessionDep,
    skip: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
) -> list[User]:
    """Superusers: all users, by id, a page at a time."""
    return list_users(session, skip, limit)


@router.get(
    "/users/{user_id:int}",
    response_model=UserPublic,
    responses=NOT_SUPERUSER | NOT_FOUND,
)
def read_user(user_id: UserId, _admin: CurrentSuperuser, session: SessionDep) -> User:
    return get_user(session, user_id)


@router.patch(
    "/users/{user_id:int}",
    response_model=UserPublic,
    responses=NOT_SUPERUSER | NOT_FOUND | SELF_LOCKOUT | EMAIL_TAKEN,
)
def update_any_user(
    user_id: UserId,
    changes: UserAdminUpdate,
    admin: CurrentSuperuser,
    session: SessionDep,
    background: BackgroundTasks,
) -> User:
    """Superusers: change a user; deactivating one ends all their logins at once."""
    user = get_user(session, user_id)
    if user.id == admin.id and (
        changes.is_active is False or changes.is_superuser is False
    ):
        raise SelfLockoutError("Superusers cannot deactivate or demote themselves")
    if changes.is_active is False:
        revoke_all_sessions(session, user.id)
    previous = user.email
    update_user(session, user, changes)
    session.commit()
    verify_new_address(user, previous, background)
    log_event(
        "user_changed",
        user_id=user.id,
        by=admin.id,
        fields=sorted(changes.model_fields_set),
    )
    return user


@router.delete(
    "/users/{user_id:int}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=NOT_SUPERUSER | NOT_FOUND | SELF_LOCKOUT,
)
def delete_any_user(
    user_id: UserId, admin: CurrentSuperuser, session: SessionDep
) -> Response:
    """Superusers: delete a user and everything they hold."""
    user = get_user(session, user_id)
    if user.id == admin.id:
        raise SelfLockoutError("Superusers cannot delete themselves")
    delete_user(session, user)
    session.commit()
    log_event("user_deleted", user_id=user_id, by=admin.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
