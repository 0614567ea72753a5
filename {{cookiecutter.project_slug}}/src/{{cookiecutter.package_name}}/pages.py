"""The service's own pages, under /account: sign in, register, forgot and reset a
password, verify an address, and the account (profile, password, logins).

Plain server-rendered forms that work without JavaScript: each POST answers with
a redirect (post-redirect-get) or, when it fails, the same page with the API's
error said next to its field and in a summary. A signed-in form carries the
session's CSRF token; every form is refused from another origin. No page loads a
script, an inline style or anything from another site (Content-Security-Policy).
"""

import json
from collections.abc import Awaitable, Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, BackgroundTasks, FastAPI, Request, status
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.orm import Session

{{ imports(auth_router="RESET_ASKED", auth_schemas="LoginRequest, PasswordResetConfirm, PasswordResetRequest", auth_service="change_password, revoke_all_sessions", config="settings", database="SessionLocal", dependencies="CookieLogin, clear_session_cookie, client_address, cookie_caller, set_session_cookie, user_agent", email_links="confirm_reset, deliver_mails, request_reset, verify_email", errors="answer_to", sessions="CSRF_FIELD, CsrfError, check_csrf, check_origin, csrf_token, end_login, list_logins, sign_in", user_schemas="PasswordChange, UserCreate, UserUpdateMe", users_router="change_account, register_account") }}

#: The pages' templates and static files.
ASSETS = Path(str(files(__name__.partition(".")[0]) / "web"))
TITLE = {{ cookiecutter.project_name | py_string }}
#: Every page: nothing from another site, no inline script or style, no framing,
#: forms posted to this service only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)
#: What a page says after a redirect (``?done=``): fixed texts, never the query's.
NOTICES = {
    "registered": "Your account is ready: sign in.",
    "signed-out": "You are signed out.",
    "reset-asked": RESET_ASKED + ".",
    "password-reset": "Your password is changed: sign in with the new one.",
    "password-changed": "Your password is changed: sign in again everywhere.",
    "email-verified": "Your email address is verified.",
    "profile-saved": "Your changes are saved.",
    "login-ended": "That login is ended.",
    "others-ended": "Every other login is ended.",
}

router = APIRouter(prefix="/account", include_in_schema=False)
templates = Jinja2Templates(directory=ASSETS / "templates")


def add_pages(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(
        "/account/static", StaticFiles(directory=ASSETS / "static"), name="static"
    )


Form = dict[str, str]
Action = Callable[[Form], Awaitable[Response]]


def page(
    request: Request,
    template: str,
    status_code: int = status.HTTP_200_OK,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response:
    response = templates.TemplateResponse(
        request,
        template,
        {
            "service": TITLE,
            "notice": NOTICES.get(request.query_params.get("done", "")),
            "errors": {},
            "form": {},
            **context,
        },
        status_code=status_code,
        headers=headers,
    )
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


def redirect(path: str, done: str | None = None) -> RedirectResponse:
    """See ``path`` next (303: the browser GETs it), saying ``done``."""
    target = f"/account{path}" + (f"?done={done}" if done else "")
    return RedirectResponse(target, status.HTTP_303_SEE_OTHER)


async def read_form(request: Request) -> Form:
    form = await request.form()
    return {name: value for name, value in form.items() if isinstance(value, str)}


async def submit(
    request: Request,
    template: str,
    action: Action,
    context: Callable[[], Awaitable[dict[str, Any]]] | None = None,
) -> Response:
    """Run ``action`` on the posted form; if it fails, the page again, with what
    the API would say about it, next to the field at fault or in the summary.
    Passwords are never sent back, nor anything of a form refused by the CSRF
    checks (another site's: its values are not the user's)."""
    form = await read_form(request)
    kept = {name: value for name, value in form.items() if "password" not in name}
    headers = None
    try:
        return await action(form)
    except ValidationError as error:
        code = status.HTTP_422_UNPROCESSABLE_CONTENT
        errors = {
            str(problem["loc"][0]) if problem["loc"] else "": problem["msg"]
            for problem in error.errors(include_input=False, include_url=False)
        }
    except Exception as error:
        if isinstance(error, CsrfError):
            kept = {}  # another site's form: its values are not the user's
        answer = await answer_to(request, error)
        if answer is None:
            raise
        code, errors = answer.status_code, {"": json.loads(answer.body)["detail"]}
        if "retry-after" in answer.headers:
            headers = {"Retry-After": answer.headers["retry-after"]}
    extra = await context() if context else {}
    return page(request, template, code, headers, form=kept, errors=errors, **extra)


async def in_transaction(work: Callable[[Session], object]) -> None:
    """Run ``work`` in one transaction, on a thread."""

    def run() -> None:
        with SessionLocal.begin() as session:
            work(session)

    await to_thread.run_sync(run)


async def signed_in(request: Request) -> CookieLogin | None:
    """The browser's session, if it has a live one (pages use the cookie only)."""
    secret = request.cookies.get(settings.session_cookie)
    caller = await cookie_caller(secret) if secret else None
    return CookieLogin(caller, secret) if caller and secret else None


def from_this_site(request: Request) -> None:
    """Refuse (CsrfError) a form that a page of another site posted."""
    check_origin(request.headers.get("origin"), request.headers.get("sec-fetch-site"))


def sent_by_the_account_page(request: Request, login: CookieLogin, form: Form) -> None:
    """Refuse (CsrfError) a signed-in form without the session's CSRF token, or
    from another site."""
    headers = request.headers
    check_csrf(
        login.secret,
        form.get(CSRF_FIELD),
        headers.get("origin"),
        headers.get("sec-fetch-site"),
    )


@router.get("/sign-in")
async def sign_in_page(request: Request) -> Response:
    if await signed_in(request):
        return redirect("")
    return page(request, "sign_in.html", reset=bool(settings.password_reset_url))


@router.post("/sign-in")
async def sign_in_form(request: Request) -> Response:
    async def action(form: Form) -> Response:
        from_this_site(request)
        credentials = LoginRequest.model_validate(form)
        started = await sign_in(
            credentials.username,
            credentials.password,
            client_address(request),
            user_agent(request),
        )
        response = redirect("")
        set_session_cookie(response, started.secret)
        return response

    return await submit(request, "sign_in.html", action, _reset_context)


async def _reset_context() -> dict[str, Any]:
    return {"reset": bool(settings.password_reset_url)}


@router.get("/register")
async def register_page(request: Request) -> Response:
    return page(request, "register.html")


@router.post("/register")
async def register_form(request: Request, background: BackgroundTasks) -> Response:
    async def action(form: Form) -> Response:
        from_this_site(request)
        data = UserCreate.model_validate(_given(form))
        with SessionLocal() as session:
            _, mailed = await register_account(session, data, client_address(request))
        if mailed:
            background.add_task(deliver_mails)
        return redirect("/sign-in", "registered")

    return await submit(request, "register.html", action)


def _given(form: Form) -> Form:
    """The form's fields that were filled in (an empty optional field is unset)."""
    return {name: value for name, value in form.items() if value}


@router.get("/forgot-password")
async def forgot_password_page(request: Request) -> Response:
    return page(
        request, "forgot_password.html", reset=bool(settings.password_reset_url)
    )


@router.post("/forgot-password")
async def forgot_password_form(
    request: Request, background: BackgroundTasks
) -> Response:
    async def action(form: Form) -> Response:
        from_this_site(request)
        asked = PasswordResetRequest.model_validate(form)
        await request_reset(asked.email, client_address(request))
        background.add_task(deliver_mails)
        return redirect("/forgot-password", "reset-asked")

    return await submit(request, "forgot_password.html", action, _reset_context)


@router.get("/reset-password")
async def reset_password_page(request: Request, token: str = "") -> Response:
    return page(request, "reset_password.html", form={"token": token})


@router.post("/reset-password")
async def reset_password_form(
    request: Request, background: BackgroundTasks
) -> Response:
    async def action(form: Form) -> Response:
        from_this_site(request)
        reset = PasswordResetConfirm.model_validate(form)
        await confirm_reset(reset.token, reset.new_password, client_address(request))
        background.add_task(deliver_mails)
        return redirect("/sign-in", "password-reset")

    return await submit(request, "reset_password.html", action)


@router.get("/verify-email")
async def verify_email_page(request: Request, token: str = "") -> Response:
    """A button that confirms the address: opening the link changes nothing (mail
    scanners open links too)."""
    return page(request, "verify_email.html", form={"token": token})


@router.post("/verify-email")
async def verify_email_form(request: Request) -> Response:
    async def action(form: Form) -> Response:
        from_this_site(request)
        token = form.get("token", "")
        await to_thread.run_sync(verify_email, token, client_address(request))
        return redirect("", "email-verified")

    return await submit(request, "verify_email.html", action)


@router.get("")
async def account_page(request: Request) -> Response:
    login = await signed_in(request)
    if login is None:
        done = request.query_params.get("done")
        return redirect("/sign-in", done if done in NOTICES else None)
    return page(request, "account.html", **await account_context(login))


async def account_context(login: CookieLogin) -> dict[str, Any]:
    """What the account page shows: the user, their logins, the CSRF token."""
    with SessionLocal() as session:
        logins = await to_thread.run_sync(list_logins, session, login.login)
    return {
        "user": login.user,
        "logins": logins,
        "csrf_token": csrf_token(login.secret),
    }


async def account_form(
    request: Request, action: Callable[..., Awaitable[Response]]
) -> Response:
    """A form of the account page: signed in, with the CSRF token, from this site."""
    login = await signed_in(request)
    if login is None:
        return redirect("/sign-in")

    async def checked(form: Form) -> Response:
        sent_by_the_account_page(request, login, form)
        return await action(login, form)

    return await submit(
        request, "account.html", checked, lambda: account_context(login)
    )


@router.post("/profile")
async def profile_form(request: Request, background: BackgroundTasks) -> Response:
    async def action(login: CookieLogin, form: Form) -> Response:
        user = login.user
        changes: dict[str, str | None] = {}
        if form.get("full_name", "") != (user.full_name or ""):
            changes["full_name"] = form.get("full_name") or None
        if "email" in form and form["email"] != (user.email or ""):
            changes["email"] = form.get("email") or None
            changes["current_password"] = form.get("current_password", "")
        update = UserUpdateMe.model_validate(changes)
        with SessionLocal() as session:
            await change_account(session, user, update, client_address(request))
        if "email" in changes:
            background.add_task(deliver_mails)
        return redirect("", "profile-saved")

    return await account_form(request, action)


@router.post("/password")
async def password_form(request: Request, background: BackgroundTasks) -> Response:
    async def action(login: CookieLogin, form: Form) -> Response:
        change = PasswordChange.model_validate(form)
        await change_password(
            login.user,
            change.current_password,
            change.new_password,
            client_address(request),
        )
        background.add_task(deliver_mails)
        response = redirect("/sign-in", "password-changed")
        clear_session_cookie(response)
        return response

    return await account_form(request, action)


@router.post("/sessions/{login_id}/end")
async def end_login_form(request: Request, login_id: str) -> Response:
    async def action(login: CookieLogin, _form: Form) -> Response:
        user_id = login.user.id
        await in_transaction(
            lambda session: end_login(session, user_id, login_id, "ended_by_user")
        )
        return redirect("", "login-ended")

    return await account_form(request, action)


@router.post("/sessions/end-others")
async def end_other_logins_form(request: Request) -> Response:
    async def action(login: CookieLogin, _form: Form) -> Response:
        user_id, current = login.user.id, login.login.login_id
        await in_transaction(
            lambda session: revoke_all_sessions(
                session, user_id, "others_ended_by_user", keep=current
            )
        )
        return redirect("", "others-ended")

    return await account_form(request, action)


@router.post("/sign-out")
async def sign_out_form(request: Request) -> Response:
    async def action(login: CookieLogin, _form: Form) -> Response:
        user_id, current = login.user.id, login.login.login_id
        await in_transaction(
            lambda session: end_login(session, user_id, current, "signed_out")
        )
        response = redirect("/sign-in", "signed-out")
        clear_session_cookie(response)
        return response

    return await account_form(request, action)
