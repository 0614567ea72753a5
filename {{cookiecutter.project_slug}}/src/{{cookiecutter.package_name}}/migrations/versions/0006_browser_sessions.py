"""Add to logins a session cookie's secret hash, last use, client and user agent.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    sa.Column("secret_hash", sa.String(length=64), nullable=True),
    sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("client", sa.String(length=64), nullable=True),
    sa.Column("user_agent", sa.String(length=64), nullable=True),
)


def upgrade() -> None:
    # Plain ALTER TABLEs, as in 0004: existing logins keep working as they are.
    for column in COLUMNS:
        op.add_column("auth_sessions", column)
    op.create_index(
        op.f("ix_auth_sessions_secret_hash"),
        "auth_sessions",
        ["secret_hash"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_auth_sessions_secret_hash"), table_name="auth_sessions")
    for column in reversed(COLUMNS):
        op.drop_column("auth_sessions", column.name)
