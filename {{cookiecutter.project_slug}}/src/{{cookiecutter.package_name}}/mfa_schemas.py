"""Request and response bodies for second factors."""

from typing import Annotated

from pydantic import BaseModel, Field

{{ imports(schemas="RequestModel") }}

#: A code from an authenticator app (six digits; spaces are ignored).
Otp = Annotated[str, Field(min_length=1, max_length=16, examples=["123456"])]
#: A recovery code (hyphens, spaces and letter case are ignored).
RecoveryCodeText = Annotated[
    str, Field(min_length=1, max_length=32, examples=["abc-def-ghi-jkl"])
]


class SecondFactors(BaseModel):
    """The caller's second factors: whether the authenticator app is on, and how
    many unused recovery codes they have."""

    totp_enabled: bool
    recovery_codes_left: int


class PasswordProof(RequestModel):
    """The current password, again: a stolen token alone must not be enough."""

    password: str


class TotpEnrolment(BaseModel):
    """A new authenticator app's secret, waiting for a code to confirm it: type
    ``secret`` into the app, or open ``otpauth_uri``, or scan ``qr_svg``."""

    secret: str
    otpauth_uri: str
    qr_svg: str


class OtpProof(RequestModel):
    """A current code from the authenticator app."""

    otp: Otp


class TotpRemoval(RequestModel):
    """The password, and a current code (unless this login proved one recently)."""

    password: str
    otp: Otp | None = None


class RecoveryCodesRequest(RequestModel):
    """A current code (unless this login proved one recently)."""

    otp: Otp | None = None


class RecoveryCodes(BaseModel):
    """New recovery codes, shown this once: each completes one sign-in in place of
    a code; the old ones no longer work."""

    recovery_codes: list[str]
