"""The AMI listener's tables: the events that changed a call (replayed on restart and by
``ami rebuild``), every Linkedid it followed, and what it saw per PBX. Written by
:mod:`calltracking.callstore`."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from calltracking.models.base import Base, UTCDateTime, utcnow

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
