"""Calls: the inbound call record with its operator legs and tags, the operators, and the
calls operators place (``outbound_calls``). Written by :mod:`calltracking.callstore`.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Optional

from sqlalchemy import (
    Boolean, CheckConstraint, Column, ForeignKey, Index, Integer, Numeric, String, Table, Text,
    UniqueConstraint, text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from calltracking.enums import AttributionKind, CallStatus, LegKind, LegOutcome, MissedReason, check_in
from calltracking.models.base import Base, Money, Seconds, UTCDateTime, utcnow
from calltracking.models.catalogue import Campaign, Project, Source, Tag

class Operator(Base):
    """A person who answers calls, known to Asterisk by ``interface`` (``PJSIP/101``) and by the
    queue ``member_name``."""

    __tablename__ = "operators"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    interface: Mapped[str] = mapped_column(String(200), unique=True)
    member_name: Mapped[str] = mapped_column(String(200), default="", index=True)
    extension: Mapped[str] = mapped_column(String(40), default="")
    queues: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


call_tags = Table(
    "call_tags",
    Base.metadata,
    Column("call_id", ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
)


class Call(Base):
    """One inbound call, keyed by (pbx_id, Linkedid).

    ``status`` is a :class:`CallStatus`, ``missed_reason`` a :class:`MissedReason`,
    ``attribution`` an :class:`AttributionKind`. How the times and durations are derived from
    the PBX's events: :mod:`calltracking.interpret`.
    """

    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("pbx_id", "linkedid", name="uq_calls_pbx_linkedid"),
        CheckConstraint(check_in("status", CallStatus), name="status"),
        CheckConstraint(check_in("attribution", AttributionKind), name="attribution"),
        CheckConstraint(check_in("missed_reason", MissedReason, nullable=True), name="missed_reason"),
        Index("ix_calls_project_started", "project_id", "started_at"),
        Index("ix_calls_started", "started_at"),
        Index("ix_calls_caller_started", "caller_number", "started_at"),
        # the report rollups: calls changed since the last refresh, and per-source ranges
        Index("ix_calls_updated_at", "updated_at"),
        Index("ix_calls_project_source_started", "project_id", "source_id", "started_at"),
        # target calls of a project in a date range (journal filter, reports' drill-down)
        Index("ix_calls_project_target_started", "project_id", "is_target", "started_at"),
        # finished calls the target rules have not seen yet (calltracking/qualify/apply.py)
        Index("ix_calls_unqualified", "ended_at", sqlite_where=text("qualified_at IS NULL"),
              postgresql_where=text("qualified_at IS NULL")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    pbx_id: Mapped[str] = mapped_column(String(64))
    linkedid: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[Optional[int]] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    tracking_number_id: Mapped[Optional[int]] = mapped_column(ForeignKey("tracking_numbers.id", ondelete="SET NULL"))
    did: Mapped[str] = mapped_column(String(32), default="")
    caller_number: Mapped[str] = mapped_column(String(32), default="")
    caller_name: Mapped[str] = mapped_column(String(200), default="")
    #: The number that forwarded the call to the tracking number (RDNIS, E.164 when it reads as
    #: one); '' when the call was dialled directly. Written by the ``route`` hook only.
    forwarded_from: Mapped[str] = mapped_column(String(32), default="", server_default="")
    source_id: Mapped[Optional[int]] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"), index=True)
    campaign_id: Mapped[Optional[int]] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    session_id: Mapped[Optional[int]] = mapped_column(ForeignKey("visitor_sessions.id", ondelete="SET NULL"))
    promo_code_id: Mapped[Optional[int]] = mapped_column(ForeignKey("promo_codes.id", ondelete="SET NULL"))
    routing_rule_id: Mapped[Optional[int]] = mapped_column(ForeignKey("routing_rules.id", ondelete="SET NULL"))
    attribution: Mapped[str] = mapped_column(String(10), default=AttributionKind.NONE)
    attribution_confidence: Mapped[Optional[Decimal]] = mapped_column(Numeric(4, 3))
    candidate_count: Mapped[Optional[int]] = mapped_column(Integer)
    queue: Mapped[str] = mapped_column(String(80), default="")
    target: Mapped[str] = mapped_column(String(200), default="")
    started_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    queued_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    answered_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    ended_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    wait_seconds: Mapped[Optional[Decimal]] = mapped_column(Seconds)
    queue_wait_seconds: Mapped[Optional[Decimal]] = mapped_column(Seconds)
    talk_seconds: Mapped[Optional[Decimal]] = mapped_column(Seconds)
    hold_seconds: Mapped[Optional[Decimal]] = mapped_column(Seconds)
    time_to_call_seconds: Mapped[Optional[Decimal]] = mapped_column(Seconds)
    status: Mapped[str] = mapped_column(String(12), default=CallStatus.IN_PROGRESS)
    missed_reason: Mapped[Optional[str]] = mapped_column(String(20))
    operator_id: Mapped[Optional[int]] = mapped_column(ForeignKey("operators.id", ondelete="SET NULL"), index=True)
    operator_name: Mapped[str] = mapped_column(String(200), default="")
    first_call: Mapped[Optional[bool]] = mapped_column(Boolean)
    record: Mapped[bool] = mapped_column(Boolean, default=False)
    recording_file: Mapped[str] = mapped_column(String(500), default="")
    recording_seconds: Mapped[Optional[Decimal]] = mapped_column(Seconds)
    value: Mapped[Optional[Decimal]] = mapped_column(Money)
    comment: Mapped[str] = mapped_column(Text, default="")
    closed_reason: Mapped[str] = mapped_column(String(40), default="")
    via_agi: Mapped[bool] = mapped_column(Boolean, default=False)
    handled_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    handled_by: Mapped[str] = mapped_column(String(100), default="")
    #: a target (qualified) call: a target rule with ``mark_target`` matched it
    #: (:mod:`calltracking.qualify`); ``target_rule_id`` the first such rule
    is_target: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    target_rule_id: Mapped[Optional[int]] = mapped_column(ForeignKey("target_rules.id", ondelete="SET NULL"))
    #: when the target rules were last applied to the call (NULL: not yet)
    qualified_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    project: Mapped[Optional[Project]] = relationship()
    source: Mapped[Optional[Source]] = relationship()
    campaign: Mapped[Optional[Campaign]] = relationship()
    operator: Mapped[Optional[Operator]] = relationship()
    legs: Mapped[list["CallLeg"]] = relationship(back_populates="call", cascade="all, delete-orphan",
                                                 order_by="CallLeg.rung_at")
    tags: Mapped[list[Tag]] = relationship(secondary=call_tags)


class CallLeg(Base):
    """An operator rung, answered, or transferred to, within a call: ``kind`` is a
    :class:`LegKind`, ``outcome`` a :class:`LegOutcome`."""

    __tablename__ = "call_legs"
    __table_args__ = (
        UniqueConstraint("call_id", "uniqueid", name="uq_call_legs_call_uniqueid"),
        CheckConstraint(check_in("outcome", LegOutcome), name="outcome"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    operator_id: Mapped[Optional[int]] = mapped_column(ForeignKey("operators.id", ondelete="SET NULL"), index=True)
    operator_name: Mapped[str] = mapped_column(String(200), default="")
    interface: Mapped[str] = mapped_column(String(200), default="")
    channel: Mapped[str] = mapped_column(String(200), default="")
    uniqueid: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(80), default="")
    kind: Mapped[str] = mapped_column(String(12), default=LegKind.QUEUE)
    rung_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    answered_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    ended_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    ring_seconds: Mapped[Optional[Decimal]] = mapped_column(Seconds)
    talk_seconds: Mapped[Optional[Decimal]] = mapped_column(Seconds)
    outcome: Mapped[str] = mapped_column(String(12), default=LegOutcome.RINGING)
    call: Mapped[Call] = relationship(back_populates="legs")


class OutboundCall(Base):
    """One call placed by an operator to an outside number (own phone, click-to-call, or a
    context listed in ``[asterisk] outbound_contexts``). Kept apart from ``calls``, so reports,
    rollups and the journal never count it; read by :mod:`calltracking.calls.missed` to tell a
    missed call was called back."""

    __tablename__ = "outbound_calls"
    __table_args__ = (
        UniqueConstraint("pbx_id", "linkedid", name="uq_outbound_calls_pbx_linkedid"),
        CheckConstraint(check_in("status", CallStatus), name="status"),
        Index("ix_outbound_calls_number_started", "number", "started_at"),
        Index("ix_outbound_calls_started", "started_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    pbx_id: Mapped[str] = mapped_column(String(64))
    linkedid: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[Optional[int]] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    operator_id: Mapped[Optional[int]] = mapped_column(ForeignKey("operators.id", ondelete="SET NULL"),
                                                       index=True)
    operator_name: Mapped[str] = mapped_column(String(200), default="")
    interface: Mapped[str] = mapped_column(String(200), default="")
    number: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    answered_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    ended_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    talk_seconds: Mapped[Optional[Decimal]] = mapped_column(Seconds)
    status: Mapped[str] = mapped_column(String(12), default=CallStatus.IN_PROGRESS)
    originated_by_us: Mapped[bool] = mapped_column(Boolean, default=False)
    #: the missed call a click-to-call was made for (CT_CALLBACK_FOR), when it still exists
    callback_for_id: Mapped[Optional[int]] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    operator: Mapped[Optional[Operator]] = relationship()
