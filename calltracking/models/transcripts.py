"""Transcripts of recorded calls and keyword spotting.

A call has at most one ``transcripts`` row (its backend, status, error, attempts, the whole
text that the search indexes, and whether the operator said the greeting) and its phrases, one
per side and stretch of speech. A project's ``keyword_lists`` name words and ``*`` stems; each
word found in a phrase is a ``keyword_mentions`` row and puts the list's tag on the call. The
rules: :mod:`calltracking.transcripts`.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Optional

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from calltracking.enums import TranscriptSide, TranscriptStatus, check_in
from calltracking.models.base import Base, Seconds, UTCDateTime, utcnow


class Transcript(Base):
    """A call's transcript: ``status`` a :class:`TranscriptStatus`; ``text`` all its phrases in
    time order (what the search indexes); ``greeting_said`` None when the project has no
    greeting list (or the transcript has no operator side), else whether the operator said one
    of its words in the first ``[transcripts] greeting_seconds``."""

    __tablename__ = "transcripts"
    __table_args__ = (CheckConstraint(check_in("status", TranscriptStatus), name="status"),
                      Index("ix_transcripts_status_attempts", "status", "attempts"))
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    backend: Mapped[str] = mapped_column(String(20), default="")
    status: Mapped[str] = mapped_column(String(10), default=TranscriptStatus.ERROR)
    error: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str] = mapped_column(Text, default="")
    greeting_said: Mapped[Optional[bool]] = mapped_column(Boolean)
    started_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    finished_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class TranscriptPhrase(Base):
    """One stretch of speech of one side (:class:`TranscriptSide`), seconds from the start."""

    __tablename__ = "transcript_phrases"
    __table_args__ = (CheckConstraint(check_in("side", TranscriptSide), name="side"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("transcripts.call_id", ondelete="CASCADE"), index=True)
    side: Mapped[str] = mapped_column(String(10))
    start_seconds: Mapped[Decimal] = mapped_column(Seconds)
    end_seconds: Mapped[Decimal] = mapped_column(Seconds)
    text: Mapped[str] = mapped_column(Text, default="")


class KeywordList(Base):
    """A project's word list: one word or ``stem*`` per line; a call whose transcript has one
    gets the tag ``tag`` (the list's name when empty). ``greeting``: the list is the greeting
    the operator must say (:attr:`Transcript.greeting_said`)."""

    __tablename__ = "keyword_lists"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    words: Mapped[str] = mapped_column(Text, default="")
    tag: Mapped[str] = mapped_column(String(100), default="")
    greeting: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class KeywordMention(Base):
    """A word of a list said in a call: the list's word as written (``достав*``), the side and
    the phrase's start in seconds."""

    __tablename__ = "keyword_mentions"
    __table_args__ = (CheckConstraint(check_in("side", TranscriptSide), name="side"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("keyword_lists.id", ondelete="CASCADE"), index=True)
    word: Mapped[str] = mapped_column(String(100))
    side: Mapped[str] = mapped_column(String(10))
    at_seconds: Mapped[Decimal] = mapped_column(Seconds)
