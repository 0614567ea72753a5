"""Checking credentials; issuing, rotating and revoking tokens; purging old ones.

Each login starts a session: a family of refresh tokens, each exchangeable once
for a new pair. Refresh tokens are random strings stored only as their SHA-256.
Presenting one that was already exchanged means it was copied, so the whole
session is revoked; access tokens name their session, so they stop working too.

A user with a second factor on gets no login for a right password, but a ticket
that the second factor completes (see mfa_login). Every login records how the
user signed in (RFC 8176 methods, which its access tokens carry in ``amr``).

Password checks are slow on purpose: the functions that make them are async and
wait for a hasher without holding a thread; their database work runs on the
threadpool in short transactions, none of them open during a hash.
"""

import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from anyio import to_thread
from sqlalchemy import and_, bindparam, delete, exists, or_, select, update
from sqlalchemy.orm import Session

{{ imports(auth_models="PASSWORD_CHANGED_NOTICE, RESET_LINK, AuthSession, MailRequest, MfaTicket, OneTimeToken, RefreshToken", auth_schemas="Token", config="settings", database="PreparedRead, SessionLocal, utcnow", keys="forget_retired_keys, signing_key", middleware="log_event", mfa="second_factor_on", passwords="HashingBusyError, hash_password, verify_password", throttle="Place, give_back, login_limits, reserve, succeeded, forget_old", tokens="create_access_token", user_models="User", user_schemas="UserPublic", user_service="get_user_by_username") }}

#: Rows of each kind deleted per purge transaction.
PURGE_BATCH = 1000
#: How stale a login's ``last_used_at`` may get before a request writes it again.
LAST_USED_PRECISION = timedelta(minutes=1)
#: How a login was made (``amr``, RFC 8176): a password alone, or a password and
#: a code (from an authenticator app or a recovery code).
ONE_FACTOR = "pwd"
TWO_FACTORS = "pwd otp mfa"
#: What a sign-in waiting for its second factor becomes: tokens, or a browser
#: session (MfaTicket.purpose).
TOKEN_LOGIN = "tokens"  # noqa: S105 (a purpose)
BROWSER_LOGIN = "session"
#: How long a sign-in waits for its second factor.
MFA_TICKET_LIFETIME = timedelta(minutes=5)

T = TypeVar("T")


class InvalidCredentialsError(Exception):
    """Unknown user, wrong password or inactive account: one answer for all."""


class InvalidRefreshTokenError(Exception):
    """Unknown, expired, used or revoked refresh token."""


class EmailNotVerifiedError(Exception):
    """The password is right, but REQUIRE_VERIFIED_EMAIL wants a verified address."""


class WrongPasswordError(Exception):
    """The current password given to change it is not the user's."""


class MfaRequiredError(Exception):
    """The password is right, and the user has a second factor: no login yet, but
    ``mfa_token``, the ticket that the second factor completes."""

    def __init__(self, mfa_token: str) -> None:
        super().__init__("a second factor is needed")
        self.mfa_token = mfa_token


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling (a read-only snapshot of the user), through which login."""

    user: UserPublic
    login_id: str
    last_used_at: datetime | None
    amr: str = ONE_FACTOR
    by_cookie: bool = False

    @property
    def used_long_ago(self) -> bool:
        """Whether the login's ``last_used_at`` is due to be written again."""
        used = self.last_used_at
        return used is None or used < utcnow() - LAST_USED_PRECISION


#: The columns of the users table that UserPublic shows (a field of UserPublic
#: that is not a column needs a default).
CALLER_COLUMNS = [c for c in User.__table__.c if c.name in UserPublic.model_fields]

#: The active user of a login that is not revoked: the one query behind every
#: authenticated request, a fraction of an ORM session's cost.
CALLER = PreparedRead(
    select(*CALLER_COLUMNS, AuthSession.last_used_at, AuthSession.amr)
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(
        User.id == bindparam("user_id"),
        User.is_active.is_(True),
        AuthSession.id == bindparam("session_id"),
        AuthSession.revoked_at.is_(None),
    )
)


def find_caller(user_id: int, session_id: str) -> Caller | None:
    """The active user whose login ``session_id`` is live, read now (so revocation
    and deactivation take effect at once, whichever worker served them)."""
    row = CALLER.first({"user_id": user_id, "session_id": session_id})
    if row is None:
        return None
    last_used_at, amr = row.pop("last_used_at"), row.pop("amr")
    # Values straight from our own database need no validation.
    return Caller(UserPublic.model_construct(**row), session_id, last_used_at, amr)


def touch_login(login_id: str) -> None:
    """Record that the login was used now (callers do it at most once per
    LAST_USED_PRECISION, so that requests do not all write)."""
    with SessionLocal.begin() as session:
        session.execute(
            update(AuthSession)
            .where(AuthSession.id == login_id)
            .values(last_used_at=utcnow())
        )


@dataclass(frozen=True)
class Credentials:
    """A sign-in whose password was right: whose, the upgraded hash to store (if
    the stored one is outdated), the throttle places to clear, and whether a
    second factor must complete it."""

    user_id: int
    new_hash: str | None
    places: list[Place]
    second_factor_due: bool = False


async def check_credentials(
    username: str, password: str, client: str | None
) -> Credentials:
    """The credentials of an active user, checked.

    Takes the attempt's place in the throttle first (ThrottledError when there is
    none) and costs one password check whether or not the user exists; raises
    InvalidCredentialsError, or EmailNotVerifiedError (REQUIRE_VERIFIED_EMAIL;
    superusers are exempt).
    """
    places, user, due = await to_thread.run_sync(_attempt_login, username, client)
    valid, new_hash = await _checked(
        places, password, user.hashed_password if user else None
    )
    if user is None or not valid or not user.is_active:
        log_event("login_failed", user_id=user.id if user else None, client=client)
        raise InvalidCredentialsError
    if not may_have_tokens(user):
        await to_thread.run_sync(give_back, places)  # the password was right
        log_event("login_unverified", user_id=user.id, client=client)
        raise EmailNotVerifiedError
    return Credentials(user.id, new_hash, places, due)


#: What makes a login, in the transaction that records the sign-in: given the
#: user's id and how they signed in (``amr``).
Start = Callable[[Session, int, str], T]


def begin_login(
    credentials: Credentials, client: str | None, purpose: str, start: Start[T]
) -> T:
    """The login ``start`` makes, an upgraded hash and the throttle's success: one
    transaction. With a second factor on, a ticket for the login (``purpose``)
    instead: MfaRequiredError."""
    with SessionLocal.begin() as session:
        if credentials.new_hash is not None:
            session.execute(
                update(User)
                .where(User.id == credentials.user_id)
                .values(hashed_password=credentials.new_hash)
            )
        if credentials.second_factor_due:
            mfa_token = open_ticket(session, credentials.user_id, purpose)
        else:
            succeeded(session.connection(), credentials.places)
            started = start(session, credentials.user_id, ONE_FACTOR)
    if credentials.second_factor_due:
        # The password was right, but the code is yet to come: the account's
        # failures stay on record until it does.
        give_back(credentials.places)
        log_event("second_factor_asked", user_id=credentials.user_id, client=client)
        raise MfaRequiredError(mfa_token)
    log_event("login", user_id=credentials.user_id, client=client, amr=ONE_FACTOR)
    return started


def open_ticket(session: Session, user_id: int, purpose: str) -> str:
    """A sign-in of the user waiting for a second factor: the ``mfa_token`` that
    completes it into the kind of login ``purpose`` names."""
    mfa_token = secrets.token_urlsafe(32)
    session.add(
        MfaTicket(
            token_hash=token_digest(mfa_token),
            user_id=user_id,
            purpose=purpose,
            expires_at=utcnow() + MFA_TICKET_LIFETIME,
        )
    )
    return mfa_token


def token_starter(client: str | None, user_agent: str | None) -> Start[Token]:
    """What makes a login held by tokens, for a client."""

    def start(session: Session, user_id: int, amr: str) -> Token:
        return start_session(session, user_id, client, user_agent, amr)

    return start


async def log_in(
    username: str, password: str, client: str | None, user_agent: str | None = None
) -> Token:
    """A new login, with tokens, for the active user with these credentials (see
    check_credentials); an outdated password hash is upgraded. MfaRequiredError
    if the user has a second factor."""
    credentials = await check_credentials(username, password, client)
    start = token_starter(client, user_agent)
    return await to_thread.run_sync(
        begin_login, credentials, client, TOKEN_LOGIN, start
    )


def may_have_tokens(user: User) -> bool:
    """Whether the user's logins may get tokens: with REQUIRE_VERIFIED_EMAIL, only
    with a verified address (superusers are exempt)."""
    return not settings.require_verified_email or user.is_verified or user.is_superuser


async def confirm_password(
    user: UserPublic, password: str, client: str | None
) -> list[Place]:
    """Check the caller's current password before a sensitive change, throttled
    like a login; raises WrongPasswordError. The places are the caller's to clear
    (``succeeded``) in the transaction that makes the change."""
    places, stored = await to_thread.run_sync(_attempt_password_check, user, client)
    valid, _ = await _checked(places, password, stored)
    if not valid:
        log_event("password_check_failed", user_id=user.id, client=client)
        raise WrongPasswordError
    return places


async def change_password(
    user: UserPublic, current: str, new: str, client: str | None
) -> None:
    """Set a new password if ``current`` is right (throttled like a login), and end
    every login of the user; raises WrongPasswordError."""
    places = await confirm_password(user, current, client)
    new_hash = await hash_password(new)
    await to_thread.run_sync(_store_password, user.id, new_hash, places)
    log_event("password_changed", user_id=user.id, client=client)


async def _checked(
    places: list[Place], password: str, hashed: str | None
) -> tuple[bool, str | None]:
    """verify_password, giving the throttle places back if no hasher took it."""
    try:
        return await verify_password(password, hashed)
    except HashingBusyError:
        await to_thread.run_sync(give_back, places)
        raise


def _attempt_login(
    username: str, client: str | None
) -> tuple[list[Place], User | None, bool]:
    """The attempt's places in the throttle, then the user (read, not kept open)
    and whether they have a second factor on."""
    places = reserve(login_limits(username, client))
    with SessionLocal() as session:
        user = get_user_by_username(session, username)
        due = user is not None and bool(
            session.scalar(select(second_factor_on(user.id)))
        )
        return places, user, due


def _attempt_password_check(
    user: UserPublic, client: str | None
) -> tuple[list[Place], str | None]:
    places = reserve(login_limits(user.username, client))
    with SessionLocal() as session:
        stored = select(User.hashed_password).where(User.id == user.id)
        return places, session.scalar(stored)


def _store_password(user_id: int, new_hash: str, places: list[Place]) -> None:
    """The new hash, the end of every login and the throttle's success: one
    transaction."""
    with SessionLocal.begin() as session:
        set_password(session, user_id, new_hash)
        succeeded(session.connection(), places)


def start_session(
    session: Session,
    user_id: int,
    client: str | None = None,
    user_agent: str | None = None,
    amr: str = ONE_FACTOR,
) -> Token:
    """A new login for the user, signed in as ``amr`` says: its first access and
    refresh tokens."""
    auth_session = open_login(session, user_id, client, user_agent, amr)
    return _issue(session, user_id, auth_session)


def open_login(
    session: Session,
    user_id: int,
    client: str | None,
    user_agent: str | None,
    amr: str,
    secret_hash: str | None = None,
) -> AuthSession:
    """A new login for the user, signed in as ``amr`` says (held by tokens, or by
    a cookie whose secret hashes to ``secret_hash``). The user's oldest live
    logins end beyond MAX_SESSIONS_PER_USER."""
    oldest = (
        select(AuthSession.id)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .order_by(AuthSession.created_at.desc(), AuthSession.id)
        .offset(settings.max_sessions_per_user - 1)
    )
    ended = session.execute(
        update(AuthSession)
        .where(AuthSession.id.in_(oldest))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if ended:
        log_event("logins_ended", user_id=user_id, count=ended, reason="too_many")
    now = utcnow()
    auth_session = AuthSession(
        id=uuid.uuid4().hex,
        user_id=user_id,
        secret_hash=secret_hash,
        last_used_at=now,
        client=client,
        user_agent=user_agent,
        amr=amr,
        second_factor_at=now if "mfa" in amr.split() else None,
    )
    session.add(auth_session)
    session.flush()
    return auth_session


def refresh(session: Session, refresh_token: str) -> Token:
    """Exchange a refresh token for a new pair (the caller commits); raises
    InvalidRefreshTokenError (after committing the end of the login, if the token
    was used before)."""
    found = session.execute(
        select(RefreshToken, AuthSession, User)
        .join(AuthSession, RefreshToken.session_id == AuthSession.id)
        .join(User, AuthSession.user_id == User.id)
        .where(RefreshToken.token_hash == token_digest(refresh_token))
    ).one_or_none()
    if found is None:
        raise InvalidRefreshTokenError
    token, auth_session, user = found
    now = utcnow()
    if auth_session.revoked_at or token.expires_at <= now or not user.is_active:
        raise InvalidRefreshTokenError
    if not may_have_tokens(user):  # the address changed, or the rule came since
        raise EmailNotVerifiedError
    # Mark it used in one statement, so two concurrent uses cannot both succeed.
    claimed = session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.token_hash == token.token_hash, RefreshToken.used_at.is_(None)
        )
        .values(used_at=now)
    ).rowcount
    if not claimed:
        # Reuse: someone else holds a copy. The whole login ends, and stays ended
        # although this request fails: committed here.
        auth_session.revoked_at = now
        session.commit()
        log_event("refresh_token_reused", user_id=user.id, login=auth_session.id)
        raise InvalidRefreshTokenError
    auth_session.last_used_at = now
    return _issue(session, user.id, auth_session)


def logout(session: Session, refresh_token: str) -> None:
    """Revoke the login ``refresh_token`` belongs to (unknown tokens are ignored;
    the caller commits)."""
    session_id = select(RefreshToken.session_id).where(
        RefreshToken.token_hash == token_digest(refresh_token)
    )
    ended = session.execute(
        update(AuthSession)
        .where(AuthSession.id.in_(session_id), AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .returning(AuthSession.user_id, AuthSession.id)
    ).one_or_none()
    if ended is not None:
        log_event("logout", user_id=ended.user_id, login=ended.id)


def revoke_all_sessions(
    session: Session, user_id: int, reason: str, keep: str | None = None
) -> int:
    """End every login of the user (but ``keep``): all their tokens and session
    cookies stop working (committed with the caller's transaction). How many
    ended; logged with ``reason``."""
    live = [AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)]
    if keep is not None:
        live.append(AuthSession.id != keep)
    ended = session.execute(
        update(AuthSession)
        .where(*live)
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if ended:
        log_event("logins_ended", user_id=user_id, count=ended, reason=reason)
    return ended


def set_password(session: Session, user_id: int, new_hash: str) -> None:
    """Store the user's new password hash. A new password voids what the old one
    gave: every login of the user ends, and their unused password reset tokens
    stop working. Their address is told (a notice, without a link)."""
    session.execute(
        update(User).where(User.id == user_id).values(hashed_password=new_hash)
    )
    tell_user(session, user_id, PASSWORD_CHANGED_NOTICE)
    revoke_all_sessions(session, user_id, "password_changed")
    session.execute(
        update(OneTimeToken)
        .where(
            OneTimeToken.user_id == user_id,
            OneTimeToken.purpose == RESET_LINK,
            OneTimeToken.used_at.is_(None),
        )
        .values(used_at=utcnow())
    )


def tell_user(session: Session, user_id: int, notice: str) -> None:
    """Mail ``notice`` to the user's address, if they have one and mail is sent
    (once ``session`` commits)."""
    email = session.scalar(select(User.email).where(User.id == user_id))
    if email and settings.mail_is_sent:
        session.add(MailRequest(purpose=notice, email=email))


def purge(now: datetime | None = None, batch: int = PURGE_BATCH) -> int:
    """Delete at most ``batch`` rows of each kind that can no longer matter:
    expired refresh tokens, logins that are revoked or have no refresh token
    left (with their tokens), throttle records past their window, password reset
    tokens and sign-ins waiting for a second factor that are used or expired, and
    signing keys retired longer ago than any
    token lives. Safe from
    several workers at once. Returns how many rows went."""
    now = now or utcnow()
    expired_tokens = (
        select(RefreshToken.token_hash)
        .where(RefreshToken.expires_at <= now)
        .limit(batch)
    )
    started_by, used_by = lapse_cutoffs(now)
    dead_logins = (
        select(AuthSession.id)
        .where(
            or_(
                AuthSession.revoked_at.is_not(None),
                and_(  # held by tokens, none left
                    AuthSession.secret_hash.is_(None),
                    ~exists().where(RefreshToken.session_id == AuthSession.id),
                ),
                and_(  # held by a cookie, past a lifetime
                    AuthSession.secret_hash.is_not(None),
                    or_(
                        AuthSession.created_at <= started_by,
                        AuthSession.last_used_at <= used_by,
                    ),
                ),
            )
        )
        .limit(batch)
    )
    with SessionLocal.begin() as session:
        deleted = session.execute(
            delete(RefreshToken).where(RefreshToken.token_hash.in_(expired_tokens))
        ).rowcount
        deleted += session.execute(
            delete(AuthSession).where(AuthSession.id.in_(dead_logins))
        ).rowcount
        deleted += session.execute(
            delete(OneTimeToken).where(
                OneTimeToken.token_hash.in_(
                    select(OneTimeToken.token_hash)
                    .where(
                        or_(
                            OneTimeToken.expires_at <= now,
                            OneTimeToken.used_at.is_not(None),
                        )
                    )
                    .limit(batch)
                )
            )
        ).rowcount
        deleted += session.execute(
            delete(MfaTicket).where(
                MfaTicket.token_hash.in_(
                    select(MfaTicket.token_hash)
                    .where(
                        or_(MfaTicket.expires_at <= now, MfaTicket.used_at.is_not(None))
                    )
                    .limit(batch)
                )
            )
        ).rowcount
        deleted += forget_retired_keys(session)
    return deleted + forget_old(now, batch)


def _issue(session: Session, user_id: int, auth_session: AuthSession) -> Token:
    refresh_token = secrets.token_urlsafe(32)
    lifetime = timedelta(days=settings.refresh_token_expire_days)
    session.add(
        RefreshToken(
            token_hash=token_digest(refresh_token),
            session_id=auth_session.id,
            expires_at=utcnow() + lifetime,
        )
    )
    session.flush()
    return Token(
        access_token=create_access_token(
            signing_key(session), str(user_id), auth_session.id, auth_session.amr
        ),
        expires_in=settings.access_token_expire_minutes * 60,
        refresh_token=refresh_token,
        refresh_expires_in=int(lifetime.total_seconds()),
    )


def session_lifetime() -> timedelta:
    """How long a browser session lasts at most, whatever its use."""
    return timedelta(hours=settings.session_max_hours)


def lapse_cutoffs(now: datetime) -> tuple[datetime, datetime]:
    """A browser session that started at or before the first, or was last used
    at or before the second, has lapsed (SESSION_MAX_HOURS, SESSION_IDLE_MINUTES)."""
    idle = timedelta(minutes=settings.session_idle_minutes)
    return now - session_lifetime(), now - idle


def has_lapsed(started_at: datetime, last_used_at: datetime | None) -> bool:
    """Whether a browser session is past one of its lifetimes now."""
    started_by, used_by = lapse_cutoffs(utcnow())
    return started_at <= started_by or (
        last_used_at is not None and last_used_at <= used_by
    )


def token_digest(token: str) -> str:
    """How a token given to a client is stored: its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()
