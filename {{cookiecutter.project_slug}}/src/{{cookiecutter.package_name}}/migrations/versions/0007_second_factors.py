"""Create the second factors' tables; add to logins how the user signed in.

The tables: authenticator apps, recovery codes, and sign-ins waiting for a code.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _owned_by_user(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"],
        ["users.id"],
        name=op.f(f"fk_{table}_user_id_users"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    # Plain ALTER TABLEs, as in 0004: existing logins signed in with a password.
    op.add_column(
        "auth_sessions",
        sa.Column("amr", sa.String(length=32), server_default="pwd", nullable=False),
    )
    op.add_column(
        "auth_sessions",
        sa.Column("second_factor_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "totp_factors",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("encrypted_secret", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_step", sa.Integer(), nullable=True),
        _owned_by_user("totp_factors"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_totp_factors")),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        _owned_by_user("recovery_codes"),
        sa.PrimaryKeyConstraint("user_id", "code_hash", name=op.f("pk_recovery_codes")),
    )
    op.create_table(
        "mfa_tickets",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("wrong_codes", sa.Integer(), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        _owned_by_user("mfa_tickets"),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_mfa_tickets")),
    )
    op.create_index(
        op.f("ix_mfa_tickets_user_id"), "mfa_tickets", ["user_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_mfa_tickets_user_id"), table_name="mfa_tickets")
    op.drop_table("mfa_tickets")
    op.drop_table("recovery_codes")
    op.drop_table("totp_factors")
    op.drop_column("auth_sessions", "second_factor_at")
    op.drop_column("auth_sessions", "amr")
