"""Password reset by email: asking for a link, the mail that carries it, and
setting a new password with it.

Asking costs the same whether or not the address has an account: the request is
stored, and the mail made and sent later by ``deliver_mails``, which every worker
runs in the background. The token in the link is random, stored only as its
SHA-256, works once, expires after PASSWORD_RESET_TOKEN_MINUTES, and dies with
any password change. Using it sets the password and ends every login of the user.
A mail server that is down or answers "try later" is tried again with a growing
wait, for a bounded time; a mail the server accepted is not sent again.
"""

import hashlib
import secrets
from datetime import timedelta

from anyio import to_thread
from sqlalchemy import delete, func, or_, select, update

{{ imports(auth_models="MailRequest, OneTimeToken", auth_service="password_changed", config="settings", database="SessionLocal, utcnow", mail="PermanentMailError, render, send", middleware="log_event", passwords="hash_password", throttle="Place, password_reset_limits, reserve, reset_confirmation_limits, succeeded", user_models="User") }}

PURPOSE = "password_reset"
#: Tries of one mail, and the wait before the first retry (doubled each time, at
#: most MAX_RETRY_WAIT): 8 tries span about an hour.
MAX_ATTEMPTS = 8
FIRST_RETRY_WAIT = timedelta(seconds=30)
MAX_RETRY_WAIT = timedelta(minutes=20)
#: How long a worker may take to send a mail it claimed before another may.
CLAIM = timedelta(minutes=2)


class InvalidResetTokenError(Exception):
    """Unknown, expired or used reset token, or one older than a password change."""


async def request_reset(email: str, client: str | None) -> None:
    """Throttle, then store the request: its mail is made and sent later, and only
    if the address belongs to an active user."""
    if not settings.password_reset_url:
        log_event("password_reset_off", client=client)
        return
    await to_thread.run_sync(_store_request, email, client)


async def confirm_reset(token: str, new_password: str, client: str | None) -> None:
    """Set ``new_password`` for the user ``token`` was mailed to and end all their
    logins; raises InvalidResetTokenError (tries are throttled per address)."""
    places, user_id = await to_thread.run_sync(_attempt, token, client)
    new_hash = await hash_password(new_password)
    await to_thread.run_sync(_reset, token, user_id, new_hash, places)
    log_event("password_reset", user_id=user_id, client=client)


def deliver_mails() -> int:
    """Send the mails that are due, one after the other; how many were handled."""
    handled = 0
    while (request := _claim()) is not None:
        _deliver(request)
        handled += 1
    return handled


def _store_request(email: str, client: str | None) -> None:
    reserve(password_reset_limits(email, client))
    with SessionLocal.begin() as session:
        session.add(MailRequest(purpose=PURPOSE, email=email))


def _attempt(token: str, client: str | None) -> tuple[list[Place], int]:
    places = reserve(reset_confirmation_limits(client))
    with SessionLocal() as session:
        user_id = session.scalar(
            select(OneTimeToken.user_id).where(*_usable(_digest(token)))
        )
    if user_id is None:
        raise InvalidResetTokenError
    return places, user_id


def _reset(token: str, user_id: int, new_hash: str, places: list[Place]) -> None:
    """The token used (once: in one statement), the new hash, every login ended,
    the user's other reset tokens dead: one transaction."""
    with SessionLocal.begin() as session:
        used = session.execute(
            update(OneTimeToken)
            .where(*_usable(_digest(token)))
            .values(used_at=utcnow())
        ).rowcount
        if not used:  # used by a concurrent request since
            raise InvalidResetTokenError
        session.execute(
            update(User).where(User.id == user_id).values(hashed_password=new_hash)
        )
        password_changed(session, user_id)
        succeeded(session.connection(), places)


def _usable(token_hash: str) -> tuple:
    return (
        OneTimeToken.token_hash == token_hash,
        OneTimeToken.purpose == PURPOSE,
        OneTimeToken.used_at.is_(None),
        OneTimeToken.expires_at > utcnow(),
    )


def _claim() -> MailRequest | None:
    """The oldest due request no other worker is sending, claimed for CLAIM."""
    now = utcnow()
    free = or_(MailRequest.claimed_until.is_(None), MailRequest.claimed_until <= now)
    due = (
        select(MailRequest.id)
        .where(MailRequest.next_attempt_at <= now, free)
        .order_by(MailRequest.id)
        .limit(1)
        .scalar_subquery()
    )
    with SessionLocal.begin() as session:
        # The claim re-checks ``free``: of two workers, one gets the row.
        return session.scalars(
            update(MailRequest)
            .where(MailRequest.id == due, free)
            .values(claimed_until=now + CLAIM, attempts=MailRequest.attempts + 1)
            .returning(MailRequest)
        ).one_or_none()


def _deliver(request: MailRequest) -> None:
    with SessionLocal.begin() as session:
        user = session.scalar(
            select(User).where(
                func.lower(User.email) == request.email.lower(),
                User.is_active.is_(True),
            )
        )
        token = mail = None
        if user is not None:
            token = secrets.token_urlsafe(32)
            session.add(
                OneTimeToken(
                    token_hash=_digest(token),
                    user_id=user.id,
                    purpose=PURPOSE,
                    expires_at=utcnow()
                    + timedelta(minutes=settings.password_reset_token_minutes),
                )
            )
            mail = render(
                "password_reset",
                to=user.email or request.email,
                username=user.username,
                minutes=str(settings.password_reset_token_minutes),
                link=(settings.password_reset_url or "").replace("{token}", token),
            )
    if user is None or mail is None:  # no such active user: nothing to send
        _finish(request)
        return
    try:
        send(mail)
    except PermanentMailError as error:
        log_event("mail_failed", purpose=PURPOSE, user_id=user.id, reason=str(error))
        _finish(request)
    except OSError as error:  # smtplib's errors, refused connections, timeouts
        _retry_later(request, user.id, error)
    else:
        log_event("mail_sent", purpose=PURPOSE, user_id=user.id)
        _finish(request)


def _retry_later(request: MailRequest, user_id: int, error: OSError) -> None:
    if request.attempts >= MAX_ATTEMPTS:
        log_event("mail_failed", purpose=PURPOSE, user_id=user_id, reason="gave up")
        _finish(request)
        return
    wait = min(FIRST_RETRY_WAIT * 2 ** (request.attempts - 1), MAX_RETRY_WAIT)
    with SessionLocal.begin() as session:
        session.execute(
            update(MailRequest)
            .where(MailRequest.id == request.id)
            .values(next_attempt_at=utcnow() + wait, claimed_until=None)
        )
    log_event(
        "mail_retry",
        purpose=PURPOSE,
        user_id=user_id,
        attempt=request.attempts,
        error=type(error).__name__,
        retry_in=int(wait.total_seconds()),
    )


def _finish(request: MailRequest) -> None:
    with SessionLocal.begin() as session:
        session.execute(delete(MailRequest).where(MailRequest.id == request.id))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
