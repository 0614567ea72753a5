"""Logging in and out (the OAuth2 token endpoint, its JSON twins, logout), the
links mailed for password reset and email verification, and the published keys."""

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Body, Form, Request, Response, status
from fastapi.concurrency import run_in_threadpool

{{ imports(config="settings", auth_schemas="GRANT_FIELDS, AuthorizationServerMetadata, EmailVerification, JsonWebKeySet, LoginRequest, Message, MfaLogin, MfaRequired, Refusal, PasswordResetConfirm, PasswordResetRequest, RefreshRequest, Token, TokenForm, VerificationRequest", auth_service="TOKEN_LOGIN, log_in, logout, refresh, token_starter", mfa_login="SecondFactor, complete_login", email_links="confirm_reset, deliver_mails, request_reset, request_verification, verify_email", database="SessionDep", dependencies="UNAUTHENTICATED, CurrentUser, OptionalUser, client_address, user_agent", keys="public_keys") }}

router = APIRouter(tags=["auth"])

UNAUTHORIZED = {
    status.HTTP_401_UNAUTHORIZED: {"description": "Incorrect credentials"},
    status.HTTP_429_TOO_MANY_REQUESTS: {"description": "Too many failed logins"},
}
#: What a password sign-in may answer for a user with a second factor.
SIGN_IN = UNAUTHORIZED | {
    status.HTTP_403_FORBIDDEN: {
        "model": MfaRequired | Refusal,
        "description": "A second factor is needed (mfa_required), or the email "
        "address is not verified",
    }
}
#: What the routes that ask for a mailed link, and those that take its token, may
#: answer besides their own.
MAIL_REQUESTS = {
    status.HTTP_429_TOO_MANY_REQUESTS: {"description": "Too many requests"}
}
TOKEN_REFUSED = {
    status.HTTP_400_BAD_REQUEST: {"description": "Invalid or expired token"},
    status.HTTP_429_TOO_MANY_REQUESTS: {"description": "Too many tries"},
}


@router.post("/token", responses=SIGN_IN)
async def token(
    form: Annotated[TokenForm, Form()],
    session: SessionDep,
    request: Request,
    background: BackgroundTasks,
) -> Token:
    """OAuth2 token endpoint: ``grant_type=password`` with ``username`` and
    ``password``; ``grant_type=refresh_token`` with ``refresh_token``; or, to
    complete a sign-in that answered ``mfa_required``, the grant
    ``http://auth0.com/oauth/grant-type/mfa-otp`` with ``mfa_token`` and ``otp``
    (or ``.../mfa-recovery-code`` with ``mfa_token`` and ``recovery_code``)."""
    if form.grant_type == "refresh_token":
        return await run_in_threadpool(_refresh, session, form.refresh_token or "")
    if form.grant_type == "password":
        return await log_in(
            form.username or "",
            form.password or "",
            client_address(request),
            user_agent(request),
        )
    proof = SecondFactor(otp=form.otp, recovery_code=form.recovery_code)
    return await _complete(form.mfa_token or "", proof, request, background)


@router.post("/login", responses=SIGN_IN)
async def login(credentials: LoginRequest, request: Request) -> Token:
    """The same as POST /token with the password grant, with a JSON body."""
    return await log_in(
        credentials.username,
        credentials.password,
        client_address(request),
        user_agent(request),
    )


@router.post("/login/mfa", responses=UNAUTHORIZED)
async def login_with_second_factor(
    body: MfaLogin, request: Request, background: BackgroundTasks
) -> Token:
    """Complete a sign-in that answered ``mfa_required``: its ``mfa_token`` with a
    current code from the authenticator app (``otp``) or a recovery code. Wrong
    codes are throttled as passwords are; a few of them end the sign-in."""
    proof = SecondFactor(otp=body.otp, recovery_code=body.recovery_code)
    return await _complete(body.mfa_token, proof, request, background)


async def _complete(
    mfa_token: str, proof: SecondFactor, request: Request, background: BackgroundTasks
) -> Token:
    """The login of a sign-in completed with its second factor; the mails it may
    have caused (a recovery code used, wrong codes) go out after the answer."""
    client = client_address(request)
    start = token_starter(client, user_agent(request))
    background.add_task(deliver_mails)
    return await complete_login(mfa_token, proof, TOKEN_LOGIN, client, start)


@router.post("/token/refresh", responses=UNAUTHORIZED)
def refresh_token(body: RefreshRequest, session: SessionDep) -> Token:
    """A new token pair for a refresh token, which is used up (rotation); using
    one a second time revokes its whole login."""
    return _refresh(session, body.refresh_token)


def _refresh(session: SessionDep, refresh_token: str) -> Token:
    token = refresh(session, refresh_token)
    session.commit()
    return token


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def log_out(body: RefreshRequest, session: SessionDep) -> Response:
    """End the login the refresh token belongs to: its refresh and access tokens."""
    logout(session, body.refresh_token)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


RESET_ASKED = "If the address is an account's, a reset link is on its way"
VERIFICATION_ASKED = "If your address needs it, a verification link is on its way"


@router.post(
    "/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    responses=MAIL_REQUESTS,
)
async def ask_password_reset(
    body: PasswordResetRequest, request: Request, background: BackgroundTasks
) -> Message:
    """Mail a password reset link to the address, if it is an active user's. The
    answer is the same either way; the mail goes out after it."""
    await request_reset(body.email, client_address(request))
    background.add_task(deliver_mails)
    return Message(message=RESET_ASKED)


@router.post(
    "/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=TOKEN_REFUSED,
)
async def confirm_password_reset(
    body: PasswordResetConfirm, request: Request, background: BackgroundTasks
) -> Response:
    """Set a new password with the token from the mail; every login ends, and the
    address is told."""
    await confirm_reset(body.token, body.new_password, client_address(request))
    background.add_task(deliver_mails)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/verify-email",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=TOKEN_REFUSED,
)
def confirm_email(body: EmailVerification, request: Request) -> Response:
    """Confirm the address the token was mailed to (it must still be the user's)."""
    verify_email(body.token, client_address(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/verify-email/resend",
    status_code=status.HTTP_202_ACCEPTED,
    responses=UNAUTHENTICATED | MAIL_REQUESTS,
)
def resend_verification(
    user: OptionalUser,
    request: Request,
    background: BackgroundTasks,
    body: Annotated[VerificationRequest | None, Body()] = None,
) -> Message:
    """Mail a new verification link: with a bearer token, to the caller's address
    unless it is verified; signed out (a user who may not log in before verifying),
    to ``email`` if it is an active user's unverified address. The answer is the
    same either way, as for a password reset."""
    email = user.email if user else body.email if body else None
    if email and not (user and user.is_verified):
        request_verification(email, client_address(request))
        background.add_task(deliver_mails)
    return Message(message=VERIFICATION_ASKED)


#: How long verifiers may keep the published keys and metadata before asking again
#: (they ask at once when a token names a key they do not know).
PUBLISHED_MAX_AGE = 300


@router.get("/.well-known/jwks.json", name="jwks")
def jwks(session: SessionDep, response: Response) -> JsonWebKeySet:
    """The public keys that verify this service's access tokens (RFC 7517), each
    named by the ``kid`` tokens carry. Empty with HMAC: its key is never published."""
    response.headers["Cache-Control"] = f"public, max-age={PUBLISHED_MAX_AGE}"
    return JsonWebKeySet(keys=public_keys(session))


@router.get("/.well-known/oauth-authorization-server", name="server_metadata")
def server_metadata(response: Response) -> AuthorizationServerMetadata:
    """What clients and other services need to know about this server (RFC 8414):
    its issuer (the tokens' ``iss``), where to get tokens and where its public keys
    are. From the settings alone (JWT_ISSUER, PUBLIC_URL), never from the request:
    a Host header could name anyone."""
    response.headers["Cache-Control"] = f"public, max-age={PUBLISHED_MAX_AGE}"
    return AuthorizationServerMetadata(
        issuer=settings.jwt_issuer,
        token_endpoint=f"{settings.public_url}/token",
        jwks_uri=f"{settings.public_url}/.well-known/jwks.json",
        grant_types_supported=list(GRANT_FIELDS),
        token_endpoint_auth_methods_supported=["none"],
        response_types_supported=[],
    )


@router.get("/protected", responses=UNAUTHENTICATED)
async def protected(user: CurrentUser) -> Message:
    """An example of a route that needs a valid token."""
    return Message(message=f"Welcome {user.username}")
