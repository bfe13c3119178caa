"""Dynamic number insertion: website visits and the pool numbers they hold
(:mod:`calltracking.dni`)."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from calltracking.models.base import Base, UTCDateTime, utcnow

class VisitorSession(Base):
    """One website visitor of a project (``visitor_id`` from the snippet): the visit's UTM tags,
    click ids, landing page and parsed User-Agent (``device`` is a :class:`Device`, "" when the
    browser sent none). A call to the pool number the visitor held is attributed to this."""

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
        # a pool's expired live reservations (calltracking.dni.statements.EXPIRED)
        Index("ix_pool_reservations_live_seen", "pool_id", "released_at", "last_seen_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("number_pools.id", ondelete="CASCADE"), index=True)
    tracking_number_id: Mapped[int] = mapped_column(ForeignKey("tracking_numbers.id", ondelete="CASCADE"))
    session_id: Mapped[int] = mapped_column(ForeignKey("visitor_sessions.id", ondelete="CASCADE"), index=True)
    assigned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)


class DniSnippetPing(Base):
    """Where and when the website snippet last ran: one row per (project, page origin), kept by
    :mod:`calltracking.dni.snippet_pings` (``origin`` normalised ``scheme://host[:port]``;
    ``last_path`` the page's path without its query; ``pings`` the page loads counted)."""

    __tablename__ = "dni_snippet_pings"
    __table_args__ = (UniqueConstraint("project_id", "origin", name="uq_dni_snippet_pings_project_origin"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    origin: Mapped[str] = mapped_column(String(255))
    last_path: Mapped[str] = mapped_column(String(500), default="")
    version: Mapped[str] = mapped_column(String(20), default="")
    pings: Mapped[int] = mapped_column(BigInteger, default=0)
    first_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
