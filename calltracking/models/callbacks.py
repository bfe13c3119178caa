"""Website callback requests: a project's callback settings, the requests visitors leave and
the attempts the PBX makes to call them back (:mod:`calltracking.callbacks`)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Optional

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from calltracking.enums import CallbackResult, CallbackStatus, check_in
from calltracking.models.base import Base, Seconds, UTCDateTime, utcnow
from calltracking.models.catalogue import Project, Source


class CallbackSettings(Base):
    """One project's callback settings (no row = callbacks off). ``schedule`` is the weekly
    opening hours in the project's time zone (:mod:`calltracking.callbacks.schedule`; empty =
    always open); ``allowed_regions`` ISO regions such as ``RU,KZ`` (empty = the default region
    only); ``widget_delay_seconds`` NULL = the project's median time to call; ``queue`` empty =
    the queue of the routing rule the request matches."""

    __tablename__ = "callback_settings"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    schedule: Mapped[str] = mapped_column(Text, default="")
    retries: Mapped[int] = mapped_column(Integer, default=2)
    retry_delay_seconds: Mapped[int] = mapped_column(Integer, default=120)
    cooldown_seconds: Mapped[int] = mapped_column(Integer, default=900)
    max_calls_per_hour: Mapped[int] = mapped_column(Integer, default=20)
    allowed_regions: Mapped[str] = mapped_column(String(200), default="")
    outbound_context: Mapped[str] = mapped_column(String(80), default="from-internal")
    widget_delay_seconds: Mapped[Optional[int]] = mapped_column(Integer)
    queue: Mapped[str] = mapped_column(String(80), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CallbackRequest(Base):
    """A visitor's request to be called back at ``phone`` (E.164), attributed from the visit
    like a pool call (``session_id``, ``source_id``, ``campaign_id``, ``time_on_site_seconds``).
    ``status`` is a :class:`CallbackStatus`; ``call_id`` the call that reached the visitor."""

    __tablename__ = "callback_requests"
    __table_args__ = (
        CheckConstraint(check_in("status", CallbackStatus), name="status"),
        # the per-number cooldown and the hourly cap count these
        Index("ix_callback_requests_phone_requested", "phone", "requested_at"),
        Index("ix_callback_requests_project_requested", "project_id", "requested_at"),
        # the dialer: due requests
        Index("ix_callback_requests_status_next", "status", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    visitor_id: Mapped[str] = mapped_column(String(64), default="")
    session_id: Mapped[Optional[int]] = mapped_column(ForeignKey("visitor_sessions.id", ondelete="SET NULL"))
    source_id: Mapped[Optional[int]] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))
    campaign_id: Mapped[Optional[int]] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    phone: Mapped[str] = mapped_column(String(32))
    client_key: Mapped[str] = mapped_column(String(100), default="")
    time_on_site_seconds: Mapped[Optional[Decimal]] = mapped_column(Seconds)
    status: Mapped[str] = mapped_column(String(12), default=CallbackStatus.PENDING)
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    queue: Mapped[str] = mapped_column(String(80), default="")
    call_id: Mapped[Optional[int]] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    reached_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    closed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    handled_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    handled_by: Mapped[str] = mapped_column(String(100), default="")

    project: Mapped[Project] = relationship()
    source: Mapped[Optional[Source]] = relationship()
    attempt_rows: Mapped[list["CallbackAttempt"]] = relationship(
        back_populates="request", order_by="CallbackAttempt.number", cascade="all, delete-orphan")


class CallbackAttempt(Base):
    """One Originate for a request: ``token`` is passed to the dialplan as
    ``CT_CALLBACK_REQUEST`` and finds the call record (``call_id``); the times are when the
    attempt started, an operator answered, the visitor answered and it ended; ``result`` a
    :class:`CallbackResult` (NULL while it runs)."""

    __tablename__ = "callback_attempts"
    __table_args__ = (
        CheckConstraint(check_in("result", CallbackResult, nullable=True), name="result"),
        Index("ix_callback_attempts_token", "token", unique=True),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("callback_requests.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    token: Mapped[str] = mapped_column(String(40))
    queue: Mapped[str] = mapped_column(String(80), default="")
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    operator_answered_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    visitor_answered_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    ended_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    result: Mapped[Optional[str]] = mapped_column(String(12))
    error: Mapped[str] = mapped_column(String(300), default="")
    call_id: Mapped[Optional[int]] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))

    request: Mapped[CallbackRequest] = relationship(back_populates="attempt_rows")
