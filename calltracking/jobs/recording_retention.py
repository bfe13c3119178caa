"""Recording retention: the ``retention`` job deletes the files of old calls; the calls stay.

A call's recording is kept ``keep_days`` after the call started: per project
(``recording_policies``, set with :func:`set_keep_days`), else ``[recordings] keep_days``;
0 keeps it forever. :func:`apply_retention` deletes the files of older calls — the original(s)
found by :func:`calltracking.jobs.recording_files.locate` and every file ``recording_info``
names, but never one outside ``[recordings] dir`` — and marks the row ``purged``. A file that
cannot be deleted leaves the row as it was, with the error, and is tried again next run.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Optional

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from calltracking.db import session_scope
from calltracking.jobs.recording_files import inside, locate
from calltracking.models import Call, Project, RecordingInfo, RecordingPolicy, utcnow

log = logging.getLogger(__name__)


def keep_days_by_project(config, session: Session) -> dict[Optional[int], int]:
    """keep_days per project id (None: calls without a project): its policy, else the default."""
    out: dict[Optional[int], int] = {None: config.recordings.keep_days}
    overrides = {p.project_id: p.keep_days for p in session.scalars(select(RecordingPolicy))}
    for pid in session.scalars(select(Project.id)):
        out[pid] = overrides.get(pid, config.recordings.keep_days)
    return out


def set_keep_days(session: Session, project: Project, days: Optional[int]) -> None:
    """Per-project retention; None = use ``[recordings] keep_days``."""
    row = session.get(RecordingPolicy, project.id)
    if days is None:
        if row is not None:
            session.delete(row)
        return
    if days < 0:
        raise ValueError("keep_days must be >= 0 (0 = keep forever)")
    if row is None:
        session.add(RecordingPolicy(project_id=project.id, keep_days=days))
    else:
        row.keep_days = days


def purge_call(config, session: Session, call: Call, now: dt.datetime) -> int:
    """Delete a call's recording files; the call stays, marked ``purged``. Returns files deleted.
    A file the row names outside ``[recordings] dir`` is left alone (and logged)."""
    directory = config.recordings.dir
    info = session.get(RecordingInfo, call.id)
    paths = set(locate(directory, call))
    if info is not None:
        named = [info.file] if info.file else []
        named += json.loads(info.source_files or "[]")
        for f in named:
            if inside(directory, f):
                paths.add(Path(f))
            else:
                log.warning("recording of call %s: %s is outside [recordings] dir %s; not deleted",
                            call.id, f, directory)
    else:
        info = RecordingInfo(call_id=call.id, status="purged", file="", format="", source_files="",
                             error="", attempts=0)
        session.add(info)
    deleted = 0
    errors = []
    for p in paths:
        try:
            p.unlink()
            deleted += 1
        except FileNotFoundError:
            pass
        except OSError as e:
            errors.append(f"{p}: {e.strerror}")
    if errors:  # keep it visible and try again next time
        info.error = "cannot delete " + "; ".join(errors)
        return deleted
    info.status, info.file, info.purged_at, info.error = "purged", "", now, ""
    return deleted


def apply_retention(config, session_factory, now: dt.datetime | None = None, limit: int = 1000) -> int:
    """Purge the recordings older than each project's keep_days; returns calls purged."""
    now = now or utcnow()
    purged = 0
    with session_scope(session_factory) as s:
        policy = keep_days_by_project(config, s)
    for pid, days in policy.items():
        if not days:
            continue
        cutoff = now - dt.timedelta(days=days)
        with session_scope(session_factory) as s:
            stmt = (select(Call).outerjoin(RecordingInfo, RecordingInfo.call_id == Call.id)
                    .where(Call.started_at < cutoff,
                           Call.project_id.is_(None) if pid is None else Call.project_id == pid,
                           or_(RecordingInfo.call_id.is_(None), RecordingInfo.status != "purged"),
                           or_(Call.recording_file != "", RecordingInfo.call_id.is_not(None)))
                    .limit(limit))
            for call in s.scalars(stmt).all():
                purge_call(config, s, call, now)
                info = s.get(RecordingInfo, call.id)
                purged += info.status == "purged"
    return purged
