"""The service's own pages, under /account: sign in (with a code from an
authenticator app, or a recovery code, when the account has one), register, forgot
and reset a password, verify an address, and the account (profile, password,
logins, two-step sign-in).

Plain server-rendered forms that work without JavaScript: each POST answers with
a redirect (post-redirect-get), or a page showing what must never be in a link (a
sign-in's ticket, a new secret, recovery codes), or, when it fails, the same page
with the API's error said next to its field and in a summary. A signed-in form
carries the session's CSRF token; every form is refused from another origin. No
page loads a script, an inline style or anything from another site
(Content-Security-Policy), and none is cached.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, BackgroundTasks, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

{{ imports(auth_schemas="LoginRequest, MfaLogin, PasswordResetConfirm, PasswordResetRequest, VerificationRequest", auth_service="MfaRequiredError", database="SessionLocal, in_transaction", dependencies="CookieLogin, NotSuperuserError, SuperuserNeedsSecondFactorError, clear_session_cookie, client_address, get_current_superuser, set_session_cookie, user_agent", email_links="confirm_reset, deliver_mails, request_reset, request_verification, verify_email", mfa="factor_state", mfa_login="SecondFactor", mfa_router="begin_enrolment, disable_authenticator, enable_authenticator, replace_recovery_codes", mfa_schemas="OtpProof, PasswordProof, RecoveryCodesRequest, TotpRemoval", page_views="ASSETS, NOTICES, Action, Form, from_this_site, page, redirect, sent_by_the_account_page, signed_in, submit", sessions="csrf_token, end_login, list_logins, sign_in, sign_in_with_code", sessions_router="end_other_logins", user_schemas="PasswordChange, UserCreate, UserUpdateMe", users_router="change_account, change_own_password, register_account") }}

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
        try:
            started = await sign_in(
                credentials.username,
                credentials.password,
                client_address(request),
                user_agent(request),
            )
        except MfaRequiredError as needed:  # the code page next, with the ticket
            ticket = {"mfa_token": needed.mfa_token}
            return page(request, "sign_in_code.html", form=ticket)
        return signed_in_as(started.secret)

    return await public_form(request, "sign_in.html", action)


@router.post("/sign-in/code")
async def sign_in_code_form(request: Request, background: BackgroundTasks) -> Response:
    """The second step of a sign-in: a code from the app, or a recovery code, with
    the ticket the password gave (kept in the form for another try). The mails it
    may cause (a recovery code used, a ticket dead of wrong codes) go out after."""

    async def action(form: Form) -> Response:
        background.add_task(deliver_mails)
        given = MfaLogin.model_validate(_given(form))
        proof = SecondFactor(otp=given.otp, recovery_code=given.recovery_code)
        started = await sign_in_with_code(
            given.mfa_token, proof, client_address(request), user_agent(request)
        )
        return signed_in_as(started.secret)

    return await public_form(request, "sign_in_code.html", action)


def signed_in_as(secret: str) -> Response:
    """The account page next, in the browser session whose cookie holds ``secret``."""
    response = redirect("")
    set_session_cookie(response, secret)
    return response


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


def _code(form: Form) -> str | None:
    """The code from the authenticator app typed in the form, if any (a change
    asks for one only with the app on, and not just after one was given)."""
    return form.get("otp") or None


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
    """What the account page shows: the user, their logins, their second factor,
    the CSRF token."""

    def read() -> dict[str, Any]:
        with SessionLocal() as session:
            return {
                "logins": list_logins(session, login.login),
                "factors": factor_state(session, login.user.id),
            }

    return {
        "user": login.user,
        **await to_thread.run_sync(read),
        "superuser_needs_factor": await _superuser_needs_factor(login),
        "csrf_token": csrf_token(login.secret),
    }


async def _superuser_needs_factor(login: CookieLogin) -> bool:
    """Whether this login is a superuser's that has no superuser powers for want of
    a second factor (REQUIRE_MFA_FOR_SUPERUSERS)."""
    try:
        await get_current_superuser(login.login)
    except SuperuserNeedsSecondFactorError:
        return True
    except NotSuperuserError:
        pass
    return False


async def account_form(
    request: Request,
    action: Callable[[CookieLogin, Form], Awaitable[Response]],
    template: str = "account.html",
) -> Response:
    """A form of the account page (or of ``template``, a step after it): signed in,
    with the CSRF token, from this site."""
    login = await signed_in(request)
    if login is None:
        return redirect("/sign-in")

    async def checked(form: Form) -> Response:
        sent_by_the_account_page(request, login, form)
        return await action(login, form)

    return await submit(request, template, checked, lambda: account_context(login))


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
            if code := _code(form):
                changes["otp"] = code
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
        change = PasswordChange.model_validate(form | {"otp": _code(form)})
        await change_own_password(login.login, change, client_address(request))
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
    async def action(login: CookieLogin, form: Form) -> Response:
        await end_other_logins(login.login, _code(form), client_address(request))
        return redirect("", "others-ended")

    return await account_form(request, action)


@router.post("/mfa/totp")
async def add_authenticator_form(request: Request) -> Response:
    """Start adding an authenticator app: its new secret, to scan or type in."""

    async def action(login: CookieLogin, form: Form) -> Response:
        proof = PasswordProof.model_validate(form)
        enrolment = await begin_enrolment(
            login.user, proof.password, client_address(request)
        )
        return page(
            request,
            "totp_setup.html",
            enrolment=enrolment,
            csrf_token=csrf_token(login.secret),
        )

    return await account_form(request, action)


@router.post("/mfa/totp/confirm")
async def confirm_authenticator_form(
    request: Request, background: BackgroundTasks
) -> Response:
    """Turn the new app on with a code from it: the recovery codes, shown once. A
    wrong code: the code asked again (the secret is not shown twice)."""

    async def action(login: CookieLogin, form: Form) -> Response:
        proof = OtpProof.model_validate(form)
        codes = await enable_authenticator(
            login.user, proof.otp, client_address(request)
        )
        background.add_task(deliver_mails)
        return recovery_codes_page(request, codes, "second-factor-on")

    return await account_form(request, action, "totp_setup.html")


@router.post("/mfa/recovery-codes")
async def recovery_codes_form(
    request: Request, background: BackgroundTasks
) -> Response:
    async def action(login: CookieLogin, form: Form) -> Response:
        asked = RecoveryCodesRequest.model_validate({"otp": _code(form)})
        codes = await replace_recovery_codes(
            login.login, asked.otp, client_address(request)
        )
        background.add_task(deliver_mails)
        return recovery_codes_page(request, codes, "recovery-codes-made")

    return await account_form(request, action)


def recovery_codes_page(request: Request, codes: list[str], done: str) -> Response:
    """New recovery codes, shown this once; the way back says ``done``."""
    return page(request, "recovery_codes.html", codes=codes, done=done)


@router.post("/mfa/totp/disable")
async def remove_authenticator_form(
    request: Request, background: BackgroundTasks
) -> Response:
    async def action(login: CookieLogin, form: Form) -> Response:
        removal = TotpRemoval.model_validate(form | {"otp": _code(form)})
        await disable_authenticator(
            login.login, removal.password, removal.otp, client_address(request)
        )
        background.add_task(deliver_mails)
        return redirect("", "second-factor-off")

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
