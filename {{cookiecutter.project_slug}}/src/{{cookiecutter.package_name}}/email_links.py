"""Mails to users: links (password reset, email address verification) and
notices (an address or a password changed).

Asking for a link costs the same whether or not the address has an account: the
request is stored, and the mail made and sent later by ``deliver_mails`` (after
the answer, and by every worker in the background for retries). The token in a
link is random, stored only as its SHA-256 with its purpose and the address it
went to, works once and expires; a reset token also dies with any password change.
A mail server that is down or answers "try later" is tried again with a growing
wait, for a bounded time; a mail the server accepted is not sent again. A mail
that cannot be made or sent is given up and logged: it never holds up the others.
"""

import secrets
from datetime import timedelta

from anyio import to_thread
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

{{ imports(auth_models="EMAIL_CHANGED_NOTICE, RESET_LINK, USER_NOTICES, VERIFICATION_LINK, MailRequest, OneTimeToken", auth_service="set_password, token_digest", config="settings", database="SessionLocal, utcnow", mail="Mail, PermanentMailError, render, send", middleware="log_event", passwords="hash_password", throttle="Place, mail_request_limits, reserve, succeeded, token_try_limits", user_models="User") }}

#: How long a verification link works.
VERIFICATION_LIFETIME = timedelta(days=2)
#: Tries of one mail, and the wait before the first retry (doubled each time, at
#: most MAX_RETRY_WAIT): 8 tries span about an hour.
MAX_ATTEMPTS = 8
FIRST_RETRY_WAIT = timedelta(seconds=30)
MAX_RETRY_WAIT = timedelta(minutes=20)
#: How long a worker may take to send a mail it claimed before another may.
CLAIM = timedelta(minutes=2)


class InvalidLinkTokenError(Exception):
    """A token that is unknown, expired, used, for another purpose, or (reset) older
    than a password change, or (verification) for another address."""


async def request_reset(email: str, client: str | None) -> None:
    """Throttle, then store the request: its mail is made and sent later, and only
    if the address belongs to an active user."""
    if not settings.password_reset_url:
        log_event("password_reset_off", client=client)
        return
    await to_thread.run_sync(_store_request, RESET_LINK, email, client)


def request_verification(email: str, client: str | None) -> None:
    """Throttle, then store a request for a verification mail to ``email``: sent
    later, if the address is an active user's and still unverified."""
    if settings.email_verification_url:
        _store_request(VERIFICATION_LINK, email, client)


def queue_mail(session: Session, purpose: str, email: str) -> bool:
    """A mail for ``purpose`` to ``email``, sent once ``session`` commits: a link
    where its page is set, a notice wherever mail goes. Whether one was queued."""
    pages = {
        RESET_LINK: settings.password_reset_url,
        VERIFICATION_LINK: settings.email_verification_url,
    }
    wanted = bool(pages.get(purpose, settings.mail_is_sent))
    if wanted:
        session.add(MailRequest(purpose=purpose, email=email))
    return wanted


def address_changed(session: Session, previous: str | None, new: str | None) -> None:
    """The mails of a new address: a link to verify it, and a notice to the one it
    replaces (without a link: that mailbox is no longer the account's)."""
    if new == previous:
        return
    if new:
        queue_mail(session, VERIFICATION_LINK, new)
    if previous:
        queue_mail(session, EMAIL_CHANGED_NOTICE, previous)


async def confirm_reset(token: str, new_password: str, client: str | None) -> None:
    """Set ``new_password`` for the user ``token`` was mailed to and end all their
    logins; raises InvalidLinkTokenError (tries are throttled per address)."""
    places, user_id = await to_thread.run_sync(_attempt, RESET_LINK, token, client)
    new_hash = await hash_password(new_password)
    await to_thread.run_sync(_reset, token, user_id, new_hash, places)
    log_event("password_reset", user_id=user_id, client=client)


def verify_email(token: str, client: str | None) -> None:
    """Mark the address ``token`` was mailed to as verified, if it is still the
    user's; raises InvalidLinkTokenError (tries are throttled per address)."""
    places, user_id = _attempt(VERIFICATION_LINK, token, client)
    with SessionLocal.begin() as session:
        address = session.scalar(
            update(OneTimeToken)
            .where(*_usable(VERIFICATION_LINK, token_digest(token)))
            .values(used_at=utcnow())
            .returning(OneTimeToken.email)
        )
        if address is None:  # used by a concurrent request since
            raise InvalidLinkTokenError
        verified = session.execute(
            update(User)
            .where(User.id == user_id, User.email == address)
            .values(is_verified=True)
        ).rowcount
        if not verified:  # the address changed since
            raise InvalidLinkTokenError
        succeeded(session.connection(), places)
    log_event("email_verified", user_id=user_id, client=client)


def deliver_mails() -> int:
    """Send the mails that are due, one after the other; how many were handled.
    A mail that fails for any reason but the database's is given up, and the next
    one sent."""
    handled = 0
    while (request := _claim()) is not None:
        try:
            _deliver(request)
        except SQLAlchemyError:
            raise  # the database is away: the request is tried again after CLAIM
        except Exception as error:  # one mail never blocks the rest
            _give_up(request, None, type(error).__name__)
        handled += 1
    return handled


def _store_request(purpose: str, email: str, client: str | None) -> None:
    reserve(mail_request_limits(email, client))
    with SessionLocal.begin() as session:
        queue_mail(session, purpose, email)


def _attempt(purpose: str, token: str, client: str | None) -> tuple[list[Place], int]:
    places = reserve(token_try_limits(client))
    with SessionLocal() as session:
        user_id = session.scalar(
            select(OneTimeToken.user_id).where(*_usable(purpose, token_digest(token)))
        )
    if user_id is None:
        raise InvalidLinkTokenError
    return places, user_id


def _reset(token: str, user_id: int, new_hash: str, places: list[Place]) -> None:
    """The token used (once: in one statement), the new hash, every login ended,
    the user's other reset tokens dead: one transaction."""
    with SessionLocal.begin() as session:
        used = session.execute(
            update(OneTimeToken)
            .where(*_usable(RESET_LINK, token_digest(token)))
            .values(used_at=utcnow())
        ).rowcount
        if not used:  # used by a concurrent request since
            raise InvalidLinkTokenError
        set_password(session, user_id, new_hash)
        succeeded(session.connection(), places)


def _usable(purpose: str, token_hash: str) -> tuple:
    return (
        OneTimeToken.token_hash == token_hash,
        OneTimeToken.purpose == purpose,
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
        mail, user_id = _mail_for(session, request)
    if mail is None:  # no one (any longer) to send it to
        _finish(request)
        return
    try:
        send(mail)
    except PermanentMailError as error:
        _give_up(request, user_id, str(error))
    except OSError as error:  # smtplib's errors, refused connections, timeouts
        _retry_later(request, user_id, error)
    else:
        log_event("mail_sent", purpose=request.purpose, user_id=user_id)
        _finish(request)


def _mail_for(session: Session, request: MailRequest) -> tuple[Mail | None, int | None]:
    """The mail ``request`` asks for, if it is still wanted, and whose it is."""
    if request.purpose == EMAIL_CHANGED_NOTICE:  # no longer any user's address
        return render(request.purpose, to=request.email, address=request.email), None
    user = session.scalar(select(User).where(User.email == request.email))
    if user is None:
        return None, None
    if request.purpose in USER_NOTICES:
        mail = render(request.purpose, to=request.email, username=user.username)
        return mail, user.id
    # A link goes to active users only; a verification link to unverified ones.
    verified = request.purpose == VERIFICATION_LINK and user.is_verified
    if not user.is_active or verified:
        return None, user.id
    return _mail_with_a_new_token(session, request.purpose, user), user.id


def _mail_with_a_new_token(session: Session, purpose: str, user: User) -> Mail:
    """The mail for ``purpose``, with a link whose token is stored here."""
    token = secrets.token_urlsafe(32)
    if purpose == RESET_LINK:
        lifetime = timedelta(minutes=settings.password_reset_token_minutes)
        url = settings.password_reset_url or ""
    else:
        lifetime, url = VERIFICATION_LIFETIME, settings.email_verification_url or ""
    address = user.email or ""
    session.add(
        OneTimeToken(
            token_hash=token_digest(token),
            user_id=user.id,
            purpose=purpose,
            email=address,
            expires_at=utcnow() + lifetime,
        )
    )
    return render(
        purpose,
        to=address,
        username=user.username,
        minutes=str(int(lifetime.total_seconds() // 60)),
        link=url.replace("{token}", token),
    )


def _retry_later(request: MailRequest, user_id: int | None, error: OSError) -> None:
    if request.attempts >= MAX_ATTEMPTS:
        _give_up(request, user_id, f"{type(error).__name__}, {MAX_ATTEMPTS} tries")
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
        purpose=request.purpose,
        user_id=user_id,
        attempt=request.attempts,
        error=type(error).__name__,
        retry_in=int(wait.total_seconds()),
    )


def _give_up(request: MailRequest, user_id: int | None, reason: str) -> None:
    log_event("mail_failed", purpose=request.purpose, user_id=user_id, reason=reason)
    _finish(request)


def _finish(request: MailRequest) -> None:
    with SessionLocal.begin() as session:
        session.execute(delete(MailRequest).where(MailRequest.id == request.id))
