"""Logins, their refresh tokens, sign-ins waiting for a second factor, the
failed-login counters that throttle them, the keys that sign access tokens, and
password reset tokens and the mails that carry them. They refer to users by the
table's name only: users know nothing of logins."""

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

{{ imports(database="Base, utcnow") }}


class AuthSession(Base):
    """One login: the family of refresh tokens it rotates through and the access
    tokens issued with them (they carry its id), or a browser's session cookie
    (``secret_hash``, the SHA-256 of its secret). Revoking it ends them all.
    ``last_used_at`` is written at most once a minute."""

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    secret_hash: Mapped[str | None] = mapped_column(String(64), index=True, unique=True)
    last_used_at: Mapped[datetime | None]
    #: Where the login started: the client's address and a short description of
    #: its user agent ("Firefox on Linux").
    client: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(64))
    #: How the user signed in: RFC 8176 methods, space-separated ("pwd", or
    #: "pwd otp mfa"), which its access tokens carry in ``amr``.
    amr: Mapped[str] = mapped_column(String(32), default="pwd", server_default="pwd")
    #: When the login last proved a second factor (at sign-in, or a code given
    #: since): sensitive changes need a recent one.
    second_factor_at: Mapped[datetime | None]


class RefreshToken(Base):
    """A refresh token, stored only as its SHA-256; ``used_at`` is set when it is
    exchanged, so a second use is detected."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class LoginThrottle(Base):
    """Recent failed logins for one account ("user:<name>") or client ("ip:<addr>")."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    failures: Mapped[int]
    window_started_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]


class StoredKey(Base):
    """A private key that signs access tokens (encrypted: see the keys module) and
    its public half. The newest that is not retired signs; a retired key verifies
    until no token it signed can still be valid, then it is deleted."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    public_key: Mapped[str] = mapped_column(Text)
    encrypted_private_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None]


#: What a mailed token is for (OneTimeToken.purpose, MailRequest.purpose).
RESET_LINK = "password_reset"
VERIFICATION_LINK = "email_verification"
#: Mails that only tell (MailRequest.purpose): no link, nothing to take over.
EMAIL_CHANGED_NOTICE = "email_changed"
PASSWORD_CHANGED_NOTICE = "password_changed"  # noqa: S105 (a purpose)
MFA_ENABLED_NOTICE = "mfa_enabled"
MFA_DISABLED_NOTICE = "mfa_disabled"
RECOVERY_CODES_NOTICE = "recovery_codes_made"
RECOVERY_CODE_USED_NOTICE = "recovery_code_used"
WRONG_CODES_NOTICE = "wrong_codes"
#: The notices mailed to a user's current address, naming the user.
USER_NOTICES = frozenset(
    {
        PASSWORD_CHANGED_NOTICE,
        MFA_ENABLED_NOTICE,
        MFA_DISABLED_NOTICE,
        RECOVERY_CODES_NOTICE,
        RECOVERY_CODE_USED_NOTICE,
        WRONG_CODES_NOTICE,
    }
)


class MfaTicket(Base):
    """A sign-in whose password was right, waiting for the second factor: the
    ``mfa_token`` given to the client, stored only as its SHA-256. It completes
    the kind of login it was made for (``purpose``: tokens or a browser session)
    once, before ``expires_at``, and dies after a few wrong codes."""

    __tablename__ = "mfa_tickets"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime]
    wrong_codes: Mapped[int] = mapped_column(default=0)
    used_at: Mapped[datetime | None]


class OneTimeToken(Base):
    """A token mailed to a user's ``email`` for one purpose ("password_reset",
    "email_verification"), stored only as its SHA-256; ``used_at`` is set when it
    is used, so it works once."""

    __tablename__ = "one_time_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(32))
    email: Mapped[str] = mapped_column(String(320))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class MailRequest(Base):
    """A mail to send (``purpose`` to ``email``: a link, or a notice), kept until
    the mail server has accepted it or the tries are over; a worker claims it while
    it sends."""

    __tablename__ = "mail_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32))
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    claimed_until: Mapped[datetime | None]
