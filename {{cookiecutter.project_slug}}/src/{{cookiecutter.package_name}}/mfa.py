"""Second factors: an authenticator app's time-based codes (TOTP, RFC 6238) and
recovery codes.

A secret is made by the service, stored encrypted (AES-256-GCM with a key
derived from SECRET_KEY, bound to its user), and shown once, as an
``otpauth://`` URI and a QR code, until the user confirms a code from it. A code
is accepted within one time step of drift either way, and once: the step it
belongs to is stored, and that code and every earlier one are refused afterwards.
Recovery codes are random, shown once, stored only as keyed digests, and each
works once; making new ones voids the old.

The functions here check codes and change factors in the caller's transaction;
throttling, mails and logins are the callers'.
"""

import hashlib
import hmac
import io
import os
import secrets
from dataclasses import dataclass

import pyotp
import segno
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

{{ imports(config="SERVICE_TITLE, derived_key", database="utcnow", middleware="log_event", mfa_models="RecoveryCode, TotpFactor", user_models="User") }}

#: Codes of the step before and after the current one are accepted too (RFC
#: 6238 section 5.2: clocks drift, and typing a code takes time).
DRIFT_STEPS = 1
RECOVERY_CODES = 10
#: Characters of a recovery code: 12 base32 characters are 60 random bits.
RECOVERY_CODE_LENGTH = 12
#: What the keys derived from SECRET_KEY are for (HKDF's info).
SECRET_PURPOSE = b"second factor secrets at rest"
RECOVERY_PURPOSE = b"recovery code digests"
NONCE_BYTES = 12


class FactorAlreadyOnError(Exception):
    """The user has an authenticator app already: remove it first."""


class NoFactorError(Exception):
    """The user has no authenticator app (or none waiting to be confirmed)."""


class WrongCodeError(Exception):
    """A code that is not current, or was used already."""


@dataclass(frozen=True)
class Enrolment:
    """A new authenticator app's secret, as the user's app takes it."""

    secret: str
    otpauth_uri: str
    qr_svg: str


@dataclass(frozen=True)
class FactorState:
    totp_enabled: bool
    recovery_codes_left: int


def factor_state(session: Session, user_id: int) -> FactorState:
    """Whether the user's authenticator app is on, and their unused recovery codes."""
    enabled = session.scalar(select(second_factor_on(user_id)))
    left = session.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    )
    return FactorState(bool(enabled), left or 0)


def second_factor_on(user_id: int) -> object:
    """A condition that holds when the user has a confirmed authenticator app (for
    a query that reads it along with the rest)."""
    return (
        select(TotpFactor.user_id)
        .where(TotpFactor.user_id == user_id, TotpFactor.confirmed_at.is_not(None))
        .exists()
    )


def start_enrolment(session: Session, user_id: int) -> Enrolment:
    """A new secret for the user's authenticator app, waiting for a code to
    confirm it (a secret waiting before is replaced); raises FactorAlreadyOnError."""
    factor = session.get(TotpFactor, user_id, with_for_update=True)
    if factor is not None and factor.confirmed_at is not None:
        raise FactorAlreadyOnError
    username = session.scalar(select(User.username).where(User.id == user_id))
    secret = pyotp.random_base32()
    if factor is None:
        factor = TotpFactor(user_id=user_id)
        session.add(factor)
    factor.encrypted_secret = _encrypt(user_id, secret)
    factor.created_at = utcnow()
    factor.last_step = None
    session.flush()
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=SERVICE_TITLE)
    return Enrolment(secret, uri, qr_svg(uri))


def confirm_enrolment(session: Session, user_id: int, otp: str) -> list[str]:
    """Turn the waiting authenticator app on with a current code from it: its
    first recovery codes. Raises NoFactorError or WrongCodeError."""
    factor = session.get(TotpFactor, user_id, with_for_update=True)
    if factor is None or factor.confirmed_at is not None:
        raise NoFactorError
    step = _matching_step(factor, otp)
    if step is None:
        raise WrongCodeError
    factor.confirmed_at = utcnow()
    factor.last_step = step
    return new_recovery_codes(session, user_id)


def accept_code(session: Session, user_id: int, otp: str) -> bool:
    """Whether ``otp`` is a current code of the user's authenticator app that was
    not used before; if so, it (and every earlier code) is used up."""
    factor = session.scalar(
        select(TotpFactor).where(
            TotpFactor.user_id == user_id, TotpFactor.confirmed_at.is_not(None)
        )
    )
    step = _matching_step(factor, otp) if factor else None
    if step is None:
        return False
    # One statement: of two requests with the same code, one wins.
    return bool(
        session.execute(
            update(TotpFactor)
            .where(
                TotpFactor.user_id == user_id,
                or_(TotpFactor.last_step.is_(None), TotpFactor.last_step < step),
            )
            .values(last_step=step)
        ).rowcount
    )


def use_recovery_code(session: Session, user_id: int, code: str) -> bool:
    """Whether ``code`` is an unused recovery code of the user's; if so, it is
    used up."""
    return bool(
        session.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user_id,
                RecoveryCode.code_hash == _code_digest(user_id, code),
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=utcnow())
        ).rowcount
    )


def new_recovery_codes(session: Session, user_id: int) -> list[str]:
    """Ten new recovery codes for the user (shown once: only their digests are
    kept); the old ones stop working."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
    session.add_all(
        RecoveryCode(user_id=user_id, code_hash=_code_digest(user_id, code))
        for code in codes
    )
    session.flush()
    return codes


def remove_factor(session: Session, user_id: int) -> None:
    """The user's authenticator app and recovery codes, gone."""
    session.execute(delete(TotpFactor).where(TotpFactor.user_id == user_id))
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))


def qr_svg(text: str) -> str:
    """``text`` as a QR code, an SVG image that works standalone and inline in a
    page (no style, no script)."""
    out = io.BytesIO()
    segno.make(text, error="m").save(
        out,
        kind="svg",
        xmldecl=False,
        nl=False,
        scale=4,
        dark="#000",
        light="#fff",
        title="QR code of the authenticator app's secret",
    )
    return out.getvalue().decode()


def normalized_code(code: str) -> str:
    """A code as the user may have typed it (spaces, hyphens, any letter case), in
    the one form it is compared in."""
    return "".join(code.split()).replace("-", "").lower()


def _matching_step(factor: TotpFactor, otp: str) -> int | None:
    """The time step whose code ``otp`` is, now or one step of drift away."""
    secret = _decrypt(factor)
    if secret is None:
        return None
    try:
        step = pyotp.TOTP(secret).verify_and_get_timecode(
            "".join(otp.split()), for_time=utcnow(), valid_window=DRIFT_STEPS
        )
    except pyotp.OTPVerificationError:
        return None
    if factor.last_step is not None and step <= factor.last_step:
        return None
    return step


def _encrypt(user_id: int, secret: str) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(derived_key(SECRET_PURPOSE)).encrypt(
        nonce, secret.encode(), str(user_id).encode()
    )
    return nonce + sealed


def _decrypt(factor: TotpFactor) -> str | None:
    """The factor's secret, or None if it was sealed with another SECRET_KEY (or
    for another user): then no code matches, and the log says why."""
    blob = factor.encrypted_secret
    try:
        secret = AESGCM(derived_key(SECRET_PURPOSE)).decrypt(
            blob[:NONCE_BYTES], blob[NONCE_BYTES:], str(factor.user_id).encode()
        )
    except InvalidTag:
        log_event("second_factor_unreadable", user_id=factor.user_id)
        return None
    return secret.decode()


def _recovery_code() -> str:
    """Four groups of three characters of base32 (no 0, 1, 8 or 9 to misread)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    code = "".join(secrets.choice(alphabet) for _ in range(RECOVERY_CODE_LENGTH))
    return "-".join(code[i : i + 3] for i in range(0, RECOVERY_CODE_LENGTH, 3))


def _code_digest(user_id: int, code: str) -> str:
    """A recovery code as stored: a keyed digest, so that a copy of the database
    alone does not allow guessing the codes offline."""
    message = f"{user_id}:{normalized_code(code)}".encode()
    return hmac.new(derived_key(RECOVERY_PURPOSE), message, hashlib.sha256).hexdigest()
