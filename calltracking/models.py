"""The domain model (SQLAlchemy 2.x).

Conventions: every time is stored in UTC (``UTCDateTime`` refuses naive
datetimes on write and returns aware ones on read); money is ``Numeric`` and
read as ``Decimal``; durations are seconds as ``Numeric(12, 3)``; phone numbers
are E.164 strings (see :mod:`calltracking.phone`).
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Optional

from sqlalchemy import (
    BigInteger, Boolean, CheckConstraint, Column, Date, DateTime, ForeignKey, Index, Integer,
    MetaData, Numeric, String, Table, Text, Time, UniqueConstraint, text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Stores naive UTC, returns aware UTC; naive input is an error."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


Seconds = Numeric(12, 3, asdecimal=True)
Money = Numeric(14, 2, asdecimal=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    default_queue: Mapped[str] = mapped_column(String(80), default="")
    default_number: Mapped[Optional[str]] = mapped_column(String(20))
    first_call_window_days: Mapped[int] = mapped_column(Integer, default=0)
    allowed_origins: Mapped[str] = mapped_column(Text, default="")
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Source(Base):
    __tablename__ = "sources"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_sources_project_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(40), default="other")
    short_label: Mapped[str] = mapped_column(String(40), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    project: Mapped[Project] = relationship()


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("source_id", "name", name="uq_campaigns_source_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    utm_campaign: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    source: Mapped[Source] = relationship()


class NumberPool(Base):
    __tablename__ = "number_pools"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_number_pools_project_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    source_id: Mapped[Optional[int]] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))
    hold_seconds: Mapped[int] = mapped_column(Integer, default=900)
    fallback_number: Mapped[Optional[str]] = mapped_column(String(20))
    exhausted_count: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # --- DNI (issue 6): when the snippet shows a promo code: off | exhausted | always
    promo_mode: Mapped[str] = mapped_column(String(10), default="off", server_default="off")


class TrackingNumber(Base):
    """A DID. ``kind`` static: mapped to a source/campaign; pool: member of a pool.

    A DID has at most one *active* row (partial unique index); retired
    mappings stay for the calls that reference them.
    """

    __tablename__ = "tracking_numbers"
    __table_args__ = (
        CheckConstraint("kind IN ('static', 'pool')", name="kind"),
        CheckConstraint(
            "(kind = 'static' AND pool_id IS NULL) OR (kind = 'pool' AND pool_id IS NOT NULL)",
            name="kind_target",
        ),
        Index("uq_tracking_numbers_active_number", "number", unique=True,
              sqlite_where=text("active = 1"), postgresql_where=text("active")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(20), index=True)
    kind: Mapped[str] = mapped_column(String(10), default="static")
    source_id: Mapped[Optional[int]] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))
    campaign_id: Mapped[Optional[int]] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    pool_id: Mapped[Optional[int]] = mapped_column(ForeignKey("number_pools.id", ondelete="RESTRICT"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    callerid_prefix: Mapped[bool] = mapped_column(Boolean, default=True)
    record: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    # --- DNI (issue 6): assignment hints kept by calltracking.dni.assign in the same transaction
    # as the PoolReservation rows (whose partial unique index is the real guarantee).
    pool_held: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    pool_released_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    source: Mapped[Optional[Source]] = relationship()
    campaign: Mapped[Optional[Campaign]] = relationship()
    pool: Mapped[Optional[NumberPool]] = relationship()
    project: Mapped[Project] = relationship()


class VisitorSession(Base):
    __tablename__ = "visitor_sessions"
    __table_args__ = (Index("ix_visitor_sessions_project_visitor", "project_id", "visitor_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    visitor_id: Mapped[str] = mapped_column(String(64))
    ga_client_id: Mapped[str] = mapped_column(String(64), default="")
    utm_source: Mapped[str] = mapped_column(String(200), default="")
    utm_medium: Mapped[str] = mapped_column(String(200), default="")
    utm_campaign: Mapped[str] = mapped_column(String(200), default="")
    utm_term: Mapped[str] = mapped_column(String(200), default="")
    utm_content: Mapped[str] = mapped_column(String(200), default="")
    gclid: Mapped[str] = mapped_column(String(200), default="")
    yclid: Mapped[str] = mapped_column(String(200), default="")
    keyword: Mapped[str] = mapped_column(String(200), default="")
    referrer: Mapped[str] = mapped_column(String(1000), default="")
    landing_page: Mapped[str] = mapped_column(String(1000), default="")
    user_agent: Mapped[str] = mapped_column(String(500), default="")
    device: Mapped[str] = mapped_column(String(20), default="")
    os: Mapped[str] = mapped_column(String(40), default="")
    browser: Mapped[str] = mapped_column(String(40), default="")
    ip: Mapped[str] = mapped_column(String(45), default="")
    source_id: Mapped[Optional[int]] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))
    first_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PoolReservation(Base):
    """A pool number held by a visitor session; live while ``released_at`` is NULL."""

    __tablename__ = "pool_reservations"
    __table_args__ = (
        Index("uq_pool_reservations_live_number", "tracking_number_id", unique=True,
              sqlite_where=text("released_at IS NULL"),
              postgresql_where=text("released_at IS NULL")),
        Index("ix_pool_reservations_number_released", "tracking_number_id", "released_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("number_pools.id", ondelete="CASCADE"), index=True)
    tracking_number_id: Mapped[int] = mapped_column(ForeignKey("tracking_numbers.id", ondelete="CASCADE"))
    session_id: Mapped[int] = mapped_column(ForeignKey("visitor_sessions.id", ondelete="CASCADE"), index=True)
    assigned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)


class PromoCode(Base):
    __tablename__ = "promo_codes"
    __table_args__ = (UniqueConstraint("project_id", "code", name="uq_promo_codes_project_code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(20))
    source_id: Mapped[Optional[int]] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))
    campaign_id: Mapped[Optional[int]] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    session_id: Mapped[Optional[int]] = mapped_column(ForeignKey("visitor_sessions.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    valid_from: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    valid_to: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)


class RoutingRule(Base):
    """Matched by ascending ``priority``; the first match gives queue or target.

    Empty match fields match anything. ``weekdays`` holds ISO weekday digits
    (1 = Monday … 7 = Sunday); times are in the project's time zone and a
    window may wrap midnight (22:00–06:00).
    """

    __tablename__ = "routing_rules"
    __table_args__ = (
        CheckConstraint("queue <> '' OR target <> ''", name="queue_or_target"),
        Index("ix_routing_rules_project_priority", "project_id", "priority"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    priority: Mapped[int] = mapped_column(Integer, default=100)
    source_id: Mapped[Optional[int]] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    campaign_id: Mapped[Optional[int]] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    keyword_regex: Mapped[str] = mapped_column(String(500), default="")
    utm_regex: Mapped[str] = mapped_column(String(500), default="")
    time_from: Mapped[Optional[dt.time]] = mapped_column(Time)
    time_to: Mapped[Optional[dt.time]] = mapped_column(Time)
    weekdays: Mapped[str] = mapped_column(String(7), default="1234567")
    queue: Mapped[str] = mapped_column(String(80), default="")
    target: Mapped[str] = mapped_column(String(200), default="")
    record: Mapped[Optional[bool]] = mapped_column(Boolean)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class CatalogueVersion(Base):
    """One row counting changes to what the AGI hooks cache (numbers, pools, projects, sources,
    campaigns, routing rules). Database triggers (migration 0009) bump it on every insert,
    delete and relevant update, whoever writes; the FastAGI server re-reads its catalogue
    only when the number moved."""

    __tablename__ = "catalogue_version"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class Operator(Base):
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


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_tags_project_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    color: Mapped[str] = mapped_column(String(20), default="")


class Call(Base):
    """One inbound call, keyed by (pbx_id, Linkedid). Fields: DESIGN.md's contract."""

    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("pbx_id", "linkedid", name="uq_calls_pbx_linkedid"),
        CheckConstraint("status IN ('in_progress', 'answered', 'missed')", name="status"),
        CheckConstraint("attribution IN ('static', 'dynamic', 'promo', 'none')", name="attribution"),
        CheckConstraint(
            "missed_reason IS NULL OR missed_reason IN "
            "('abandoned', 'timeout', 'no_operators', 'busy', 'failed')", name="missed_reason"),
        Index("ix_calls_project_started", "project_id", "started_at"),
        Index("ix_calls_started", "started_at"),
        Index("ix_calls_caller_started", "caller_number", "started_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    pbx_id: Mapped[str] = mapped_column(String(64))
    linkedid: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[Optional[int]] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    tracking_number_id: Mapped[Optional[int]] = mapped_column(ForeignKey("tracking_numbers.id", ondelete="SET NULL"))
    did: Mapped[str] = mapped_column(String(32), default="")
    caller_number: Mapped[str] = mapped_column(String(32), default="")
    caller_name: Mapped[str] = mapped_column(String(200), default="")
    source_id: Mapped[Optional[int]] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"), index=True)
    campaign_id: Mapped[Optional[int]] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    session_id: Mapped[Optional[int]] = mapped_column(ForeignKey("visitor_sessions.id", ondelete="SET NULL"))
    promo_code_id: Mapped[Optional[int]] = mapped_column(ForeignKey("promo_codes.id", ondelete="SET NULL"))
    routing_rule_id: Mapped[Optional[int]] = mapped_column(ForeignKey("routing_rules.id", ondelete="SET NULL"))
    attribution: Mapped[str] = mapped_column(String(10), default="none")
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
    status: Mapped[str] = mapped_column(String(12), default="in_progress")
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
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    project: Mapped[Optional[Project]] = relationship()
    source: Mapped[Optional[Source]] = relationship()
    campaign: Mapped[Optional[Campaign]] = relationship()
    operator: Mapped[Optional["Operator"]] = relationship()
    legs: Mapped[list["CallLeg"]] = relationship(back_populates="call", cascade="all, delete-orphan",
                                                 order_by="CallLeg.rung_at")
    tags: Mapped[list[Tag]] = relationship(secondary=call_tags)


class CallLeg(Base):
    """An operator rung, answered, or transferred to, within a call."""

    __tablename__ = "call_legs"
    __table_args__ = (
        UniqueConstraint("call_id", "uniqueid", name="uq_call_legs_call_uniqueid"),
        CheckConstraint("outcome IN ('ringing', 'answered', 'no_answer', 'busy', 'failed', 'cancelled')",
                        name="outcome"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    operator_id: Mapped[Optional[int]] = mapped_column(ForeignKey("operators.id", ondelete="SET NULL"), index=True)
    operator_name: Mapped[str] = mapped_column(String(200), default="")
    interface: Mapped[str] = mapped_column(String(200), default="")
    channel: Mapped[str] = mapped_column(String(200), default="")
    uniqueid: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(80), default="")
    kind: Mapped[str] = mapped_column(String(12), default="queue")
    rung_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    answered_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    ended_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    ring_seconds: Mapped[Optional[Decimal]] = mapped_column(Seconds)
    talk_seconds: Mapped[Optional[Decimal]] = mapped_column(Seconds)
    outcome: Mapped[str] = mapped_column(String(12), default="ringing")
    call: Mapped[Call] = relationship(back_populates="legs")


class AdSpend(Base):
    __tablename__ = "ad_spend"
    __table_args__ = (
        UniqueConstraint("project_id", "source_id", "campaign_id", "day", name="uq_ad_spend_key"),
        CheckConstraint("amount >= 0", name="amount_positive"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    campaign_id: Mapped[Optional[int]] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    day: Mapped[dt.date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="RUB")


class NotificationRule(Base):
    """Who is told what: missed-call mail/SMS/chat, digests, CRM webhook, GA4."""

    __tablename__ = "notification_rules"
    __table_args__ = (
        CheckConstraint("channel IN ('email', 'webhook', 'crm', 'ga4')", name="channel"),
        CheckConstraint("event IN ('missed_call', 'call_finished', 'digest_daily', 'digest_weekly')",
                        name="event"),
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


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('admin', 'supervisor', 'operator')", name="role"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(12))
    language: Mapped[str] = mapped_column(String(5), default="en")
    operator_id: Mapped[Optional[int]] = mapped_column(ForeignKey("operators.id", ondelete="SET NULL"))
    api_token_hash: Mapped[Optional[str]] = mapped_column(String(128), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: stored in the session cookie at login; logout and a password change increase it, which
    #: ends every session of the user made before
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class AuditLog(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    username: Mapped[str] = mapped_column(String(100), default="")
    action: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[Optional[str]] = mapped_column(String(40))
    details: Mapped[str] = mapped_column(Text, default="")


# --- Reports (issue 5, reports helper): rollup tables kept up to date by
# calltracking.reports.rollup.refresh_rollups(); see README "### Reports". ------

Index("ix_calls_updated_at", Call.updated_at)
Index("ix_calls_project_source_started", Call.project_id, Call.source_id, Call.started_at)

SecondsSum = Numeric(18, 3, asdecimal=True)
MoneySum = Numeric(18, 2, asdecimal=True)


class ReportDaily(Base):
    """Finished calls of one project and local day, split along one dimension.

    ``dim`` is source | campaign | keyword | operator | device | os | browser |
    ttc (time-to-call bucket) | all; ``key`` is the id (as text), the keyword,
    the device name or the bucket label ("" when unknown). The same dimensions
    with an ``@m`` suffix hold whole months (``day`` = the 1st), summed from
    the daily rows, so long ranges read few rows.
    """

    __tablename__ = "report_daily"
    __table_args__ = {"sqlite_with_rowid": False}   # rows clustered by the primary key
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"),
                                            primary_key=True)
    dim: Mapped[str] = mapped_column(String(12), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    missed: Mapped[int] = mapped_column(Integer, default=0)
    first_calls: Mapped[int] = mapped_column(Integer, default=0)
    repeat_calls: Mapped[int] = mapped_column(Integer, default=0)
    wait_sum: Mapped[Decimal] = mapped_column(SecondsSum, default=0)
    talk_sum: Mapped[Decimal] = mapped_column(SecondsSum, default=0)
    deals: Mapped[int] = mapped_column(Integer, default=0)
    value_sum: Mapped[Decimal] = mapped_column(MoneySum, default=0)
    missed_rung: Mapped[int] = mapped_column(Integer, default=0)


class ReportHourly(Base):
    """Finished calls and peak concurrency of one project and local hour."""

    __tablename__ = "report_hourly"
    __table_args__ = {"sqlite_with_rowid": False}
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"),
                                            primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    hour: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    weekday: Mapped[int] = mapped_column(Integer)  # ISO: 1 = Monday … 7 = Sunday
    calls: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    missed: Mapped[int] = mapped_column(Integer, default=0)
    peak_concurrent: Mapped[int] = mapped_column(Integer, default=0)


class ReportRollupState(Base):
    """One row: calls updated after ``watermark`` are not yet in the rollups."""

    __tablename__ = "report_rollup_state"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    watermark: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    refreshed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)

# --- end of reports block ---------------------------------------------------------


# --- DNI (issue 6, dynamic number insertion): free pool numbers in assignment order
# (never released first, then least recently released); see calltracking/dni/assign.py. ----
Index("ix_tracking_numbers_pool_free", TrackingNumber.pool_id, TrackingNumber.pool_held,
      TrackingNumber.pool_released_at, TrackingNumber.id)
Index("ix_pool_reservations_live_seen", PoolReservation.pool_id, PoolReservation.released_at,
      PoolReservation.last_seen_at)
Index("ix_promo_codes_session", PromoCode.session_id)
# --- end of DNI block ---------------------------------------------------------------


# --- Jobs, recordings and integrations (issue 7): calltracking/jobs/scheduler.py,
# recordings.py, notify.py, integrations.py. ----------------------------------------
from sqlalchemy.orm import backref  # noqa: E402


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


class Delivery(Base):
    """One outgoing mail or HTTP request with retries; ``dead`` = the dead-letter list."""

    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint("channel IN ('email', 'webhook', 'crm', 'ga4')", name="channel"),
        CheckConstraint("status IN ('pending', 'sent', 'dead')", name="status"),
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
    status: Mapped[str] = mapped_column(String(10), default="pending")
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
        CheckConstraint("status IN ('ok', 'missing', 'error', 'purged')", name="status"),
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
# --- end of jobs/integrations block ------------------------------------------------


# --- AMI listener (issue 4): stored events of calls, live-call index, listener state.
# Written by calltracking.callstore.store; see README "## AMI listener". -----------------
from sqlalchemy import BigInteger  # noqa: E402

class AmiEvent(Base):
    """An AMI event that changed a call, kept so a restart resumes and `ami rebuild` re-derives."""

    __tablename__ = "ami_events"
    __table_args__ = (
        Index("ix_ami_events_pbx_linkedid", "pbx_id", "linkedid"),
        Index("ix_ami_events_at", "at"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    pbx_id: Mapped[str] = mapped_column(String(64))
    linkedid: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    event: Mapped[str] = mapped_column(String(40))
    data: Mapped[str] = mapped_column(Text)


class AmiCall(Base):
    """Every Linkedid the listener followed; ``live`` until all its channels hung up."""

    __tablename__ = "ami_calls"
    __table_args__ = (Index("ix_ami_calls_pbx_live", "pbx_id", "live"),)
    pbx_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(64), primary_key=True)
    live: Mapped[bool] = mapped_column(Boolean, default=True)
    recorded: Mapped[bool] = mapped_column(Boolean, default=False)
    first_event_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    last_event_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)


class AmiListenerState(Base):
    """What the listener of one PBX saw: connection times, counters, event classes, clock skew."""

    __tablename__ = "ami_listener_state"
    pbx_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    connected_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    disconnected_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    last_event_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    events: Mapped[int] = mapped_column(BigInteger, default=0)
    unknown_events: Mapped[int] = mapped_column(BigInteger, default=0)
    malformed_frames: Mapped[int] = mapped_column(BigInteger, default=0)
    without_timestamp: Mapped[int] = mapped_column(BigInteger, default=0)
    clock_skew_ms: Mapped[Optional[int]] = mapped_column(Integer)
    classes: Mapped[str] = mapped_column(Text, default="{}")
    stats: Mapped[str] = mapped_column(Text, default="{}")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- Outbound calls (issue 5: callbacks detected by the AMI listener; outbound-callbacks
# helper). Calls an operator placed (own phone, click-to-call, or a context listed in
# [asterisk] outbound_contexts), kept apart from the inbound `calls` table that reports,
# rollups and the journal read. Written by calltracking.callstore.store (upsert by
# (pbx_id, linkedid)); read by calltracking.calls.missed. Migration 0007. -------------------
class OutboundCall(Base):
    """One call placed by an operator to an outside number (never counted as an inbound call)."""

    __tablename__ = "outbound_calls"
    __table_args__ = (
        UniqueConstraint("pbx_id", "linkedid", name="uq_outbound_calls_pbx_linkedid"),
        CheckConstraint("status IN ('in_progress', 'answered', 'missed')", name="status"),
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
    status: Mapped[str] = mapped_column(String(12), default="in_progress")
    originated_by_us: Mapped[bool] = mapped_column(Boolean, default=False)
    #: the missed call a click-to-call was made for (CT_CALLBACK_FOR), when it still exists
    callback_for_id: Mapped[Optional[int]] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    operator: Mapped[Optional[Operator]] = relationship()
# --- end of outbound calls block ------------------------------------------------------
