"""Database models: users and jobs. The database is the truth; Redis only carries work."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend; SQLite alone would hand back naive ones."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.astimezone(UTC) if value is not None and value.tzinfo else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, datetime: UTCDateTime()}


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    SUBMITTED = "submitted"
    COMPLETED = "completed"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"


LIVE_STATUSES = (JobStatus.QUEUED, JobStatus.SUBMITTED, JobStatus.COMPLETED)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    language: Mapped[str] = mapped_column(String(8), default="en")
    username: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str | None] = mapped_column(String(128))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Read by the users middleware (a banned user's updates are dropped) but set by nothing in
    #: kadr yet: only by hand in the database, until admin commands (ADMIN_IDS) exist.
    banned: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


def new_job_id() -> str:
    return uuid.uuid4().hex


_JOBS_OF_UPDATES = uuid.UUID("6f1d2a52-3c0e-4a8e-9a0b-5b7f0d1e2c3a")


def job_id_for(update_id: int) -> str:
    """The id of the job an update makes, the same every time the update is handled: its
    status message (Cancel button included) can go out before the row is written."""
    return uuid.uuid5(_JOBS_OF_UPDATES, str(update_id)).hex


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_deadline", "status", "deadline_at"),
        Index("ix_jobs_user_created", "user_id", "created_at"),
        UniqueConstraint("update_id", name="uq_jobs_update_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_job_id)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    language: Mapped[str] = mapped_column(String(8), default="en")
    status_message_id: Mapped[int | None] = mapped_column(BigInteger)
    #: The Telegram update that made the job: handling an update again never makes another.
    update_id: Mapped[int | None] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(128))
    prompt: Mapped[str] = mapped_column(Text, default="")
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    fal_request_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    fal_status_url: Mapped[str | None] = mapped_column(Text)
    fal_response_url: Mapped[str | None] = mapped_column(Text)
    fal_cancel_url: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(String(64))
    error_detail: Mapped[str | None] = mapped_column(Text)
    deadline_at: Mapped[datetime] = mapped_column()
    check_at: Mapped[datetime | None] = mapped_column()
    #: Set before a submit is sent to fal and kept once it may have reached fal (fal has no
    #: idempotency key): a queued job with it set is never sent again; its webhook, or its
    #: deadline, ends it. Cleared only when fal certainly did not get the request.
    submit_started_at: Mapped[datetime | None] = mapped_column()
    #: Deliveries of the completed job that failed with an error; past a cap the job fails.
    delivery_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    notified_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column()
    completed_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
