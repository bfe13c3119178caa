"""A call's transcript as the call card and the API show it: status, the phrases in time order
(caller, operator or mixed, with start and end seconds), the keyword mentions and the greeting."""
from __future__ import annotations

from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from calltracking.models import KeywordList, KeywordMention, Transcript
from calltracking.transcripts.store import phrases_of


def transcript_of(session: Session, call_id: int) -> Optional[dict]:
    """None when the call has no transcript (not transcribed yet, or transcripts are off)."""
    row = session.get(Transcript, call_id)
    if row is None:
        return None
    mentions = session.execute(
        select(KeywordMention, KeywordList.name).join(KeywordList, KeywordList.id == KeywordMention.list_id)
        .where(KeywordMention.call_id == call_id).order_by(KeywordMention.at_seconds, KeywordMention.id)).all()
    return {
        "status": row.status, "backend": row.backend, "error": row.error, "attempts": row.attempts,
        "greeting_said": row.greeting_said, "finished_at": row.finished_at,
        "phrases": [{"side": p.side, "start": float(p.start_seconds), "end": float(p.end_seconds), "text": p.text}
                    for p in (phrases_of(session, call_id) if row.status == "ok" else [])],
        "mentions": [{"list": name, "word": m.word, "side": m.side, "at": float(m.at_seconds)}
                     for m, name in mentions],
    }


def as_json(session: Session, call_id: int) -> Optional[dict]:
    """:func:`transcript_of` with the time as ISO 8601 UTC (the API)."""
    t = transcript_of(session, call_id)
    if t is not None and t["finished_at"] is not None:
        t["finished_at"] = t["finished_at"].isoformat()
    return t
