"""The call journal: filters and keyset pagination (fast on millions of calls).

Calls are listed newest first, ordered by ``(started_at, id)``. A page is fetched with a
cursor (the key of the last row shown) instead of an OFFSET, so the first, any next and the
last page cost the same: an index range scan on ``ix_calls_started`` /
``ix_calls_project_started`` of ``limit + 1`` rows.
"""
from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field
from typing import Iterator, Optional

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session, selectinload

from calltracking import phone
from calltracking.models import Call, CallLeg, Tag, call_tags

STATUSES = ("in_progress", "answered", "missed")


class JournalError(ValueError):
    """A filter or cursor value is invalid (message is user-facing)."""


@dataclass
class JournalFilter:
    start: Optional[dt.datetime] = None         # aware UTC, inclusive
    end: Optional[dt.datetime] = None           # aware UTC, exclusive
    project_id: Optional[int] = None
    source_id: Optional[int] = None
    campaign_id: Optional[int] = None
    status: Optional[str] = None
    operator_id: Optional[int] = None
    first_call: Optional[bool] = None           # True first, False repeat
    tag: Optional[str] = None
    caller: Optional[str] = None                # any readable form; normalized when possible
    own_operator_id: Optional[int] = None       # operators see only the calls they took or were rung for
    region: str = "RU"
    extra: dict = field(default_factory=dict)

    def conditions(self) -> list:
        conds = []
        if self.start is not None:
            conds.append(Call.started_at >= self.start)
        if self.end is not None:
            conds.append(Call.started_at < self.end)
        if self.project_id is not None:
            conds.append(Call.project_id == self.project_id)
        if self.source_id is not None:
            conds.append(Call.source_id == self.source_id)
        if self.campaign_id is not None:
            conds.append(Call.campaign_id == self.campaign_id)
        if self.status:
            if self.status not in STATUSES:
                raise JournalError(f"invalid status {self.status!r}")
            conds.append(Call.status == self.status)
        if self.operator_id is not None:
            conds.append(Call.operator_id == self.operator_id)
        if self.first_call is not None:
            conds.append(Call.first_call.is_(self.first_call))
        if self.tag:
            conds.append(exists().where(call_tags.c.call_id == Call.id, call_tags.c.tag_id == Tag.id,
                                        Tag.name == self.tag))
        if self.caller:
            try:
                conds.append(Call.caller_number == phone.normalize(self.caller, self.region))
            except Exception:
                digits = "".join(ch for ch in self.caller if ch.isdigit())
                if not digits:
                    raise JournalError(f"invalid caller number {self.caller!r}") from None
                conds.append(Call.caller_number.like(f"%{digits}%"))
        if self.own_operator_id is not None:
            conds.append(or_(Call.operator_id == self.own_operator_id,
                             exists().where(CallLeg.call_id == Call.id,
                                            CallLeg.operator_id == self.own_operator_id)))
        conds.append(Call.started_at.is_not(None))
        return conds


def encode_cursor(call: Call) -> str:
    raw = f"{call.started_at.astimezone(dt.timezone.utc).isoformat()}|{call.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[dt.datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        ts, _, cid = raw.partition("|")
        when = dt.datetime.fromisoformat(ts)
        if when.tzinfo is None:
            raise ValueError
        return when, int(cid)
    except (ValueError, UnicodeDecodeError):
        raise JournalError("invalid page cursor") from None


@dataclass
class Page:
    calls: list
    next_cursor: Optional[str]      # older calls
    prev_cursor: Optional[str]      # newer calls
    is_first: bool
    is_last: bool


def _options():
    return (selectinload(Call.project), selectinload(Call.source), selectinload(Call.campaign),
            selectinload(Call.tags), selectinload(Call.operator))


def page(session: Session, flt: JournalFilter, after: str | None = None, before: str | None = None,
         last: bool = False, limit: int = 50) -> Page:
    """One page, newest first. ``after``: rows older than that cursor; ``before``: newer;
    ``last``: the oldest page."""
    conds = flt.conditions()
    limit = max(1, min(int(limit), 1000))
    descending = not (before or last)
    if after:
        t, i = decode_cursor(after)
        # the first term bounds the index range (SQLite does not use an index for a bare OR)
        conds.append(and_(Call.started_at <= t, or_(Call.started_at < t, Call.id < i)))
    elif before:
        t, i = decode_cursor(before)
        conds.append(and_(Call.started_at >= t, or_(Call.started_at > t, Call.id > i)))
    order = (Call.started_at.desc(), Call.id.desc()) if descending else (Call.started_at.asc(), Call.id.asc())
    stmt = select(Call).where(*conds).order_by(*order).limit(limit + 1).options(*_options())
    rows = list(session.scalars(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    if not descending:
        rows.reverse()
    if descending:
        is_first = not after
        is_last = not more
    else:
        is_first = not more if before else False
        is_last = True if last else False
        if last:
            is_first = not more
    if before and not last:
        # we came back from an older page: there is always an older page
        is_last = False
    nxt = encode_cursor(rows[-1]) if rows and not is_last else None
    prv = encode_cursor(rows[0]) if rows and not is_first else None
    return Page(rows, nxt, prv, is_first, is_last)


def iterate(session: Session, flt: JournalFilter, chunk: int = 1000) -> Iterator[Call]:
    """Every matching call, newest first, in keyset chunks (bounded memory; for CSV export)."""
    cursor = None
    while True:
        p = page(session, flt, after=cursor, limit=chunk)
        yield from p.calls
        if p.is_last or not p.calls:
            return
        cursor = p.next_cursor
        session.expunge_all()
