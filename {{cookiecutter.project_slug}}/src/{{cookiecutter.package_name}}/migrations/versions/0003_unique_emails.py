"""Make email addresses unique, whatever their case.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op
from alembic.util import CommandError

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHARED_ADDRESSES = sa.text(
    "SELECT count(*) FROM (SELECT lower(email) FROM users WHERE email IS NOT NULL "
    "GROUP BY lower(email) HAVING count(*) > 1) AS shared"
)


def upgrade() -> None:
    # Refuse rather than change anyone's address: the operator decides whose it is.
    # (Printing the SQL instead, there is no data to look at.)
    shared = 0 if context.is_offline_mode() else op.get_bind().scalar(SHARED_ADDRESSES)
    if shared:
        raise CommandError(
            f"{shared} email address(es) belong to several users (in some letter "
            "case): give each user their own, or none, then migrate again"
        )
    op.create_index(
        "uq_users_email_lower",
        "users",
        [sa.literal_column("lower(email)")],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_users_email_lower", table_name="users")
