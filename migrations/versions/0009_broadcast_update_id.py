"""broadcasts.update_id: the admin's /broadcast update that made it, made once

A handler may run again for the same update (the inbox redelivers after a crash); the
update's id, unique here, makes the second run find the broadcast instead of starting another.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 01:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("update_id", sa.BigInteger(), nullable=True))
        batch_op.create_unique_constraint("uq_broadcasts_update_id", ["update_id"])


def downgrade() -> None:
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_constraint("uq_broadcasts_update_id", type_="unique")
        batch_op.drop_column("update_id")
