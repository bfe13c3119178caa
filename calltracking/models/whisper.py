"""Whisper settings: what the operator hears before a call is connected.

A project's row turns the whisper on and gives its text template and ``espeak-ng`` voice; a
source's row can turn it off for that source, replace the text, or name an uploaded recording
that is played instead of speech. The rules and the audio files: :mod:`calltracking.whisper`.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from calltracking.enums import WhisperVoice, check_in
from calltracking.models.base import Base, UTCDateTime, utcnow

#: The text when a project gives none: the source's name, then the campaign's.
DEFAULT_TEMPLATE = "{source}, {campaign}"


class WhisperProject(Base):
    """A project's whisper: on or off, the text template, the voice."""

    __tablename__ = "whisper_projects"
    __table_args__ = (CheckConstraint(check_in("voice", WhisperVoice), name="voice"),)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    template: Mapped[str] = mapped_column(String(300), default=DEFAULT_TEMPLATE)
    voice: Mapped[str] = mapped_column(String(10), default=WhisperVoice.EN)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class WhisperSource(Base):
    """A source's whisper: off for this source, its own text (a template too), or an
    uploaded recording (the converted file's name in the whisper directory; '' none)."""

    __tablename__ = "whisper_sources"
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    text: Mapped[str] = mapped_column(String(300), default="")
    upload: Mapped[str] = mapped_column(String(100), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
