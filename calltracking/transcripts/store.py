"""A call's transcript written, or a failed attempt recorded.

A success replaces the call's phrases and text in one transaction (``status`` ok, the error
cleared); a failure keeps what was there, counts the attempt and stores the reason, and after
``[transcripts] max_attempts`` attempts the status is ``failed`` (not tried again).
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import delete
from sqlalchemy.orm import Session

from calltracking.enums import TranscriptStatus
from calltracking.models import Transcript, TranscriptPhrase

MAX_ERROR = 2000


def _row(session: Session, call_id: int) -> Transcript:
    row = session.get(Transcript, call_id)
    if row is None:
        row = Transcript(call_id=call_id, backend="", status=TranscriptStatus.ERROR, error="", attempts=0, text="")
        session.add(row)
    return row


def save(session: Session, call_id: int, backend: str, phrases: list[tuple[str, float, float, str]],
         started: dt.datetime, finished: dt.datetime) -> Transcript:
    """Store the phrases ``(side, start, end, text)`` of a call; the text the search indexes is
    every phrase in time order."""
    row = _row(session, call_id)
    session.execute(delete(TranscriptPhrase).where(TranscriptPhrase.call_id == call_id))
    ordered = sorted(phrases, key=lambda p: (p[1], p[0]))
    row.backend, row.status, row.error = backend, TranscriptStatus.OK, ""
    row.attempts = (row.attempts or 0) + 1
    row.text = "\n".join(t for _s, _a, _b, t in ordered)
    row.started_at, row.finished_at = started, finished
    session.flush()
    for side, start, end, text in ordered:
        session.add(TranscriptPhrase(call_id=call_id, side=side, start_seconds=Decimal(str(round(start, 3))),
                                     end_seconds=Decimal(str(round(end, 3))), text=text))
    session.flush()
    return row


def fail(session: Session, call_id: int, backend: str, error: str, max_attempts: int,
         started: dt.datetime, finished: dt.datetime) -> Transcript:
    """Record a failed attempt and its reason; ``failed`` after ``max_attempts``."""
    row = _row(session, call_id)
    row.attempts = (row.attempts or 0) + 1
    row.backend, row.error = backend, (error or "unknown error")[:MAX_ERROR]
    if row.status != TranscriptStatus.OK:
        row.status = TranscriptStatus.FAILED if row.attempts >= max_attempts else TranscriptStatus.ERROR
    row.started_at, row.finished_at = started, finished
    session.flush()
    return row


def phrases_of(session: Session, call_id: int) -> list[TranscriptPhrase]:
    """The call's phrases in time order (caller first on a tie)."""
    from sqlalchemy import select

    return list(session.scalars(select(TranscriptPhrase).where(TranscriptPhrase.call_id == call_id)
                                .order_by(TranscriptPhrase.start_seconds, TranscriptPhrase.side,
                                          TranscriptPhrase.id)))
