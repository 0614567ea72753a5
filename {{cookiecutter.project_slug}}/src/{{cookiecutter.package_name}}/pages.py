"""The service's own pages, under /account: sign in, register, forgot and reset a
password, verify an address, and the account (profile, password, logins).

Plain server-rendered forms that work without JavaScript: each POST answers with
a redirect (post-redirect-get) or, when it fails, the same page with the API's
error said next to its field and in a summary. A signed-in form carries the
session's CSRF token; every form is refused from another origin. No page loads a
script, an inline style or anything from another site (Content-Security-Policy).
"""

from collections.abc import Awaitable, Callable
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, BackgroundTasks, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

{{ imports(auth_schemas="LoginRequest, PasswordResetConfirm, PasswordResetRequest, VerificationRequest", auth_service="change_password, revoke_all_sessions", database="SessionLocal, in_transaction", dependencies="CookieLogin, clear_session_cookie, client_address, set_session_cookie, user_agent", email_links="confirm_reset, deliver_mails, request_reset, request_verification, verify_email", page_views="ASSETS, NOTICES, Action, Form, from_this_site, page, redirect, sent_by_the_account_page, signed_in, submit", sessions="csrf_token, end_login, list_logins, sign_in", user_schemas="PasswordChange, UserCreate, UserUpdateMe", users_router="change_account, register_account", mfa_login="step_up") }}

router = APIRouter(prefix="/account", include_in_schema=False)


def add_pages(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(
        "/account/static", StaticFiles(directory=ASSETS / "static"), name="static"
    )


async def public_form(request: Request, template: str, action: Action) -> Response:
    """A form anyone may post (signed out): refused from another site."""

    async def checked(form: Form) -> Response:
        from_this_site(request)
        return await action(form)

    return await submit(request, template, checked)


@router.get("/sign-in")
async def sign_in_page(request: Request) -> Response:
    if await signed_in(request):
        return redirect("")
    return page(request, "sign_in.html")


@router.post("/sign-in")
async def sign_in_form(request: Request) -> Response:
    async def action(form: Form) -> Response:
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

    return await public_form(request, "sign_in.html", action)


@router.get("/register")
async def register_page(request: Request) -> Response:
    return page(request, "register.html")


@router.post("/register")
async def register_form(request: Request, background: BackgroundTasks) -> Response:
    async def action(form: Form) -> Response:
        data = UserCreate.model_validate(_given(form))
        with SessionLocal() as session:
            _, mailed = await register_account(session, data, client_address(request))
        if mailed:
            background.add_task(deliver_mails)
        return redirect("/sign-in", "registered")

    return await public_form(request, "register.html", action)


def _given(form: Form) -> Form:
    """The form's fields that were filled in (an empty optional field is unset)."""
    return {name: value for name, value in form.items() if value}


@router.get("/forgot-password")
async def forgot_password_page(request: Request) -> Response:
    return page(request, "forgot_password.html")


@router.post("/forgot-password")
async def forgot_password_form(
    request: Request, background: BackgroundTasks
) -> Response:
    async def action(form: Form) -> Response:
        asked = PasswordResetRequest.model_validate(form)
        await request_reset(asked.email, client_address(request))
        background.add_task(deliver_mails)
        return redirect("/forgot-password", "reset-asked")

    return await public_form(request, "forgot_password.html", action)


@router.get("/reset-password")
async def reset_password_page(request: Request, token: str = "") -> Response:
    return page(request, "reset_password.html", form={"token": token})


@router.post("/reset-password")
async def reset_password_form(
    request: Request, background: BackgroundTasks
) -> Response:
    async def action(form: Form) -> Response:
        reset = PasswordResetConfirm.model_validate(form)
        await confirm_reset(reset.token, reset.new_password, client_address(request))
        background.add_task(deliver_mails)
        return redirect("/sign-in", "password-reset")

    return await public_form(request, "reset_password.html", action)


@router.get("/verify-email")
async def verify_email_page(request: Request, token: str = "") -> Response:
    """A button that confirms the address: opening the link changes nothing (mail
    scanners open links too)."""
    return page(request, "verify_email.html", form={"token": token})


@router.post("/verify-email")
async def verify_email_form(request: Request) -> Response:
    async def action(form: Form) -> Response:
        token = form.get("token", "")
        await to_thread.run_sync(verify_email, token, client_address(request))
        return redirect("", "email-verified")

    return await public_form(request, "verify_email.html", action)


@router.post("/verify-email/resend")
async def resend_verification_form(
    request: Request, background: BackgroundTasks
) -> Response:
    """A new verification link, for a user signed out (one whom
    REQUIRE_VERIFIED_EMAIL keeps from signing in, say): answered as the API does."""

    async def action(form: Form) -> Response:
        asked = VerificationRequest.model_validate(form)
        await to_thread.run_sync(
            request_verification, asked.email, client_address(request)
        )
        background.add_task(deliver_mails)
        return redirect("/verify-email", "verification-asked")

    return await public_form(request, "verify_email.html", action)


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
    request: Request, action: Callable[[CookieLogin, Form], Awaitable[Response]]
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
            await change_account(session, login.login, update, client_address(request))
        if "email" in changes:
            background.add_task(deliver_mails)
        return redirect("", "profile-saved")

    return await account_form(request, action)


@router.post("/password")
async def password_form(request: Request, background: BackgroundTasks) -> Response:
    async def action(login: CookieLogin, form: Form) -> Response:
        change = PasswordChange.model_validate(form)
        client = client_address(request)
        await step_up(login.login, change.otp, client)
        await change_password(
            login.user, change.current_password, change.new_password, client
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
