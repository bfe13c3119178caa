"""The call journal: filters and keyset pagination (fast on millions of calls).

Calls are listed newest first, ordered by ``(started_at, id)``. A page is fetched with a
cursor (the key of the last row shown) instead of an OFFSET, so the first, any next and the
last page cost the same: an index range scan on ``ix_calls_started`` /
``ix_calls_project_started`` of ``limit + 1`` rows.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass, field
from typing import Iterator, Optional

from sqlalchemy import Float, and_, exists, func, or_, select, type_coerce
from sqlalchemy.orm import Session, selectinload

from calltracking import phone
from calltracking.calls import visibility
from calltracking.models import Call, Tag, call_tags
from calltracking.transcripts import search as transcript_search

STATUSES = ("in_progress", "answered", "missed")
#: the journal counts matching calls exactly up to this many ("more than" above it)
COUNT_CAP = 100_000


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
    target: Optional[bool] = None               # True target calls only, False the others
    tag: Optional[str] = None
    caller: Optional[str] = None                # any readable form; normalized when possible
    name: Optional[str] = None                  # part of the caller's name (CRM lookup or caller id)
    text: Optional[str] = None                  # words said in the call (calltracking.transcripts.search)
    viewer_role: Optional[str] = None           # who looks: operators see only their own calls
    own_operator_id: Optional[int] = None       # the viewer's operator (calltracking.calls.visibility)
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
        if self.target is not None:
            conds.append(Call.is_target.is_(self.target))
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
        if self.name:
            conds.append(name_matches(self.name))
        if self.text:
            said = transcript_search.matches(Call.id, self.text)
            if said is not None:
                conds.append(said)
        if self.viewer_role is not None:
            conds.extend(visibility.visible_to(self.viewer_role, self.own_operator_id))
        conds.append(Call.started_at.is_not(None))
        return conds


#: the orders of the list: name -> (key, newest/largest first)
SORTS = {
    "-started": ("started", True), "started": ("started", False),
    "-talk": ("talk", True), "talk": ("talk", False),
    "-wait": ("wait", True), "wait": ("wait", False),
}


def _key(kind: str):
    if kind == "started":
        return Call.started_at
    col = Call.talk_seconds if kind == "talk" else Call.wait_seconds
    # a missed call has no talk time: it sorts as 0
    return type_coerce(func.coalesce(col, 0), Float)


def _value(call: Call, kind: str):
    if kind == "started":
        return call.started_at
    v = call.talk_seconds if kind == "talk" else call.wait_seconds
    return float(v or 0)


def name_matches(text: str):
    """Caller names containing ``text``, whatever the case of its first letter or of all of it
    (SQLite compares only ASCII letters without case: "иван" must find "Иван")."""
    text = text.strip()[:100]
    forms = dict.fromkeys((text, text.lower(), text.capitalize(), text.title(), text.upper()))
    return or_(*[Call.caller_name.contains(f, autoescape=True) for f in forms])


def encode_cursor(call: Call, sort: str = "-started") -> str:
    kind = SORTS.get(sort, SORTS["-started"])[0]
    v = _value(call, kind)
    text = v.astimezone(dt.timezone.utc).isoformat() if kind == "started" else repr(v)
    raw = f"{text}|{call.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(text: str, sort: str = "-started") -> tuple:
    kind = SORTS.get(sort, SORTS["-started"])[0]
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        val, _, cid = raw.partition("|")
        if kind == "started":
            when = dt.datetime.fromisoformat(val)
            if when.tzinfo is None:
                raise ValueError
            return when, int(cid)
        num = float(val)
        if num != num or num in (float("inf"), float("-inf")):
            raise ValueError
        return num, int(cid)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise JournalError("invalid page cursor") from None


def _beyond(key, v, i: int, desc: bool):
    """Rows after ``(v, i)`` in that direction; the first term bounds the index range (SQLite
    does not use an index for a bare OR)."""
    if desc:
        return and_(key <= v, or_(key < v, Call.id < i))
    return and_(key >= v, or_(key > v, Call.id > i))


@dataclass
class Page:
    calls: list
    next_cursor: Optional[str]      # further in the list's order (older calls by default)
    prev_cursor: Optional[str]      # back towards its start (newer calls by default)
    is_first: bool
    is_last: bool


def _options():
    return (selectinload(Call.project), selectinload(Call.source), selectinload(Call.campaign),
            selectinload(Call.tags), selectinload(Call.operator), selectinload(Call.recording_info))


def page(session: Session, flt: JournalFilter, after: str | None = None, before: str | None = None,
         last: bool = False, limit: int = 50, sort: str = "-started") -> Page:
    """One page in the order ``sort`` (:data:`SORTS`; newest first by default). ``after``: the
    rows following that cursor; ``before``: the rows preceding it; ``last``: the last page."""
    if sort not in SORTS:
        raise JournalError(f"invalid sort {sort!r}")
    kind, desc = SORTS[sort]
    key = _key(kind)
    conds = flt.conditions()
    limit = max(1, min(int(limit), 1000))
    forward = not (before or last)
    if after:
        v, i = decode_cursor(after, sort)
        conds.append(_beyond(key, v, i, desc))
    elif before:
        v, i = decode_cursor(before, sort)
        conds.append(_beyond(key, v, i, not desc))
    q_desc = desc if forward else not desc
    order = (key.desc(), Call.id.desc()) if q_desc else (key.asc(), Call.id.asc())
    stmt = select(Call).where(*conds).order_by(*order).limit(limit + 1).options(*_options())
    rows = list(session.scalars(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    if not forward:
        rows.reverse()
    if forward:
        is_first = not after
        is_last = not more
    else:
        is_first = not more if before else False
        is_last = True if last else False
        if last:
            is_first = not more
    if before and not last:
        # we came back from a later page: there is always a later page
        is_last = False
    nxt = encode_cursor(rows[-1], sort) if rows and not is_last else None
    prv = encode_cursor(rows[0], sort) if rows and not is_first else None
    return Page(rows, nxt, prv, is_first, is_last)


def count(session: Session, flt: JournalFilter, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """How many calls match (same filter as :func:`page`), counted up to ``cap``: ``(n, exact)``;
    ``exact`` is False when there are more than ``cap`` (the figure shown is then "more than")."""
    inner = select(Call.id).where(*flt.conditions()).limit(cap + 1).subquery()
    n = session.scalar(select(func.count()).select_from(inner)) or 0
    return min(n, cap), n <= cap


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
