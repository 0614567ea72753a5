"""Failed-login throttling per account and per client address.

The state is in the database, so it holds across workers and instances. After
LOGIN_MAX_FAILURES failures within LOGIN_FAILURE_WINDOW_SECONDS, every login
attempt for that account or from that address is refused (429) for a while: one
second, doubling with each further failure, never longer than the window. A
successful login clears the account's record; any record expires a window after
its first failure. LOGIN_MAX_FAILURES=0 turns throttling off.
"""

import math
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

{{ imports(config="settings", models="LoginThrottle, utcnow") }}


class ThrottledError(Exception):
    """Too many recent failures; try again in ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


def _account(username: str) -> str:
    return f"user:{username.lower()[:100]}"


def _keys(username: str, client: str | None) -> list[str]:
    """The records a login attempt counts against: its account and its address."""
    return [_account(username)] + ([f"ip:{client[:100]}"] if client else [])


def check(session: Session, username: str, client: str | None) -> None:
    """Raise ThrottledError while the account or the client address is locked."""
    if not settings.login_max_failures:
        return
    keys = _keys(username, client)
    now = utcnow()
    locked = session.scalars(
        select(LoginThrottle.locked_until).where(
            LoginThrottle.key.in_(keys), LoginThrottle.locked_until > now
        )
    ).all()
    if locked:
        raise ThrottledError(math.ceil((max(locked) - now).total_seconds()))


def record_failure(session: Session, username: str, client: str | None) -> None:
    """Count a failed login against the account and the address, locking those
    over the limit."""
    if not settings.login_max_failures:
        return
    now = utcnow()
    window = timedelta(seconds=settings.login_failure_window_seconds)
    for key in _keys(username, client):
        over = _increment(session, key, now, window) - settings.login_max_failures
        if over >= 0:
            lock = min(window, timedelta(seconds=2 ** min(over, 30)))
            session.execute(
                update(LoginThrottle)
                .where(LoginThrottle.key == key)
                .values(locked_until=now + lock)
            )
        session.commit()


def record_success(session: Session, username: str) -> None:
    """Forget the account's failures (not the address's: a success on one account
    must not reset a client that is guessing at others)."""
    session.execute(
        delete(LoginThrottle).where(LoginThrottle.key == _account(username))
    )
    session.commit()


def _increment(session: Session, key: str, now: datetime, window: timedelta) -> int:
    """Add one failure to ``key`` atomically (safe with concurrent workers)."""
    counted = session.scalar(
        update(LoginThrottle)
        .where(LoginThrottle.key == key, LoginThrottle.window_started_at > now - window)
        .values(failures=LoginThrottle.failures + 1)
        .returning(LoginThrottle.failures)
    )
    if counted is not None:
        return counted
    # No record, or one whose window is over: start a new window.
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))
    session.add(LoginThrottle(key=key, failures=1, window_started_at=now))
    try:
        session.commit()
    except IntegrityError:  # another worker started it first: count on theirs
        session.rollback()
        return _increment(session, key, now, window)
    return 1
