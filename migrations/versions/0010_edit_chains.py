"""Chains of edits: jobs.parent_id, jobs.step, jobs.undo_update_id; result_messages

A text reply to a result edits it: the new job records the job it edits (`parent_id`) and
its place in the chain (`step`). `result_messages` maps a bot message that shows a result
(chat id, message id) to its job, so a reply to it finds the job. `undo_update_id` claims the
one ↩️ Undo of a step. Nullable or defaulted: the release before this one runs on it too.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("step", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("undo_update_id", sa.BigInteger(), nullable=True))
        batch_op.create_foreign_key("fk_jobs_parent", "jobs", ["parent_id"], ["id"])
        batch_op.create_index("ix_jobs_parent", ["parent_id"])
    op.create_table(
        "result_messages",
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("chat_id", "message_id"),
    )
    op.create_index("ix_result_messages_job_id", "result_messages", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_result_messages_job_id", table_name="result_messages")
    op.drop_table("result_messages")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_parent")
        batch_op.drop_constraint("fk_jobs_parent", type_="foreignkey")
        batch_op.drop_column("undo_update_id")
        batch_op.drop_column("step")
        batch_op.drop_column("parent_id")
