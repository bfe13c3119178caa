"""How far transcription is behind: the backlog and the transcripts per status, for the jobs
page, ``/metrics`` and ``calltracking doctor``.

The backlog is the number of recorded calls (``recording_info`` ``ok``) with no transcript
yet or whose last attempt failed and will be tried again; 0 when ``[transcripts] backend`` is
``none`` (nothing would ever take them).
"""
from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from calltracking.enums import TranscriptStatus
from calltracking.models import Call, RecordingInfo, Transcript


def pending_query(cfg):
    """(call id, recording file) of the calls to transcribe, attempts below ``cfg.max_attempts``."""
    return (select(Call.id, RecordingInfo.file)
            .join(RecordingInfo, RecordingInfo.call_id == Call.id)
            .outerjoin(Transcript, Transcript.call_id == Call.id)
            .where(RecordingInfo.status == "ok", RecordingInfo.file != "",
                   or_(Transcript.call_id.is_(None),
                       (Transcript.status == TranscriptStatus.ERROR) & (Transcript.attempts < cfg.max_attempts))))


def backlog(session: Session, cfg) -> int:
    """Recorded calls waiting for a transcript (0 when the backend is ``none``)."""
    if cfg is None or cfg.backend == "none":
        return 0
    return session.scalar(select(func.count()).select_from(pending_query(cfg).subquery())) or 0


def figures(session: Session, cfg) -> dict:
    """``{"backend", "backlog", "statuses": {status: n}}`` (every status listed, 0 included)."""
    counts = dict(session.execute(select(Transcript.status, func.count()).group_by(Transcript.status)).all())
    return {"backend": cfg.backend if cfg is not None else "none", "backlog": backlog(session, cfg),
            "statuses": {st.value: counts.get(st.value, 0) for st in TranscriptStatus}}
