"""Browser sessions and the logins in view.

A browser signs in for a session cookie instead of tokens: a random secret, stored
only as its SHA-256 on the login, so that ending the login (sign out, a password
change or reset, deactivation, deletion) ends the cookie on every worker at once.
A new secret is made at every sign-in; the login ends when unused for
SESSION_IDLE_MINUTES, and SESSION_MAX_HOURS after it started.

A request that changes state with the cookie must prove that this service's pages
or an allowed app sent it: an allowed ``Origin`` (or ``Sec-Fetch-Site:
same-origin``), and the session's CSRF token, a digest of its secret that only a
page given the token can send back (the cookie itself is out of reach of scripts).
"""

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from anyio import to_thread
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

{{ imports(auth_models="AuthSession", auth_schemas="LoginInfo, SessionToken", auth_service="BROWSER_LOGIN, CALLER_COLUMNS, Caller, Start, begin_login, check_credentials, has_lapsed, open_login, token_digest", config="settings", database="PreparedRead, utcnow", keys="signing_key", middleware="log_event", mfa_login="SecondFactor, complete_login", tokens="create_access_token", user_models="User", user_schemas="UserPublic") }}

#: Methods that never change state: they need no CSRF token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Where a cookie-authenticated request carries its CSRF token: this header (API),
#: or this form field (pages).
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
#: The lifetime of an access token a browser session asks for (POST
#: /session/token), for calls to other services: short, and without a refresh token.
SESSION_TOKEN_LIFETIME = timedelta(minutes=5)


class CsrfError(Exception):
    """A request that changes state with the session cookie, without proof that an
    allowed page sent it."""


class LoginNotFoundError(Exception):
    """No live login of the caller's has that id."""


@dataclass(frozen=True)
class BrowserSession:
    """A new browser session: the cookie's secret, and the CSRF token its pages
    send back."""

    secret: str
    csrf_token: str


#: The active user of a live browser session, by the hash of its cookie's secret;
#: the lifetimes are checked on what it reads.
COOKIE_CALLER = PreparedRead(
    select(
        *CALLER_COLUMNS,
        AuthSession.id.label("login_id"),
        AuthSession.created_at.label("started_at"),
        AuthSession.last_used_at,
        AuthSession.amr,
    )
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(
        AuthSession.secret_hash == bindparam("secret_hash"),
        AuthSession.revoked_at.is_(None),
        User.is_active.is_(True),
    )
)


def find_cookie_caller(secret: str) -> Caller | None:
    """The active user whose browser session holds ``secret``, if it is live and
    within its lifetimes, read now."""
    row = COOKIE_CALLER.first({"secret_hash": token_digest(secret)})
    if row is None:
        return None
    login_id, started_at = row.pop("login_id"), row.pop("started_at")
    last_used_at, amr = row.pop("last_used_at"), row.pop("amr")
    if has_lapsed(started_at, last_used_at):
        return None
    user = UserPublic.model_construct(**row)
    return Caller(user, login_id, last_used_at, amr, by_cookie=True)


async def sign_in(
    username: str, password: str, client: str | None, user_agent: str | None
) -> BrowserSession:
    """A new browser session for the active user with these credentials, checked
    and throttled as a login is (see check_credentials); MfaRequiredError if the
    user has a second factor."""
    credentials = await check_credentials(username, password, client)
    start = _session_starter(client, user_agent)
    return await to_thread.run_sync(
        begin_login, credentials, client, BROWSER_LOGIN, start
    )


async def sign_in_with_code(
    mfa_token: str, proof: SecondFactor, client: str | None, user_agent: str | None
) -> BrowserSession:
    """The browser session of a sign-in that waited for its second factor (see
    mfa_login.complete_login)."""
    start = _session_starter(client, user_agent)
    return await complete_login(mfa_token, proof, BROWSER_LOGIN, client, start)


def _session_starter(
    client: str | None, user_agent: str | None
) -> Start[BrowserSession]:
    def start(session: Session, user_id: int, amr: str) -> BrowserSession:
        secret = secrets.token_urlsafe(32)
        open_login(session, user_id, client, user_agent, amr, token_digest(secret))
        return BrowserSession(secret, csrf_token(secret))

    return start


def csrf_token(secret: str) -> str:
    """The CSRF token of the session whose cookie holds ``secret``: computed from
    it, so bound to that session and known only to pages the service gave it to."""
    return hmac.new(secret.encode(), b"csrf-token", hashlib.sha256).hexdigest()


def check_csrf(secret: str, token: str | None, headers: Mapping[str, str]) -> None:
    """Raise CsrfError unless the request (its ``headers``) comes from an allowed
    origin with the session's CSRF token."""
    check_origin(headers)
    if not token or not hmac.compare_digest(token, csrf_token(secret)):
        raise CsrfError(f"Missing or invalid CSRF token (send it as {CSRF_HEADER})")


def check_origin(headers: Mapping[str, str]) -> None:
    """Raise CsrfError unless the request (its ``headers``, names in lower case)
    was sent by a page of an allowed origin (PUBLIC_URL's, CORS_ORIGINS): browsers
    say which in ``Origin``, or at least whether it was this one in
    ``Sec-Fetch-Site``."""
    origin = headers.get("origin")
    if origin is not None:
        allowed = origin in settings.allowed_origins
    else:
        allowed = headers.get("sec-fetch-site") == "same-origin"
    if not allowed:
        raise CsrfError("Request not sent from an allowed origin")


def session_token(session: Session, caller: Caller) -> SessionToken:
    """A short-lived access token of the caller's browser session, for calls to
    other services: it names the session's login, so it ends with it."""
    lifetime = min(
        SESSION_TOKEN_LIFETIME, timedelta(minutes=settings.access_token_expire_minutes)
    )
    token = create_access_token(
        signing_key(session), str(caller.user.id), caller.login_id, caller.amr, lifetime
    )
    return SessionToken(access_token=token, expires_in=int(lifetime.total_seconds()))


def list_logins(session: Session, caller: Caller) -> list[LoginInfo]:
    """The caller's live logins, most recently used first."""
    logins = session.scalars(
        select(AuthSession)
        .where(AuthSession.user_id == caller.user.id, AuthSession.revoked_at.is_(None))
        .order_by(AuthSession.last_used_at.desc(), AuthSession.created_at.desc())
    )
    return [
        LoginInfo(
            id=login.id,
            created_at=login.created_at,
            last_used_at=login.last_used_at,
            client=login.client,
            user_agent=login.user_agent,
            current=login.id == caller.login_id,
        )
        for login in logins
        if login.secret_hash is None
        or not has_lapsed(login.created_at, login.last_used_at)
    ]


def end_login(session: Session, user_id: int, login_id: str, reason: str) -> None:
    """End one live login of the user (committed with the caller's transaction);
    raises LoginNotFoundError."""
    ended = session.execute(
        update(AuthSession)
        .where(
            AuthSession.id == login_id,
            AuthSession.user_id == user_id,
            AuthSession.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    ).rowcount
    if not ended:
        raise LoginNotFoundError
    log_event("login_ended", user_id=user_id, login=login_id, reason=reason)
