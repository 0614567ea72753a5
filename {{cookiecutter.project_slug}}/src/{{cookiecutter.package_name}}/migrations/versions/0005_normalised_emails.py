"""Store email addresses normalised (NFKC, case folded) and unique as stored.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import unicodedata
from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op
from alembic.util import CommandError

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Tables whose ``email`` column holds an address the service compares with users'.
ADDRESS_TABLES = ("users", "one_time_tokens", "mail_requests")


def normalised(address: str) -> str:
    """The rule of this release (kept here as it was: a migration is history)."""
    folded = unicodedata.normalize("NFKC", address).casefold()
    return unicodedata.normalize("NFKC", folded)


def upgrade() -> None:
    # (Printing the SQL instead, there is no data to normalise.)
    if not context.is_offline_mode():
        connection = op.get_bind()
        refuse_shared_addresses(connection)
        for table in ADDRESS_TABLES:
            normalise(connection, sa.table(table, sa.column("email")))
    op.drop_index("uq_users_email_lower", table_name="users")
    op.create_index("uq_users_email", "users", ["email"], unique=True)


def refuse_shared_addresses(connection: sa.Connection) -> None:
    """Refuse rather than change anyone's address: the operator decides whose it
    is. Says which users share which address."""
    holders = defaultdict(list)
    users = sa.text("SELECT id, email FROM users WHERE email IS NOT NULL ORDER BY id")
    for user_id, email in connection.execute(users):
        holders[normalised(email)].append(f"user {user_id} ({email})")
    shared = ["; ".join(names) for names in holders.values() if len(names) > 1]
    if shared:
        raise CommandError(
            f"{len(shared)} email address(es) belong to several users once "
            f"compared as people read them: {' | '.join(shared)}. Give each user "
            "their own, or none, then migrate again"
        )


def normalise(connection: sa.Connection, table: sa.TableClause) -> None:
    email = table.c.email
    for (address,) in connection.execute(sa.select(email).distinct()).all():
        if address is not None and normalised(address) != address:
            connection.execute(
                table.update().where(email == address).values(email=normalised(address))
            )


def downgrade() -> None:
    # Addresses stay normalised: the earlier rule (lower case) holds for them.
    op.drop_index("uq_users_email", table_name="users")
    op.create_index(
        "uq_users_email_lower",
        "users",
        [sa.literal_column("lower(email)")],
        unique=True,
    )
