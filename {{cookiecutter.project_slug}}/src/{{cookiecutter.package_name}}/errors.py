"""How failures become HTTP answers: every domain exception is mapped here, once.

Routes and services raise; this module decides the status, the detail and the
headers. No answer ever repeats what was sent (it may hold a password).
"""

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.routing import Match

{{ imports(auth_service="EmailNotVerifiedError, InvalidCredentialsError, InvalidRefreshTokenError, MfaRequiredError, WrongPasswordError", dependencies="NotAuthenticatedError, NotSuperuserError, SuperuserNeedsSecondFactorError", mfa="FactorAlreadyOnError, NoFactorError, WrongCodeError", mfa_login="InvalidMfaTokenError, InvalidSecondFactorError, StepUpRequiredError", keys="SigningKeyError", middleware="log_event", email_links="InvalidLinkTokenError", passwords="HashingBusyError", sessions="CsrfError, LoginNotFoundError", throttle="ThrottledError", user_service="EmailTakenError, SelfLockoutError, UserNotFoundError, UsernameTakenError") }}

#: Seconds a client should wait before trying again while the database is away.
DATABASE_RETRY_AFTER = 5

#: What any route may answer besides its own, for the OpenAPI schema.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    status.HTTP_413_CONTENT_TOO_LARGE: {"description": "Request body too large"},
    status.HTTP_503_SERVICE_UNAVAILABLE: {
        "description": "Database unavailable, too many logins at once, or no key "
        "can sign"
    },
}

Handler = Callable[[Request, Any], Awaitable[Response]]


def _answer(
    status_code: int, detail: str, headers: dict[str, str] | None = None
) -> Handler:
    async def handle(_request: Request, _error: Exception) -> JSONResponse:
        return JSONResponse({"detail": detail}, status_code, headers=headers)

    return handle


async def _validation_failed(
    _request: Request, error: RequestValidationError
) -> JSONResponse:
    """422 naming each problem and where it is, without the value sent."""
    problems = [
        {"type": e["type"], "loc": e["loc"], "msg": e["msg"]} for e in error.errors()
    ]
    return JSONResponse(
        {"detail": jsonable_encoder(problems)},
        status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


async def _said(_request: Request, error: Exception) -> JSONResponse:
    """400 with the rule the request broke (the exception's message)."""
    return JSONResponse({"detail": str(error)}, status.HTTP_400_BAD_REQUEST)


async def _forbidden(_request: Request, error: Exception) -> JSONResponse:
    """403 with the reason (the exception's message)."""
    return JSONResponse({"detail": str(error)}, status.HTTP_403_FORBIDDEN)


#: The methods a 405's Allow header may list, in the order it lists them.
METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
#: What FastAPI says of a body it cannot decode (bytes that are not UTF-8).
UNREADABLE_BODY = "There was an error parsing the body"


async def _http_error(request: Request, error: HTTPException) -> Response:
    """FastAPI's answer, except that a body that cannot be decoded is a 422 like
    any other malformed body, and a 405 lists in Allow every method the path has,
    as HTTP requires (Starlette lists those of one route only)."""
    if error.detail == UNREADABLE_BODY:
        problem = {"type": "body_unreadable", "loc": ["body"], "msg": UNREADABLE_BODY}
        return JSONResponse(
            {"detail": [problem]}, status.HTTP_422_UNPROCESSABLE_CONTENT
        )
    if error.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        routes = request.app.router.routes
        allowed = [
            method
            for method in METHODS
            if any(
                route.matches({**request.scope, "method": method})[0] is Match.FULL
                for route in routes
            )
        ]
        if allowed:  # else not one of the routes (a static file's mount, say)
            error = HTTPException(
                error.status_code, error.detail, {"Allow": ", ".join(allowed)}
            )
    return await http_exception_handler(request, error)


async def _throttled(_request: Request, error: ThrottledError) -> JSONResponse:
    return JSONResponse(
        {"detail": "Too many attempts; try again later"},
        status.HTTP_429_TOO_MANY_REQUESTS,
        headers={"Retry-After": str(error.retry_after)},
    )


async def _cannot_sign(_request: Request, error: SigningKeyError) -> JSONResponse:
    """503 while no stored key can sign (a replica with another SECRET_KEY, say):
    the operator's to fix, so the log says why."""
    log_event("cannot_sign", reason=str(error))
    return JSONResponse(
        {"detail": "Cannot issue tokens now; try again later"},
        status.HTTP_503_SERVICE_UNAVAILABLE,
    )


#: What a sign-in answers when the password is right and a code must follow.
MFA_REQUIRED = (
    "A second factor is needed: send mfa_token with a code from the authenticator "
    "app (or a recovery code) to POST /login/mfa"
)


async def _mfa_required(_request: Request, error: MfaRequiredError) -> JSONResponse:
    """403 with the ticket that completes the sign-in, in Auth0's shape."""
    return JSONResponse(
        {
            "detail": MFA_REQUIRED,
            "error": "mfa_required",
            "error_description": "Multifactor authentication required",
            "mfa_token": error.mfa_token,
        },
        status.HTTP_403_FORBIDDEN,
    )


BEARER = {"WWW-Authenticate": "Bearer"}

HANDLERS: dict[type[Exception], Handler] = {
    HTTPException: _http_error,
    RequestValidationError: _validation_failed,
    ThrottledError: _throttled,
    InvalidCredentialsError: _answer(
        status.HTTP_401_UNAUTHORIZED, "Incorrect username or password", BEARER
    ),
    InvalidRefreshTokenError: _answer(
        status.HTTP_401_UNAUTHORIZED, "Invalid refresh token", BEARER
    ),
    NotAuthenticatedError: _answer(
        status.HTTP_401_UNAUTHORIZED, "Could not validate credentials", BEARER
    ),
    NotSuperuserError: _answer(
        status.HTTP_403_FORBIDDEN, "Superuser privileges required"
    ),
    SuperuserNeedsSecondFactorError: _answer(
        status.HTTP_403_FORBIDDEN,
        "Superuser privileges need a sign-in with a second factor: add an "
        "authenticator app (POST /users/me/mfa/totp), then sign in with it",
    ),
    MfaRequiredError: _mfa_required,
    InvalidMfaTokenError: _answer(
        status.HTTP_401_UNAUTHORIZED, "Invalid or expired mfa_token", BEARER
    ),
    InvalidSecondFactorError: _answer(
        status.HTTP_401_UNAUTHORIZED, "Incorrect or already used code", BEARER
    ),
    WrongCodeError: _answer(
        status.HTTP_400_BAD_REQUEST, "Code is incorrect or was used already"
    ),
    StepUpRequiredError: _answer(
        status.HTTP_403_FORBIDDEN,
        "This change needs a current code from your authenticator app (otp)",
    ),
    FactorAlreadyOnError: _answer(
        status.HTTP_409_CONFLICT,
        "An authenticator app is on already: remove it to add another",
    ),
    NoFactorError: _answer(
        status.HTTP_409_CONFLICT,
        "No authenticator app is waiting to be confirmed: add one first",
    ),
    CsrfError: _forbidden,
    LoginNotFoundError: _answer(status.HTTP_404_NOT_FOUND, "No such login"),
    UserNotFoundError: _answer(status.HTTP_404_NOT_FOUND, "No such user"),
    SelfLockoutError: _said,
    InvalidLinkTokenError: _answer(
        status.HTTP_400_BAD_REQUEST, "Invalid or expired token"
    ),
    EmailNotVerifiedError: _answer(
        status.HTTP_403_FORBIDDEN,
        "Email address not verified: open the link mailed to it, or ask for another",
    ),
    WrongPasswordError: _answer(
        status.HTTP_400_BAD_REQUEST, "Current password is incorrect"
    ),
    UsernameTakenError: _answer(
        status.HTTP_409_CONFLICT, "Username already registered"
    ),
    EmailTakenError: _answer(status.HTTP_409_CONFLICT, "Email already registered"),
    SigningKeyError: _cannot_sign,
    HashingBusyError: _answer(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "Too many logins at once; try again shortly",
        {"Retry-After": "1"},
    ),
    # The database is down, restarting or out of connections: the caller is not
    # at fault (a bearer route must not answer 401), and it will pass.
    **dict.fromkeys(
        (OperationalError, InterfaceError, PoolTimeoutError),
        _answer(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "Database unavailable; try again shortly",
            {"Retry-After": str(DATABASE_RETRY_AFTER)},
        ),
    ),
}


async def answer_to(request: Request, error: Exception) -> Response | None:
    """The API's answer to ``error``, or None if it is not one this module maps:
    for the pages, which say the same to a person."""
    for kind in type(error).__mro__:
        if handler := HANDLERS.get(kind):
            return await handler(request, error)
    return None


def add_error_handlers(app: FastAPI) -> None:
    for error, handler in HANDLERS.items():
        app.add_exception_handler(error, handler)
