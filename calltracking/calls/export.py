"""The call-record contract of DESIGN.md as plain dicts (CLI, API and exports)."""
from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from calltracking import csvsafe
from calltracking.jobs.recording_files import recording_name
from calltracking.models import Call

#: Column order of ``calls list`` (table/csv) and keys of its JSON objects.
FIELDS = (
    "pbx_id", "linkedid", "project", "did", "caller", "caller_name", "forwarded_from", "source",
    "campaign", "attribution", "queue", "started_at", "queued_at", "answered_at", "ended_at",
    "wait_seconds", "queue_wait_seconds", "talk_seconds", "hold_seconds", "status",
    "missed_reason", "operator", "first_call", "time_to_call_seconds", "recording", "is_target",
)
TABLE_FIELDS = ("started_at", "linkedid", "did", "caller", "source", "queue", "status",
                "missed_reason", "operator", "wait_seconds", "talk_seconds")


def _num(v):
    if v is None:
        return None
    if isinstance(v, Decimal):
        return float(v)
    return v


def _time(v: dt.datetime | None):
    return v.astimezone(dt.timezone.utc).isoformat() if v else None


def call_to_dict(c: Call, with_legs: bool = True) -> dict:
    d = {
        "pbx_id": c.pbx_id,
        "linkedid": c.linkedid,
        "project": c.project.key if c.project else None,
        "did": c.did,
        "caller": c.caller_number,
        "caller_name": c.caller_name,
        "forwarded_from": c.forwarded_from or None,
        "source": c.source.name if c.source else None,
        "campaign": c.campaign.name if c.campaign else None,
        "attribution": c.attribution,
        "queue": c.queue or None,
        "started_at": _time(c.started_at),
        "queued_at": _time(c.queued_at),
        "answered_at": _time(c.answered_at),
        "ended_at": _time(c.ended_at),
        "wait_seconds": _num(c.wait_seconds),
        "queue_wait_seconds": _num(c.queue_wait_seconds),
        "talk_seconds": _num(c.talk_seconds),
        "hold_seconds": _num(c.hold_seconds),
        "status": c.status,
        "missed_reason": c.missed_reason,
        "operator": c.operator_name or None,
        "first_call": c.first_call,
        "time_to_call_seconds": _num(c.time_to_call_seconds),
        "recording": recording_name(c) or None,
        "is_target": bool(c.is_target),
    }
    if with_legs:
        d["tags"] = sorted(t.name for t in c.tags)
        d["legs"] = [
            {
                "operator": leg.operator_name or None,
                "interface": leg.interface,
                "queue": leg.queue or None,
                "kind": leg.kind,
                "rung_at": _time(leg.rung_at),
                "answered_at": _time(leg.answered_at),
                "ended_at": _time(leg.ended_at),
                "ring_seconds": _num(leg.ring_seconds),
                "talk_seconds": _num(leg.talk_seconds),
                "outcome": leg.outcome,
            }
            for leg in c.legs
        ]
    return d


def outcome(c: Call) -> dict:
    """What people set on a call (the call card, the API), as JSON values: tags a list of names."""
    return {"tags": sorted(t.name for t in c.tags), "value": None if c.value is None else str(c.value),
            "reason": c.closed_reason or "", "comment": c.comment or ""}


def audit_values(c: Call, changed) -> dict:
    """The audit log's record of an edit of ``changed`` fields: their new values, tags as a JSON list."""
    now = outcome(c)
    return {k: now[k] for k in changed if k in now}


def query_calls(session: Session, start: dt.datetime | None = None, end: dt.datetime | None = None,
                project_id: int | None = None, limit: int | None = None):
    stmt = (select(Call).options(selectinload(Call.legs), selectinload(Call.tags),
                                 selectinload(Call.project), selectinload(Call.source),
                                 selectinload(Call.campaign), selectinload(Call.recording_info))
            .order_by(Call.started_at, Call.id))
    if start is not None:
        stmt = stmt.where(Call.started_at >= start)
    if end is not None:
        stmt = stmt.where(Call.started_at < end)
    if project_id is not None:
        stmt = stmt.where(Call.project_id == project_id)
    if limit:
        stmt = stmt.limit(limit)
    return session.scalars(stmt).all()


def render(calls: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(calls, ensure_ascii=False, indent=1)
    if fmt == "csv":
        out = io.StringIO()
        w = csvsafe.writer(out, lineterminator="\n")
        w.writerow(FIELDS)
        for c in calls:
            w.writerow([c.get(k) for k in FIELDS])
        return out.getvalue()
    return render_table([{k: c.get(k) for k in TABLE_FIELDS} for c in calls], TABLE_FIELDS)


def render_table(rows: list[dict], columns) -> str:
    def cell(v):
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.1f}"
        return str(v).replace("\n", " ")

    grid = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in grid]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in grid]
    return "\n".join(lines)
