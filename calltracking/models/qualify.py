"""Qualified calls: the per-project *target rules* (:mod:`calltracking.qualify`) and the tags
each rule adds (``target_rule_tags``). A call's verdict is kept on the call itself
(``calls.is_target``, ``calls.target_rule_id``, ``calls.qualified_at``)."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table, Time
from sqlalchemy.orm import Mapped, mapped_column, relationship

from calltracking.models.base import Base, UTCDateTime, utcnow
from calltracking.models.catalogue import Tag

target_rule_tags = Table(
    "target_rule_tags",
    Base.metadata,
    Column("rule_id", ForeignKey("target_rules.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
)


class TargetRule(Base):
    """A rule that qualifies a project's finished calls. Every condition is optional (NULL, ''
    or false = any call) and they are AND-ed; a matching rule marks the call a target call
    (``mark_target``) and/or adds its tags. ``weekdays`` holds ISO weekday digits (1 = Monday);
    ``time_from``/``time_to`` are local times of the project's zone (a window may wrap midnight).
    The rule itself: :mod:`calltracking.qualify.rules`."""

    __tablename__ = "target_rules"
    __table_args__ = (Index("ix_target_rules_project_position", "project_id", "position"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=100)
    min_talk_seconds: Mapped[Optional[int]] = mapped_column(Integer)
    first_call_only: Mapped[bool] = mapped_column(Boolean, default=False)
    source_id: Mapped[Optional[int]] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    campaign_id: Mapped[Optional[int]] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    queue: Mapped[str] = mapped_column(String(80), default="")
    tag_id: Mapped[Optional[int]] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"))
    weekdays: Mapped[str] = mapped_column(String(7), default="1234567")
    time_from: Mapped[Optional[dt.time]] = mapped_column(Time)
    time_to: Mapped[Optional[dt.time]] = mapped_column(Time)
    mark_target: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    add_tags: Mapped[list[Tag]] = relationship(secondary=target_rule_tags, order_by=Tag.name)
