"""Throttling of password guesses and registrations, with its state in the database
(so it holds across workers and replicas).

Every attempt takes its place in its records *before* the password is checked, in
one atomic statement per record (an upsert): concurrent attempts, on any worker,
never check more passwords than the limits allow.

A login (and the current-password check of a password change) counts against its
account at its client address (LOGIN_MAX_FAILURES) and against the address across
accounts (LOGIN_MAX_FAILURES_PER_ADDRESS, higher, so that an office behind one
address is not locked out by a few typos); never against the account alone, so
someone else's failures never throttle the owner at another address. A record at
its limit refuses attempts (429) for one second, doubling with each further
failure and never longer than the window; a record expires a window after its
first failure. A successful login clears its account-and-address record and gives
its place in the address's back. Registrations count per address and hour
(REGISTRATION_MAX_PER_HOUR), requests for a mailed link per address, and per email
address at an address, and hour (MAIL_REQUESTS_MAX_PER_HOUR), and mailed tokens
tried per address like wrong passwords. A limit of 0 turns that limit off.
"""

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

{{ imports(auth_models="LoginThrottle", config="settings", database="engine, utcnow") }}

HOUR = timedelta(hours=1)
#: INSERT ... ON CONFLICT: each database has it, each dialect its own construct.
UPSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


class ThrottledError(Exception):
    """Too many recent attempts; try again in ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limit:
    """At most ``maximum`` attempts counted in ``key`` per ``window``; past it, a
    doubling backoff (``backoff``) or a lock to the end of the window. A success
    clears the record if ``cleared_by_success``, else gives its place back."""

    key: str
    maximum: int
    window: timedelta
    backoff: bool = True
    cleared_by_success: bool = False


@dataclass(frozen=True)
class Place:
    """An attempt's place in one record: the count it made, in which window."""

    limit: Limit
    count: int
    window_started_at: datetime


def _address(client: str | None) -> str:
    """The client address as a key part: an IPv6 address is at most 45 characters."""
    return (client or "unknown")[:45]


def login_limits(username: str, client: str | None) -> list[Limit]:
    address = _address(client)
    window = timedelta(seconds=settings.login_failure_window_seconds)
    limits = [
        Limit(
            f"login:{username.lower()[:64]}@{address}",
            settings.login_max_failures,
            window,
            cleared_by_success=True,
        ),
        Limit(f"address:{address}", settings.login_max_failures_per_address, window),
    ]
    return [limit for limit in limits if limit.maximum]


def registration_limits(client: str | None) -> list[Limit]:
    maximum = settings.registration_max_per_hour
    key = f"register:{_address(client)}"
    return [Limit(key, maximum, HOUR, backoff=False)] if maximum else []


def mail_request_limits(email: str, client: str | None) -> list[Limit]:
    """Requests for a mailed link (reset, verification, a new address) per client
    address, and per email address at a client address, in an hour: as logins,
    never per email address alone, or strangers could use up the owner's requests.
    The email address is keyed by its digest: the table holds no address."""
    maximum = settings.mail_requests_max_per_hour
    address = _address(client)
    mailbox = hashlib.sha256(email.encode()).hexdigest()[:32]
    keys = [f"mail:{address}", f"mail-to:{mailbox}@{address}"]
    return [Limit(key, maximum, HOUR, backoff=False) for key in keys] if maximum else []


def token_try_limits(client: str | None) -> list[Limit]:
    """Mailed tokens tried per address, like wrong passwords (a right one gives its
    place back)."""
    window = timedelta(seconds=settings.login_failure_window_seconds)
    maximum = settings.login_max_failures_per_address
    return [Limit(f"token:{_address(client)}", maximum, window)] if maximum else []


def reserve(limits: list[Limit]) -> list[Place]:
    """Take a place in each limit's record, or raise ThrottledError (and take
    none). Committed at once, in one transaction, before the password check."""
    now = utcnow()
    with engine.begin() as connection:
        return [_take(connection, limit, now) for limit in limits]


def give_back(places: list[Place]) -> None:
    """Undo ``places``: the attempt was not a failure (or was never made)."""
    with engine.begin() as connection:
        for place in places:
            _release(connection, place)


def succeeded(connection: Connection, places: list[Place]) -> None:
    """A right password: clear the records a success clears, give the other places
    back (in the caller's transaction, with the login it records)."""
    for place in places:
        if place.limit.cleared_by_success:
            connection.execute(
                delete(LoginThrottle).where(LoginThrottle.key == place.limit.key)
            )
        else:
            _release(connection, place)


def forget_old(now: datetime, batch: int) -> int:
    """Delete at most ``batch`` records whose window and lock are both over."""
    longest = max(timedelta(seconds=settings.login_failure_window_seconds), HOUR)
    expired = (
        select(LoginThrottle.key)
        .where(
            LoginThrottle.window_started_at < now - longest,
            or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until < now),
        )
        .limit(batch)
    )
    with engine.begin() as connection:
        return connection.execute(
            delete(LoginThrottle).where(LoginThrottle.key.in_(expired))
        ).rowcount


def _take(connection: Connection, limit: Limit, now: datetime) -> Place:
    record = LoginThrottle.__table__.c
    current = record.window_started_at > now - limit.window
    new = UPSERTS[connection.dialect.name](LoginThrottle).values(
        key=limit.key, failures=1, window_started_at=now
    )
    # One statement: a new record, or one more attempt in its window (a new window
    # once that is over), taken only while the record is not locked; the row stays
    # locked to this transaction until its lock is set below.
    taken = connection.execute(
        new.on_conflict_do_update(
            index_elements=[record.key],
            set_={
                "failures": case((current, record.failures + 1), else_=1),
                "window_started_at": case(
                    (current, record.window_started_at), else_=now
                ),
            },
            where=or_(record.locked_until.is_(None), record.locked_until <= now),
        ).returning(record.failures, record.window_started_at)
    ).one_or_none()
    if taken is None:
        locked_until = connection.scalar(
            select(record.locked_until).where(record.key == limit.key)
        )
        raise ThrottledError(_seconds(locked_until - now))
    count, started = taken
    if count >= limit.maximum:
        # This attempt is the last one the limit allows: until it turns out right,
        # the next one waits.
        if limit.backoff:
            wait = min(
                limit.window, timedelta(seconds=2 ** min(count - limit.maximum, 30))
            )
        else:
            wait = started + limit.window - now
        connection.execute(
            update(LoginThrottle)
            .where(record.key == limit.key)
            .values(locked_until=now + wait)
        )
    return Place(limit, count, started)


def _release(connection: Connection, place: Place) -> None:
    record = LoginThrottle.__table__.c
    connection.execute(
        update(LoginThrottle)
        .where(
            record.key == place.limit.key,
            record.window_started_at == place.window_started_at,
            record.failures > 0,
        )
        .values(
            failures=record.failures - 1,
            # The lock this attempt set is lifted unless a later attempt came since.
            locked_until=case(
                (record.failures == place.count, None), else_=record.locked_until
            ),
        )
    )


def _seconds(wait: timedelta) -> int:
    return max(1, math.ceil(wait.total_seconds()))
