"""jobs.kind -> jobs.mode, users.settings -> users.preferences: the names the code uses

The one migration that is not compatible with the release before it (docs/operations.md,
"Rolling deploys"): that release still reads `jobs.kind` and `users.settings`, so stop its
processes before `kadr migrate` instead of replacing them one by one.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 13:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# recreate="never": SQLite renames a column in place (ALTER TABLE ... RENAME COLUMN, SQLite
# 3.25+); copying `users` into a new table would fail on the jobs' foreign keys to it.


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None, recreate="never") as batch_op:
        batch_op.alter_column("kind", new_column_name="mode")
    with op.batch_alter_table("users", schema=None, recreate="never") as batch_op:
        batch_op.alter_column("settings", new_column_name="preferences")


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None, recreate="never") as batch_op:
        batch_op.alter_column("preferences", new_column_name="settings")
    with op.batch_alter_table("jobs", schema=None, recreate="never") as batch_op:
        batch_op.alter_column("mode", new_column_name="kind")
