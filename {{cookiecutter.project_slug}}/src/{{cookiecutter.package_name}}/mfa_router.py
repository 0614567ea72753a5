"""Second factors of your own account: add an authenticator app (with your
password), confirm it with a code, remove it, make new recovery codes, and prove a
code for the changes that need a recent one; superusers remove a user's."""

from collections.abc import Callable
from typing import TypeVar

from anyio import to_thread
from fastapi import APIRouter, BackgroundTasks, Request, Response, status
from sqlalchemy.orm import Session

{{ imports(auth_models="MFA_DISABLED_NOTICE, MFA_ENABLED_NOTICE, RECOVERY_CODES_NOTICE", auth_service="Caller, confirm_password, tell_user", database="SessionDep, in_transaction", dependencies="NOT_SUPERUSER, UNAUTHENTICATED, CurrentCaller, CurrentSuperuser, CurrentUser, client_address", email_links="deliver_mails", middleware="log_event", mfa="Enrolment, confirm_enrolment, factor_state, new_recovery_codes, remove_factor, start_enrolment", mfa_login="step_up, verify_code", mfa_schemas="OtpProof, PasswordProof, RecoveryCodes, RecoveryCodesRequest, SecondFactors, TotpEnrolment, TotpRemoval", throttle="Place, login_limits, reserve, succeeded", user_schemas="UserId, UserPublic", user_service="get_user") }}

router = APIRouter(tags=["second factors"])

T = TypeVar("T")

WRONG_PASSWORD = UNAUTHENTICATED | {
    status.HTTP_400_BAD_REQUEST: {"description": "Current password is incorrect"},
    status.HTTP_429_TOO_MANY_REQUESTS: {"description": "Too many wrong passwords"},
}
WRONG_CODE = UNAUTHENTICATED | {
    status.HTTP_400_BAD_REQUEST: {"description": "Code incorrect or used already"},
    status.HTTP_429_TOO_MANY_REQUESTS: {"description": "Too many wrong codes"},
}
NO_SUCH_USER = {status.HTTP_404_NOT_FOUND: {"description": "No such user"}}
STEP_UP = (
    WRONG_PASSWORD
    | WRONG_CODE
    | {
        status.HTTP_403_FORBIDDEN: {"description": "A current code is needed (otp)"},
    }
)


@router.get("/users/me/mfa", responses=UNAUTHENTICATED)
def read_second_factors(user: CurrentUser, session: SessionDep) -> SecondFactors:
    """Whether your authenticator app is on, and how many recovery codes are left."""
    state = factor_state(session, user.id)
    return SecondFactors(
        totp_enabled=state.totp_enabled,
        recovery_codes_left=state.recovery_codes_left,
    )


@router.post(
    "/users/me/mfa/totp",
    responses=WRONG_PASSWORD
    | {status.HTTP_409_CONFLICT: {"description": "An authenticator app is on"}},
)
async def add_authenticator(
    body: PasswordProof, user: CurrentUser, request: Request
) -> TotpEnrolment:
    """Start adding an authenticator app: a new secret, to type in or scan. It is
    on once a code from it is confirmed (POST /users/me/mfa/totp/confirm)."""
    enrolment = await begin_enrolment(user, body.password, client_address(request))
    return TotpEnrolment(
        secret=enrolment.secret,
        otpauth_uri=enrolment.otpauth_uri,
        qr_svg=enrolment.qr_svg,
    )


async def begin_enrolment(
    user: UserPublic, password: str, client: str | None
) -> Enrolment:
    """A new secret for the user's authenticator app, once the password (checked
    and throttled as at sign-in) is right."""
    places = await confirm_password(user, password, client)
    return await _changed(places, lambda session: start_enrolment(session, user.id))


@router.post(
    "/users/me/mfa/totp/confirm",
    responses=WRONG_CODE
    | {status.HTTP_409_CONFLICT: {"description": "No app waiting to be confirmed"}},
)
async def confirm_authenticator(
    body: OtpProof, user: CurrentUser, request: Request, background: BackgroundTasks
) -> RecoveryCodes:
    """Turn the new authenticator app on with a current code from it: from now on,
    signing in needs a code too. The answer holds your recovery codes, shown this
    once: keep them where you keep the password."""
    codes = await enable_authenticator(user, body.otp, client_address(request))
    background.add_task(deliver_mails)
    return RecoveryCodes(recovery_codes=codes)


async def enable_authenticator(
    user: UserPublic, otp: str, client: str | None
) -> list[str]:
    """Confirm the user's waiting app with a code (throttled as a password is):
    its recovery codes. The user is told by mail."""
    places = await to_thread.run_sync(reserve, login_limits(user.username, client))

    def enable(session: Session) -> list[str]:
        codes = confirm_enrolment(session, user.id, otp)
        tell_user(session, user.id, MFA_ENABLED_NOTICE)
        return codes

    codes = await _changed(places, enable)
    log_event("second_factor_added", user_id=user.id, client=client)
    return codes


@router.post(
    "/users/me/mfa/totp/disable",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=STEP_UP,
)
async def remove_authenticator(
    body: TotpRemoval,
    caller: CurrentCaller,
    request: Request,
    background: BackgroundTasks,
) -> Response:
    """Remove your authenticator app and recovery codes: signing in needs the
    password alone again. Needs the password and a current code."""
    await disable_authenticator(
        caller, body.password, body.otp, client_address(request)
    )
    background.add_task(deliver_mails)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def disable_authenticator(
    caller: Caller, password: str, otp: str | None, client: str | None
) -> None:
    """Remove the caller's app, after a recent second factor and the password;
    the user is told by mail."""
    user_id = caller.user.id
    await step_up(caller, otp, client)
    places = await confirm_password(caller.user, password, client)

    def remove(session: Session) -> None:
        remove_factor(session, user_id)
        tell_user(session, user_id, MFA_DISABLED_NOTICE)

    await _changed(places, remove)
    log_event("second_factor_removed", user_id=user_id, client=client)


@router.post("/users/me/mfa/recovery-codes", responses=STEP_UP)
async def make_recovery_codes(
    body: RecoveryCodesRequest,
    caller: CurrentCaller,
    request: Request,
    background: BackgroundTasks,
) -> RecoveryCodes:
    """New recovery codes, shown this once; the old ones stop working. Needs a
    current code."""
    codes = await replace_recovery_codes(caller, body.otp, client_address(request))
    background.add_task(deliver_mails)
    return RecoveryCodes(recovery_codes=codes)


async def replace_recovery_codes(
    caller: Caller, otp: str | None, client: str | None
) -> list[str]:
    """New recovery codes for the caller, after a recent second factor; the user
    is told by mail."""
    user_id = caller.user.id
    await step_up(caller, otp, client)

    def replace(session: Session) -> list[str]:
        codes = new_recovery_codes(session, user_id)
        tell_user(session, user_id, RECOVERY_CODES_NOTICE)
        return codes

    codes = await _changed([], replace)
    log_event("recovery_codes_made", user_id=user_id, client=client)
    return codes


@router.post(
    "/users/me/mfa/verify", status_code=status.HTTP_204_NO_CONTENT, responses=WRONG_CODE
)
async def prove_second_factor(
    body: OtpProof, caller: CurrentCaller, request: Request
) -> Response:
    """Prove a current code for this login: for the next few minutes, the changes
    that need one (ending every other login, say) go through without it."""
    await verify_code(caller, body.otp, client_address(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/users/{user_id:int}/mfa",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=NOT_SUPERUSER | NO_SUCH_USER,
)
def remove_second_factor_of_user(
    user_id: UserId,
    admin: CurrentSuperuser,
    session: SessionDep,
    background: BackgroundTasks,
) -> Response:
    """Superusers: remove a user's authenticator app and recovery codes (lost with
    their phone, say; make sure it is them first). They are told by mail."""
    get_user(session, user_id)
    remove_factor(session, user_id)
    tell_user(session, user_id, MFA_DISABLED_NOTICE)
    session.commit()
    background.add_task(deliver_mails)
    log_event("second_factor_removed", user_id=user_id, by=admin.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _changed(places: list[Place], change: Callable[[Session], T]) -> T:
    """``change``, and the success of the password or code check that allowed it
    (``places``): one transaction."""

    def run(session: Session) -> T:
        done = change(session)
        succeeded(session.connection(), places)
        return done

    return await in_transaction(run)
