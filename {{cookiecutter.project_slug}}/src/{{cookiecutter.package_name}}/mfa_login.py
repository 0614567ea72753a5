"""Sign-ins that a second factor completes, and changes that need a recent one.

A right password of a user with an authenticator app gives no login but a ticket
(``mfa_token``: random, stored as its SHA-256, MFA_TICKET_LIFETIME, one use); the
ticket with a current code, or with a recovery code, completes the sign-in into
the kind of login it was made for. Codes are throttled exactly as passwords are
(per account at an address and per address, a place taken before the check), and
a ticket dies after MAX_WRONG_CODES wrong ones: the user is then told by mail,
since someone has their password. Logins made so carry ``amr`` "pwd otp mfa".

Changing the password or the email address, removing the app, making new
recovery codes and ending every other login need a recent second factor: a
current code given with the change, or a login that proved one in the last
STEP_UP_WINDOW (at sign-in, or with a code given since).
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from anyio import to_thread
from sqlalchemy import select, update
from sqlalchemy.orm import Session

{{ imports(auth_models="RECOVERY_CODE_USED_NOTICE, WRONG_CODES_NOTICE, AuthSession, MfaTicket", auth_service="TWO_FACTORS, Caller, Start, tell_user, token_digest", database="SessionLocal, utcnow", middleware="log_event", mfa="WrongCodeError, accept_code, second_factor_on, use_recovery_code", throttle="Place, login_limits, reserve, succeeded", user_models="User") }}

T = TypeVar("T")

#: Wrong codes a sign-in may take before its ticket dies.
MAX_WRONG_CODES = 3
#: How long a second factor proved by a login covers sensitive changes.
STEP_UP_WINDOW = timedelta(minutes=5)


class InvalidMfaTokenError(Exception):
    """An mfa_token that is unknown, expired, used, dead of wrong codes, or for
    another kind of login."""


class InvalidSecondFactorError(Exception):
    """A sign-in's code that is wrong, not current, or used already."""


class StepUpRequiredError(Exception):
    """A change that needs a recent second factor, asked without a code."""


@dataclass(frozen=True)
class SecondFactor:
    """What completes a sign-in: a code from the app, or a recovery code."""

    otp: str | None = None
    recovery_code: str | None = None


async def complete_login(
    mfa_token: str,
    proof: SecondFactor,
    purpose: str,
    client: str | None,
    start: Start[T],
) -> T:
    """The login ``start`` makes for the sign-in waiting on ``mfa_token``, once
    ``proof`` is right. Raises InvalidMfaTokenError, InvalidSecondFactorError or
    ThrottledError."""
    user_id, username = await to_thread.run_sync(_ticket_holder, mfa_token, purpose)
    places = await to_thread.run_sync(reserve, login_limits(username, client))
    return await to_thread.run_sync(
        _complete, mfa_token, purpose, user_id, proof, places, client, start
    )


def _ticket_holder(mfa_token: str, purpose: str) -> tuple[int, str]:
    with SessionLocal() as session:
        holder = session.execute(
            select(User.id, User.username)
            .join(MfaTicket, MfaTicket.user_id == User.id)
            .where(*_usable(mfa_token, purpose), User.is_active.is_(True))
        ).one_or_none()
    if holder is None:
        raise InvalidMfaTokenError
    return holder.id, holder.username


def _complete(
    mfa_token: str,
    purpose: str,
    user_id: int,
    proof: SecondFactor,
    places: list[Place],
    client: str | None,
    start: Start[T],
) -> T:
    """Claim the ticket, check the proof; then the login, or the wrong code on
    record: one transaction."""
    started: T | None = None
    with SessionLocal.begin() as session:
        # Claimed in one statement: of two requests with one ticket, one goes on.
        wrong_codes = session.scalar(
            update(MfaTicket)
            .where(*_usable(mfa_token, purpose))
            .values(used_at=utcnow())
            .returning(MfaTicket.wrong_codes)
        )
        if wrong_codes is None:
            raise InvalidMfaTokenError
        if _proved(session, user_id, proof):
            succeeded(session.connection(), places)
            started = start(session, user_id, TWO_FACTORS)
            if proof.recovery_code is not None:
                tell_user(session, user_id, RECOVERY_CODE_USED_NOTICE)
        elif wrong_codes + 1 < MAX_WRONG_CODES:  # the ticket may be tried again
            session.execute(
                update(MfaTicket)
                .where(MfaTicket.token_hash == token_digest(mfa_token))
                .values(used_at=None, wrong_codes=wrong_codes + 1)
            )
        else:  # dead: someone who knows the password keeps guessing
            tell_user(session, user_id, WRONG_CODES_NOTICE)
    if started is None:
        log_event("second_factor_failed", user_id=user_id, client=client)
        raise InvalidSecondFactorError
    if proof.recovery_code is not None:
        log_event("recovery_code_used", user_id=user_id, client=client)
    log_event("login", user_id=user_id, client=client, amr=TWO_FACTORS)
    return started


def _proved(session: Session, user_id: int, proof: SecondFactor) -> bool:
    if proof.otp is not None:
        return accept_code(session, user_id, proof.otp)
    return use_recovery_code(session, user_id, proof.recovery_code or "")


def _usable(mfa_token: str, purpose: str) -> tuple:
    return (
        MfaTicket.token_hash == token_digest(mfa_token),
        MfaTicket.purpose == purpose,
        MfaTicket.used_at.is_(None),
        MfaTicket.expires_at > utcnow(),
    )


async def step_up(caller: Caller, otp: str | None, client: str | None) -> None:
    """Let a sensitive change go on if the caller has no second factor, or their
    login proved one in the last STEP_UP_WINDOW, or ``otp`` is a current code of
    theirs (checked and throttled as at sign-in: then the login counts as proved
    now). Raises StepUpRequiredError, WrongCodeError or ThrottledError."""
    if not await to_thread.run_sync(_step_up_due, caller):
        return
    if otp is None:
        raise StepUpRequiredError
    await verify_code(caller, otp, client)


async def verify_code(caller: Caller, otp: str, client: str | None) -> None:
    """Check a current code of the caller's (throttled as a password is): their
    login counts as having proved a second factor now. Raises WrongCodeError or
    ThrottledError."""
    places = await to_thread.run_sync(
        reserve, login_limits(caller.user.username, client)
    )
    if not await to_thread.run_sync(_prove, caller, otp, places):
        log_event("second_factor_failed", user_id=caller.user.id, client=client)
        raise WrongCodeError
    log_event("second_factor_proved", user_id=caller.user.id, login=caller.login_id)


def _step_up_due(caller: Caller) -> bool:
    with SessionLocal() as session:
        proved_at = session.scalar(
            select(AuthSession.second_factor_at).where(
                AuthSession.id == caller.login_id
            )
        )
        has_factor = session.scalar(select(second_factor_on(caller.user.id)))
    recent = proved_at is not None and proved_at > utcnow() - STEP_UP_WINDOW
    return bool(has_factor) and not recent


def _prove(caller: Caller, otp: str, places: list[Place]) -> bool:
    with SessionLocal.begin() as session:
        if not accept_code(session, caller.user.id, otp):
            return False
        session.execute(
            update(AuthSession)
            .where(AuthSession.id == caller.login_id)
            .values(second_factor_at=utcnow())
        )
        succeeded(session.connection(), places)
    return True
