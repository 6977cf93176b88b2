"""Database models: users, jobs, the credits ledger, referrals, subscriptions and
broadcasts. The database is the truth; Redis only carries work."""

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
    Integer,
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
    preferences: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: A banned user's updates are dropped by the users middleware; set by an admin's /ban
    #: (cached in Redis: `core/domain/bans.py`).
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
        Index("ix_jobs_parent", "parent_id"),
        UniqueConstraint("update_id", name="uq_jobs_update_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_job_id)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    language: Mapped[str] = mapped_column(String(8), default="en")
    status_message_id: Mapped[int | None] = mapped_column(BigInteger)
    #: The Telegram update that made the job: handling an update again never makes another.
    update_id: Mapped[int | None] = mapped_column(BigInteger)
    mode: Mapped[str] = mapped_column(String(32))
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
    #: The user asked to cancel while fal may have had the request: fal's answer decides
    #: whether it ends cancelled (refunded) or is delivered (charged), `workers/cancellation.py`.
    cancel_requested_at: Mapped[datetime | None] = mapped_column()
    #: Deliveries of the completed job that failed with an error; past a cap the job fails.
    delivery_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    notified_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column()
    completed_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    #: The job whose result this one edits, when the user replied to that result: a chain of
    #: edits, `step` long (1 for a job that starts one).
    parent_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("jobs.id", name="fk_jobs_parent")
    )
    step: Mapped[int] = mapped_column(default=1, server_default="1")
    #: The tap on ↩️ Undo that showed the parent's result again, claimed before it is sent:
    #: a second tap shows nothing more, the same tap handled again (its update replayed) does.
    undo_update_id: Mapped[int | None] = mapped_column(BigInteger)


class ResultMessage(Base):
    """A bot message that shows a job's result (delivered, or shown again by ↩️ Undo), and
    which of the job's files it shows: a reply to it continues the job's chain of edits."""

    __tablename__ = "result_messages"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    message_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    job_id: Mapped[str] = mapped_column(String(32), ForeignKey("jobs.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Reason(enum.StrEnum):
    """Why credits moved; with `ref`, what the movement belongs to."""

    DAILY = "daily"  #: the free allowance of a UTC day (ref: "<user>:<day>")
    RESERVE = "reserve"  #: a job was accepted (ref: the job id)
    REFUND = "refund"  #: the job ended without a result (ref: the job id)
    #: the prompt helper did not help (the user's words went): its price back (ref: the job id)
    HELPER_REFUND = "helper_refund"
    PAYMENT = "payment"  #: Telegram Stars paid (ref: telegram_payment_charge_id)
    PAYMENT_REFUND = "payment_refund"  #: an admin refunded those Stars (ref: the charge id)
    GRANT = "grant"  #: an admin gave credits (ref: "grant:<update id>" of the command)
    #: an invitation paid off (ref: "invited:<newcomer>" for the inviter's share,
    #: "joined:<newcomer>" for the newcomer's): once per newcomer and side
    REFERRAL = "referral"
    SUBSCRIPTION = "subscription"  #: a Stars subscription's period paid (ref: the charge id)


class LedgerEntry(Base):
    """One movement of a user's credits: the only source of a balance (its sum). `free` and
    `paid` are the signed parts of the movement in each kind, so a reservation that takes
    free credits first and the rest from bought ones is still one row, and its refund gives
    each kind back. The database enforces every "once": one row per reason and ref."""

    __tablename__ = "ledger"
    __table_args__ = (
        UniqueConstraint("reason", "ref", name="uq_ledger_reason_ref"),
        Index("ix_ledger_user_created", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str | None] = mapped_column(String(128))
    free: Mapped[int] = mapped_column(Integer, default=0)
    paid: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def amount(self) -> int:
        return self.free + self.paid


class Referral(Base):
    """Who invited a user: one row per invited user (one inviter each), written when a user
    new to the bot comes by an invitation link; `credited_at` is set, once, in the
    transaction that delivers the newcomer's first job and credits both sides."""

    __tablename__ = "referrals"
    __table_args__ = (Index("ix_referrals_inviter", "inviter_id"),)

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id"), primary_key=True, autoincrement=False
    )
    inviter_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    credited_at: Mapped[datetime | None] = mapped_column()


class Subscription(Base):
    """A user's Stars subscription to a plan: `charge_id` is its first payment's
    `telegram_payment_charge_id` (what editUserStarSubscription names it by),
    `expires_at` the end of the period last paid for, `cancelled_at` set while the bot
    has cancelled its renewal."""

    __tablename__ = "subscriptions"

    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"), primary_key=True)
    plan_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    charge_id: Mapped[str] = mapped_column(String(128))
    credits: Mapped[int] = mapped_column(Integer)
    stars: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column()
    cancelled_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Broadcast(Base):
    """An admin's message to every user, sent by a worker task in user id order. `cursor` is
    the last user it was claimed for: claimed before the send, so a task run again after a
    crash goes on after it and nobody gets the message twice."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    admin_chat_id: Mapped[int] = mapped_column(BigInteger)
    language: Mapped[str] = mapped_column(String(8), default="en")
    status: Mapped[str] = mapped_column(String(16), default="running")
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    #: The /broadcast update that made it: a handler run again finds it (migration 0009).
    update_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
