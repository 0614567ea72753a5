"""Second factors: a user's authenticator app (its TOTP secret, encrypted) and
recovery codes (stored only as keyed digests). They refer to users by the table's
name only: users know nothing of second factors."""

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

{{ imports(database="Base, utcnow") }}


class TotpFactor(Base):
    """A user's authenticator app: its secret, encrypted (see the mfa module). On
    once ``confirmed_at`` is set; ``last_step`` is the time step of the last code
    accepted, so that code and every earlier one are refused afterwards."""

    __tablename__ = "totp_factors"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    encrypted_secret: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None]
    last_step: Mapped[int | None]


class RecoveryCode(Base):
    """One recovery code of a user, stored as its keyed digest; ``used_at`` is set
    when it is used, so it works once."""

    __tablename__ = "recovery_codes"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    used_at: Mapped[datetime | None]
