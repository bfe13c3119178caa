"""Background jobs and what they keep: the scheduler's lease and job status, notification
rules and the outbox of deliveries, processed recordings and their retention
(:mod:`calltracking.jobs`)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Optional

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from calltracking.enums import DeliveryStatus, NotificationChannel, NotificationEvent, RecordingStatus, check_in
from calltracking.models.base import Base, Seconds, UTCDateTime, utcnow
from calltracking.models.calls import Call

class JobStatus(Base):
    """Last run and failure counters of one scheduler job (listed by `doctor`)."""

    __tablename__ = "job_status"
    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_started_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    last_finished_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    last_ok_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    last_error_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_result: Mapped[str] = mapped_column(String(200), default="")
    last_duration_ms: Mapped[Optional[int]] = mapped_column(Integer)


class SchedulerLease(Base):
    """Held by the one process that runs the jobs; renewed by a heartbeat."""

    __tablename__ = "scheduler_lease"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class NotificationRule(Base):
    """Who is told what: on ``event`` (a :class:`NotificationEvent`) send to ``target`` through
    ``channel`` (a :class:`NotificationChannel`): missed-call mail, digests, CRM/webhook posts,
    GA4 events."""

    __tablename__ = "notification_rules"
    __table_args__ = (
        CheckConstraint(check_in("channel", NotificationChannel), name="channel"),
        CheckConstraint(check_in("event", NotificationEvent), name="event"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    channel: Mapped[str] = mapped_column(String(10))
    event: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(String(1000))
    body_template: Mapped[str] = mapped_column(Text, default="")
    secret: Mapped[str] = mapped_column(String(200), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    #: ``call_finished`` rules: send only target calls (``calls.is_target``), each when it becomes one
    target_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class Delivery(Base):
    """One outgoing mail or HTTP request with retries (``event`` a :class:`DeliveryEvent`,
    ``status`` a :class:`DeliveryStatus`); ``dead`` = the dead-letter list."""

    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint(check_in("channel", NotificationChannel), name="channel"),
        CheckConstraint(check_in("status", DeliveryStatus), name="status"),
        UniqueConstraint("dedup_key", name="uq_deliveries_dedup_key"),
        Index("ix_deliveries_status_next", "status", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[Optional[int]] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    rule_id: Mapped[Optional[int]] = mapped_column(ForeignKey("notification_rules.id", ondelete="SET NULL"))
    call_id: Mapped[Optional[int]] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    event: Mapped[str] = mapped_column(String(20))
    dedup_key: Mapped[Optional[str]] = mapped_column(String(200))
    target: Mapped[str] = mapped_column(String(1000), default="")
    payload: Mapped[str] = mapped_column(Text, default="{}")
    status: Mapped[str] = mapped_column(String(10), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_http_status: Mapped[Optional[int]] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)


class RecordingInfo(Base):
    """The processed recording of a call: playable file, duration, talk analysis, retention."""

    __tablename__ = "recording_info"
    __table_args__ = (
        CheckConstraint(check_in("status", RecordingStatus), name="status"),
    )
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(10))
    file: Mapped[str] = mapped_column(String(500), default="")
    format: Mapped[str] = mapped_column(String(5), default="")
    source_files: Mapped[str] = mapped_column(Text, default="")
    duration_seconds: Mapped[Optional[Decimal]] = mapped_column(Seconds)
    channels: Mapped[Optional[int]] = mapped_column(Integer)
    caller_talk_seconds: Mapped[Optional[Decimal]] = mapped_column(Seconds)
    operator_talk_seconds: Mapped[Optional[Decimal]] = mapped_column(Seconds)
    talk_ratio: Mapped[Optional[Decimal]] = mapped_column(Numeric(4, 3))
    longest_silence_seconds: Mapped[Optional[Decimal]] = mapped_column(Seconds)
    operator_interruptions: Mapped[Optional[int]] = mapped_column(Integer)
    caller_interruptions: Mapped[Optional[int]] = mapped_column(Integer)
    first_operator_word_seconds: Mapped[Optional[Decimal]] = mapped_column(Seconds)
    error: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    processed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    purged_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    call: Mapped[Call] = relationship(backref=backref("recording_info", uselist=False, passive_deletes=True))


class RecordingPolicy(Base):
    """Per-project override of ``[recordings] keep_days`` (0 = keep forever)."""

    __tablename__ = "recording_policies"
    __table_args__ = (CheckConstraint("keep_days >= 0", name="keep_days"),)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    keep_days: Mapped[int] = mapped_column(Integer)
