"""Request dependencies: who is calling (by bearer token or session cookie), and
may they."""

import re
from dataclasses import dataclass
from functools import partial
from typing import Annotated

from anyio import to_thread
from fastapi import Depends, Request, Response, status
from fastapi.security import APIKeyCookie, OAuth2PasswordBearer

{{ imports(auth_service="Caller, find_caller, session_lifetime, touch_login", config="settings", database="run_query", keys="reload_keys", sessions="CSRF_HEADER, SAFE_METHODS, check_csrf, find_cookie_caller", tokens="AccessToken, InvalidTokenError, UnknownKeyError, decode_access_token", user_schemas="UserPublic") }}

#: A bearer token, or else the session cookie: every route that needs a caller
#: takes either.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token", auto_error=False)
session_cookie = APIKeyCookie(
    name=settings.session_cookie,
    scheme_name="SessionCookie",
    description="The browser session of POST /session; requests that change "
    f"state also need {CSRF_HEADER}",
    auto_error=False,
)

#: Browsers and systems a user agent string is described by, first match wins.
BROWSERS = (
    ("Edge", re.compile(r"Edg(e|A|iOS)?/")),
    ("Opera", re.compile(r"OPR/")),
    ("Firefox", re.compile(r"Firefox/|FxiOS/")),
    ("Chrome", re.compile(r"Chrome/|CriOS/")),
    ("Safari", re.compile(r"Safari/")),
)
SYSTEMS = (
    ("Android", re.compile(r"Android")),
    ("iOS", re.compile(r"iPhone|iPad")),
    ("Windows", re.compile(r"Windows")),
    ("macOS", re.compile(r"Mac OS X|Macintosh")),
    ("ChromeOS", re.compile(r"CrOS")),
    ("Linux", re.compile(r"Linux")),
)
#: A program's own name, as in "curl/8.5.0" or "python-httpx/0.28".
PRODUCT = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,31}")

#: What routes that need a token (or a superuser's) may answer besides their own.
UNAUTHENTICATED = {
    status.HTTP_401_UNAUTHORIZED: {"description": "Missing, invalid or revoked token"}
}
NOT_SUPERUSER = UNAUTHENTICATED | {
    status.HTTP_403_FORBIDDEN: {"description": "Superuser privileges required"}
}


def client_address(request: Request) -> str | None:
    """The caller's address, as the server saw it (from X-Forwarded-For only when
    the connection came from a proxy in FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client else None


def user_agent(request: Request) -> str | None:
    """A short description of the caller's user agent, for the list of logins:
    "Firefox on Linux", or the program's name ("curl")."""
    given = request.headers.get("user-agent", "")
    browser = next((name for name, sign in BROWSERS if sign.search(given)), None)
    system = next((name for name, sign in SYSTEMS if sign.search(given)), None)
    if browser:
        return f"{browser} on {system}" if system else browser
    product = PRODUCT.match(given)
    return product.group() if product else None


def set_session_cookie(response: Response, secret: str) -> None:
    """Give the browser its session: readable by no script, sent only to this
    host (no Domain), over https (but in development on plain http), and not with
    requests other sites start (SameSite=Lax: links into the pages still work)."""
    response.set_cookie(
        settings.session_cookie,
        secret,
        max_age=int(session_lifetime().total_seconds()),
        path="/",
        secure=settings.cookie_is_secure,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(
        settings.session_cookie,
        path="/",
        secure=settings.cookie_is_secure,
        httponly=True,
        samesite="lax",
    )


class NotAuthenticatedError(Exception):
    """No bearer token or session cookie, or one that is invalid, expired or
    revoked, or whose user is gone."""


class NotSuperuserError(Exception):
    """The caller is not a superuser."""


class SuperuserNeedsSecondFactorError(Exception):
    """REQUIRE_MFA_FOR_SUPERUSERS: the superuser's login was made without a second
    factor (they may have none yet)."""


async def get_caller(
    request: Request,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    cookie: Annotated[str | None, Depends(session_cookie)],
) -> Caller:
    """The active user the bearer token, or else the session cookie, belongs to, if
    its login is live; 401 otherwise (403 for a cookie without CSRF proof on a
    request that changes state). The user is a read-only snapshot, read without
    a session (the fast path of every authenticated request): routes that change
    the user read its row in their own session, by id."""
    caller = None
    if token is not None:
        claims = await read_access_token(token)
        if claims:
            caller = await _touched(
                await run_query(partial(find_caller, claims.user_id, claims.session_id))
            )
    elif cookie is not None:
        if request.method not in SAFE_METHODS:  # before anything is read or written
            check_csrf(cookie, request.headers.get(CSRF_HEADER), request.headers)
        caller = await cookie_caller(cookie)
    if caller is None:
        raise NotAuthenticatedError
    return caller


async def cookie_caller(secret: str) -> Caller | None:
    """The caller whose live browser session holds ``secret``, if any."""
    return await _touched(await run_query(partial(find_cookie_caller, secret)))


async def _touched(caller: Caller | None) -> Caller | None:
    """The caller, whose login's ``last_used_at`` is written if it is due."""
    if caller and caller.used_long_ago:
        await to_thread.run_sync(touch_login, caller.login_id)
    return caller


#: The caller and their login.
CurrentCaller = Annotated[Caller, Depends(get_caller)]


async def get_current_user(
    request: Request,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    cookie: Annotated[str | None, Depends(session_cookie)],
) -> UserPublic:
    """get_caller's user (one dependency fewer to solve on the fast path)."""
    return (await get_caller(request, token, cookie)).user


@dataclass(frozen=True)
class CookieLogin:
    """A caller signed in with the session cookie, and the cookie's secret."""

    login: Caller
    secret: str

    @property
    def user(self) -> UserPublic:
        return self.login.user


async def get_cookie_caller(
    caller: CurrentCaller,
    cookie: Annotated[str | None, Depends(session_cookie)],
) -> CookieLogin:
    """The caller, if signed in with the session cookie (not a bearer token); 401
    otherwise."""
    if not caller.by_cookie or cookie is None:
        raise NotAuthenticatedError
    return CookieLogin(caller, cookie)


#: The caller of a route that is about the browser session itself.
CookieCaller = Annotated[CookieLogin, Depends(get_cookie_caller)]


async def read_access_token(token: str) -> AccessToken | None:
    """What a valid access token says, or None. A token naming a key this worker
    does not know makes it read the keys again (rate-limited): the key may have
    been made since, by another process (rotate-keys)."""
    try:
        return decode_access_token(token)
    except UnknownKeyError:
        if not await run_query(reload_keys):
            return None
    except InvalidTokenError:
        return None
    try:
        return decode_access_token(token)
    except InvalidTokenError:
        return None


#: The caller, read-only: for routes that read who is calling.
CurrentUser = Annotated[UserPublic, Depends(get_current_user)]


async def get_optional_user(
    request: Request,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    cookie: Annotated[str | None, Depends(session_cookie)],
) -> UserPublic | None:
    """The caller if a bearer token or the session cookie was sent (401 if it is
    not valid), else None."""
    if token is None and cookie is None:
        return None
    return (await get_caller(request, token, cookie)).user


#: The caller if signed in: for routes that serve anyone.
OptionalUser = Annotated[UserPublic | None, Depends(get_optional_user)]


async def get_current_superuser(caller: CurrentCaller) -> UserPublic:
    """The current user if a superuser (signed in with a second factor, under
    REQUIRE_MFA_FOR_SUPERUSERS); 403 otherwise."""
    if not caller.user.is_superuser:
        raise NotSuperuserError
    if settings.require_mfa_for_superusers and "mfa" not in caller.amr.split():
        raise SuperuserNeedsSecondFactorError
    return caller.user


CurrentSuperuser = Annotated[UserPublic, Depends(get_current_superuser)]
