"""Registering users, managing your own account, and (superusers) everyone's."""

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, BackgroundTasks, Query, Request, Response, status

{{ imports(auth_models="VERIFICATION_LINK", auth_service="Caller, change_password, confirm_password, revoke_all_sessions", email_links="address_changed, deliver_mails, queue_mail", database="SessionDep", dependencies="NOT_SUPERUSER, UNAUTHENTICATED, CurrentCaller, CurrentSuperuser, CurrentUser, client_address", mfa_login="step_up", middleware="log_event", passwords="hash_password", throttle="Place, give_back, mail_request_limits, registration_limits, reserve, succeeded", user_models="User", user_schemas="MAX_ID, PasswordChange, UserAdminUpdate, UserCreate, UserId, UserPublic, UserUpdateMe", user_service="EmailTakenError, SelfLockoutError, check_new_user, create_user, delete_user, get_user, list_users, update_user") }}

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


SECOND_FACTOR_DUE = {
    status.HTTP_403_FORBIDDEN: {
        "description": "A current code from the authenticator app is needed (otp)"
    }
}

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
    user, mailed = await register_account(session, data, client_address(request))
    if mailed:
        background.add_task(deliver_mails)
    return user


async def register_account(
    session: SessionDep, data: UserCreate, client: str | None
) -> tuple[User, bool]:
    """The new account (throttled per client address), committed, and whether a
    verification mail is to be sent."""
    await to_thread.run_sync(reserve, registration_limits(client))
    await to_thread.run_sync(check_new_user, session, data)
    hashed_password = await hash_password(data.password)
    user = await to_thread.run_sync(create_user, session, data, hashed_password)
    # Limited by the registrations (and an address registers once).
    mailed = user.email is not None and queue_mail(
        session, VERIFICATION_LINK, user.email
    )
    await to_thread.run_sync(session.commit)
    return user, mailed


@router.get("/users/me", responses=UNAUTHENTICATED)
async def read_current_user(user: CurrentUser) -> UserPublic:
    return user


@router.patch(
    "/users/me",
    response_model=UserPublic,
    responses=UNAUTHENTICATED
    | EMAIL_TAKEN
    | SECOND_FACTOR_DUE
    | {
        status.HTTP_400_BAD_REQUEST: {
            "description": "Current password or code is incorrect"
        },
        status.HTTP_429_TOO_MANY_REQUESTS: {"description": "Too many requests"},
    },
)
async def update_current_user(
    changes: UserUpdateMe,
    caller: CurrentCaller,
    session: SessionDep,
    request: Request,
    background: BackgroundTasks,
) -> User:
    """Change your name or address. A new address (or none) needs your current
    password, checked like a login's (and, with a second factor on, a current
    code), and counts as a request for a mailed link: it is unverified until its
    link is opened, and the address it replaces is told."""
    account = await change_account(session, caller, changes, client_address(request))
    if "email" in changes.model_fields_set:
        background.add_task(deliver_mails)
    return account


async def change_account(
    session: SessionDep, caller: Caller, changes: UserUpdateMe, client: str | None
) -> User:
    """The caller's account with ``changes`` made and committed (a new address:
    throttled, with a recent second factor and the current password checked, and
    mailed)."""
    user = caller.user
    places: list[Place] = []
    if "email" in changes.model_fields_set:
        if changes.email is not None:  # before the answer says whether it is taken
            limits = mail_request_limits(changes.email, client)
            await to_thread.run_sync(reserve, limits)
        await step_up(caller, changes.otp, client)
        places = await confirm_password(user, changes.current_password or "", client)
    return await to_thread.run_sync(_update_account, session, user.id, changes, places)


def _update_account(
    session: SessionDep, user_id: int, changes: UserUpdateMe, places: list[Place]
) -> User:
    """The change, its mails and the password check's success: one transaction."""
    user = get_user(session, user_id)
    previous = user.email
    try:
        update_user(session, user, changes)
    except EmailTakenError:
        give_back(places)  # the password was right: not a failed attempt
        raise
    address_changed(session, previous, user.email)
    succeeded(session.connection(), places)
    session.commit()
    return user


@router.post(
    "/users/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=UNAUTHENTICATED
    | SECOND_FACTOR_DUE
    | {
        status.HTTP_400_BAD_REQUEST: {
            "description": "Current password or code is incorrect"
        },
        status.HTTP_429_TOO_MANY_REQUESTS: {"description": "Too many wrong passwords"},
    },
)
async def change_current_password(
    body: PasswordChange,
    caller: CurrentCaller,
    request: Request,
    background: BackgroundTasks,
) -> Response:
    """Change your password; every login (this one included) ends: log in again.
    Wrong current passwords are throttled like failed logins; with a second factor
    on, a current code is needed too. Your address is told."""
    await change_own_password(caller, body, client_address(request))
    background.add_task(deliver_mails)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def change_own_password(
    caller: Caller, change: PasswordChange, client: str | None
) -> None:
    """The caller's new password, after a recent second factor and the current
    password (see change_password)."""
    await step_up(caller, change.otp, client)
    await change_password(
        caller.user, change.current_password, change.new_password, client
    )


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
        revoke_all_sessions(session, user.id, "deactivated")
    previous = user.email
    update_user(session, user, changes)
    address_changed(session, previous, user.email)
    session.commit()
    if "email" in changes.model_fields_set:
        background.add_task(deliver_mails)
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
