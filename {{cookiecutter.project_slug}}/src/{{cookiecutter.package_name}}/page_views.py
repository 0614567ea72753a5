"""What every page shares: rendering under the Content-Security-Policy, the
redirect after a post, the form's failure said on the page as the API says it, and
the checks that a form came from this site (and, signed in, from its own page)."""

import json
from collections.abc import Awaitable, Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import Request, status
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

{{ imports(auth_router="RESET_ASKED, VERIFICATION_ASKED", config="SERVICE_TITLE, settings", dependencies="CookieLogin, cookie_caller", errors="answer_to", sessions="CSRF_FIELD, CsrfError, check_csrf, check_origin") }}

#: The pages' templates and static files.
ASSETS = Path(str(files(__name__.partition(".")[0]) / "web"))
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
    "verification-asked": VERIFICATION_ASKED + ".",
    "password-reset": "Your password is changed: sign in with the new one.",
    "password-changed": "Your password is changed: sign in again everywhere.",
    "email-verified": "Your email address is verified.",
    "profile-saved": "Your changes are saved.",
    "login-ended": "That login is ended.",
    "others-ended": "Every other login is ended.",
    "second-factor-on": "Two-step sign-in is on: signing in needs a code too.",
    "second-factor-off": "Two-step sign-in is off: your password alone signs you in.",
    "recovery-codes-made": "New recovery codes are made: the old ones no longer work.",
}

templates = Jinja2Templates(directory=ASSETS / "templates")


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
            "service": SERVICE_TITLE,
            "notice": NOTICES.get(request.query_params.get("done", "")),
            # Which mailed links the service sends: the pages offer only those.
            "reset": bool(settings.password_reset_url),
            "verification": bool(settings.email_verification_url),
            "errors": {},
            "form": {},
            **context,
        },
        status_code=status_code,
        headers=headers,
    )
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    # Pages show accounts, CSRF tokens, sign-in tickets and codes: kept nowhere.
    response.headers["Cache-Control"] = "no-store"
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


async def signed_in(request: Request) -> CookieLogin | None:
    """The browser's session, if it has a live one (pages use the cookie only)."""
    secret = request.cookies.get(settings.session_cookie)
    caller = await cookie_caller(secret) if secret else None
    return CookieLogin(caller, secret) if caller and secret else None


def from_this_site(request: Request) -> None:
    """Refuse (CsrfError) a form that a page of another site posted."""
    check_origin(request.headers)


def sent_by_the_account_page(request: Request, login: CookieLogin, form: Form) -> None:
    """Refuse (CsrfError) a signed-in form without the session's CSRF token, or
    from another site."""
    check_csrf(login.secret, form.get(CSRF_FIELD), request.headers)
