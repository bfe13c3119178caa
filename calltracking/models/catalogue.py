"""The catalogue: projects, their sources and campaigns, the tracking numbers and pools that
attribute a call, promo codes, routing rules and tags. The FastAGI server caches all of it
(:mod:`calltracking.attribution.catalogue`) and re-reads it when ``catalogue_version`` moves.
"""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import (
    BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, Time,
    UniqueConstraint, text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from calltracking.enums import NumberKind, PromoMode, SourceChannel, check_in
from calltracking.models.base import Base, UTCDateTime, utcnow

class Project(Base):
    """One business (or site) whose calls are tracked: its time zone, default queue, origins."""

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
    """Where callers come from ("Google Ads", "Billboard"); ``channel`` is a :class:`SourceChannel`."""

    __tablename__ = "sources"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_sources_project_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(40), default=SourceChannel.OTHER)
    short_label: Mapped[str] = mapped_column(String(40), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # created by a visit whose tags named no source (calltracking/sources.py)
    auto: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    project: Mapped[Project] = relationship()


class SourceAlias(Base):
    """Which source a visit's ``utm_source`` / ``utm_medium`` (lower case) goes to when no
    source has that name: written when a visit creates an automatic source, moved by a merge,
    added for the old name by a rename or a merge (``utm_medium`` ``*`` = any medium).
    See :mod:`calltracking.sources`."""

    __tablename__ = "source_aliases"
    __table_args__ = (UniqueConstraint("project_id", "utm_source", "utm_medium", name="uq_source_aliases_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    utm_source: Mapped[str] = mapped_column(String(200))
    utm_medium: Mapped[str] = mapped_column(String(200))
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)


class Campaign(Base):
    """A campaign within a source; matched to a visit by ``utm_campaign``."""

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
    """Numbers shown to website visitors one at a time (DNI); a number stays with the
    visitor ``hold_seconds`` after their last heartbeat. When none is free the snippet shows
    ``fallback_number`` (and ``exhausted_count`` grows)."""

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
    promo_mode: Mapped[str] = mapped_column(String(10), default=PromoMode.OFF,
                                            server_default=PromoMode.OFF.value)


class TrackingNumber(Base):
    """A DID. ``kind`` (:class:`NumberKind`) static: mapped to a source/campaign; pool: member of a pool.

    A DID has at most one *active* row (partial unique index); retired
    mappings stay for the calls that reference them.
    """

    __tablename__ = "tracking_numbers"
    __table_args__ = (
        CheckConstraint(check_in("kind", NumberKind), name="kind"),
        CheckConstraint(
            f"(kind = '{NumberKind.STATIC}' AND pool_id IS NULL) "
            f"OR (kind = '{NumberKind.POOL}' AND pool_id IS NOT NULL)",
            name="kind_target",
        ),
        Index("uq_tracking_numbers_active_number", "number", unique=True,
              sqlite_where=text("active = 1"), postgresql_where=text("active")),
        # free pool numbers in assignment order: never released first, then least recently
        # released (calltracking/dni/assign.py)
        Index("ix_tracking_numbers_pool_free", "pool_id", "pool_held", "pool_released_at", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(20), index=True)
    kind: Mapped[str] = mapped_column(String(10), default=NumberKind.STATIC)
    source_id: Mapped[Optional[int]] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))
    campaign_id: Mapped[Optional[int]] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    pool_id: Mapped[Optional[int]] = mapped_column(ForeignKey("number_pools.id", ondelete="RESTRICT"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    callerid_prefix: Mapped[bool] = mapped_column(Boolean, default=True)
    record: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    # pool assignment hints, kept by calltracking.dni.assign in the same transaction as the
    # PoolReservation rows (whose partial unique index is the real guarantee)
    pool_held: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    pool_released_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    source: Mapped[Optional[Source]] = relationship()
    campaign: Mapped[Optional[Campaign]] = relationship()
    pool: Mapped[Optional[NumberPool]] = relationship()
    project: Mapped[Project] = relationship()


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
    #: Matches only calls forwarded from this number (E.164); '' = any call.
    forwarded_from: Mapped[str] = mapped_column(String(32), default="", server_default="")
    time_from: Mapped[Optional[dt.time]] = mapped_column(Time)
    time_to: Mapped[Optional[dt.time]] = mapped_column(Time)
    weekdays: Mapped[str] = mapped_column(String(7), default="1234567")
    queue: Mapped[str] = mapped_column(String(80), default="")
    target: Mapped[str] = mapped_column(String(200), default="")
    record: Mapped[Optional[bool]] = mapped_column(Boolean)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class PromoCode(Base):
    """A code the caller types in the IVR: attributes the call to the code's source/campaign, or
    to the visit (``session_id``) it was shown in (see :mod:`calltracking.attribution.promo`)."""

    __tablename__ = "promo_codes"
    __table_args__ = (
        UniqueConstraint("project_id", "code", name="uq_promo_codes_project_code"),
        Index("ix_promo_codes_session", "session_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(20))
    source_id: Mapped[Optional[int]] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))
    campaign_id: Mapped[Optional[int]] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    session_id: Mapped[Optional[int]] = mapped_column(ForeignKey("visitor_sessions.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    valid_from: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    valid_to: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)


class Tag(Base):
    """A label on calls (``call_tags``): put by operators, the IVR or a target rule. A
    *predefined* tag has a ``color`` (``#rrggbb``) and a ``description``; ``offered`` puts it in
    the call card's tag picker (:mod:`calltracking.qualify.tags`)."""

    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_tags_project_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    color: Mapped[str] = mapped_column(String(20), default="")
    description: Mapped[str] = mapped_column(String(500), default="", server_default="")
    offered: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class CatalogueVersion(Base):
    """One row counting changes to what the AGI hooks cache (numbers, pools, projects, sources,
    campaigns, routing rules). Database triggers (migrations/versions/0009_catalogue_version.py) bump it on every insert,
    delete and relevant update, whoever writes; the FastAGI server re-reads its catalogue
    only when the number moved."""

    __tablename__ = "catalogue_version"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
