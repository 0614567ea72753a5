"""Browser sessions (sign in for a cookie, sign out, a short-lived token for other
services) and the logins in view (list them, end one, end all others)."""

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Path, Request, Response, status

{{ imports(auth_schemas="LoginInfo, LoginRequest, MfaLogin, MfaRequired, Refusal, SessionStarted, SessionToken", mfa_login="SecondFactor, step_up", auth_service="Caller, revoke_all_sessions", database="SessionDep, in_transaction", email_links="deliver_mails", dependencies="NOT_SUPERUSER, UNAUTHENTICATED, CookieCaller, CurrentCaller, CurrentSuperuser, clear_session_cookie, client_address, set_session_cookie, user_agent", sessions="check_origin, csrf_token, end_login, list_logins, session_token, sign_in, sign_in_with_code", user_schemas="UserId", user_service="get_user") }}

router = APIRouter(tags=["sessions"])

SIGN_IN_REFUSED = {
    status.HTTP_401_UNAUTHORIZED: {"description": "Incorrect credentials"},
    status.HTTP_403_FORBIDDEN: {
        "model": MfaRequired | Refusal,
        "description": "A second factor is needed (mfa_required), or not sent "
        "from an allowed origin",
    },
    status.HTTP_429_TOO_MANY_REQUESTS: {"description": "Too many failed logins"},
}
#: What a route that changes state with the cookie may also answer.
COOKIE_REFUSED = UNAUTHENTICATED | {
    status.HTTP_403_FORBIDDEN: {"description": "Missing CSRF token or foreign origin"}
}
NO_SUCH_USER = {status.HTTP_404_NOT_FOUND: {"description": "No such user"}}
NO_SUCH_LOGIN = {status.HTTP_404_NOT_FOUND: {"description": "No such login"}}
LoginId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


@router.post("/session", responses=SIGN_IN_REFUSED)
async def start_browser_session(
    credentials: LoginRequest, request: Request, response: Response
) -> SessionStarted:
    """Sign in for a session cookie (HttpOnly: no script can read it) instead of
    tokens, checked and throttled as POST /login is. Keep the CSRF token in
    memory and send it as X-CSRF-Token with every request that changes state."""
    check_origin(request.headers)
    started = await sign_in(
        credentials.username,
        credentials.password,
        client_address(request),
        user_agent(request),
    )
    set_session_cookie(response, started.secret)
    return SessionStarted(csrf_token=started.csrf_token)


@router.post("/session/mfa", responses=SIGN_IN_REFUSED)
async def complete_browser_session(
    body: MfaLogin, request: Request, response: Response, background: BackgroundTasks
) -> SessionStarted:
    """Complete a sign-in of POST /session that answered ``mfa_required``, as POST
    /login/mfa does, for a session cookie."""
    check_origin(request.headers)
    background.add_task(deliver_mails)
    started = await sign_in_with_code(
        body.mfa_token,
        SecondFactor(otp=body.otp, recovery_code=body.recovery_code),
        client_address(request),
        user_agent(request),
    )
    set_session_cookie(response, started.secret)
    return SessionStarted(csrf_token=started.csrf_token)


@router.get("/session", responses=UNAUTHENTICATED)
async def read_browser_session(caller: CookieCaller) -> SessionStarted:
    """The browser session's CSRF token again, for an app that was reloaded."""
    return SessionStarted(csrf_token=csrf_token(caller.secret))


@router.delete(
    "/session", status_code=status.HTTP_204_NO_CONTENT, responses=COOKIE_REFUSED
)
def end_browser_session(caller: CookieCaller, session: SessionDep) -> Response:
    """Sign out: the login ends (everywhere at once) and the cookie is cleared."""
    end_login(session, caller.user.id, caller.login.login_id, "signed_out")
    session.commit()
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_session_cookie(response)
    return response


@router.post("/session/token", responses=COOKIE_REFUSED)
def token_for_other_services(caller: CookieCaller, session: SessionDep) -> SessionToken:
    """A short-lived access token of this login, for a browser app's calls to other
    services (they verify it with /.well-known/jwks.json); no refresh token: ask
    again. It ends with the browser session."""
    return session_token(session, caller.login)


@router.get("/users/me/sessions", responses=UNAUTHENTICATED)
def read_my_logins(caller: CurrentCaller, session: SessionDep) -> list[LoginInfo]:
    """Your live logins (token and browser logins alike), most recently used
    first; ``current`` marks the one asking."""
    return list_logins(session, caller)


@router.delete(
    "/users/me/sessions/{login_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=COOKIE_REFUSED | NO_SUCH_LOGIN,
)
def end_my_login(
    login_id: LoginId, caller: CurrentCaller, session: SessionDep
) -> Response:
    """End one of your logins: its tokens or cookie stop working at once."""
    end_login(session, caller.user.id, login_id, "ended_by_user")
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/users/me/sessions",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=COOKIE_REFUSED,
)
async def end_my_other_logins(caller: CurrentCaller, request: Request) -> Response:
    """End every login of yours but the one asking. With a second factor on, this
    login must have proved it in the last few minutes (POST /users/me/mfa/verify)."""
    await end_other_logins(caller, None, client_address(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def end_other_logins(caller: Caller, otp: str | None, client: str | None) -> None:
    """End every login of the caller's but theirs, after a recent second factor
    (or a current code, ``otp``)."""
    await step_up(caller, otp, client)
    await in_transaction(
        lambda session: revoke_all_sessions(
            session, caller.user.id, "others_ended_by_user", keep=caller.login_id
        )
    )


@router.delete(
    "/users/{user_id:int}/sessions",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=NOT_SUPERUSER | NO_SUCH_USER,
)
def end_logins_of_user(
    user_id: UserId, admin: CurrentSuperuser, session: SessionDep
) -> Response:
    """Superusers: end every login of a user (a stolen device, say)."""
    get_user(session, user_id)
    revoke_all_sessions(session, user_id, f"ended_by_superuser:{admin.id}")
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
