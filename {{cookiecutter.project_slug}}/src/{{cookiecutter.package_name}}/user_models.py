"""The users table."""

from datetime import datetime

from sqlalchemy import Index, String, false, func, true
from sqlalchemy.orm import Mapped, mapped_column

{{ imports(database="Base") }}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(320))
    full_name: Mapped[str | None] = mapped_column(String(255))
    hashed_password: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    is_superuser: Mapped[bool] = mapped_column(default=False, server_default=false())
    #: Whether the user confirmed ``email`` through the link mailed to it.
    is_verified: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        server_default=func.now(), onupdate=func.now()
    )


# Usernames are unique whatever their case: "JohnDoe" and "johndoe" are one user.
# Usernames are ASCII, so that the databases' lower() agrees with Python's.
Index("uq_users_username_lower", func.lower(User.username), unique=True)
# Email addresses are stored normalised (normalized_email: case folded whatever
# the script), so "Ann@example.com" and "ann@example.com" are one.
UNIQUE_EMAIL = Index("uq_users_email", User.email, unique=True)
