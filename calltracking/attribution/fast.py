"""Attribution on the FastAGI hot path: the rules of :mod:`calltracking.attribution.lookup`,
on the in-memory catalogue (:mod:`calltracking.attribution.catalogue`) and plain SQL.

:func:`attribute_number` attributes a call to a DID the catalogue mapped:

- a static number gives its source and campaign (``static``, confidence 1); a static
  number without a source gives ``none``;
- a pool number gives the visitor session holding it now, or the one that held it most
  recently within the pool's hold window (``dynamic``), its source (else the pool's), and a
  confidence of 1 / the candidate visitors in that window; nobody held it: ``none``, with
  the pool's own source;
- an unknown or retired number gives ``none`` (the catalogue still names its project).

A call *forwarded* to the DID from an active static tracking number (the company forwards its
published number, registered with its source, to a tracking number: ``agi_rdnis``) is attributed
as a call to that number: :func:`forwarded_mapping`.

:func:`first_call` is :func:`lookup.is_first_call` in one query. Each copies its ORM
counterpart for speed (two queries instead of a dozen ORM loads per call);
``tests/agi/test_agi_core.py`` proves each pair agrees. Each is also written as steps
(``*_steps``, :data:`~calltracking.attribution.rawsql.Reads`), which the FastAGI server runs
on its event loop's PostgreSQL connections.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple, Optional

from calltracking.attribution.catalogue import NumberInfo
from calltracking.attribution.lookup import CERTAIN, confidence
from calltracking.attribution.rawsql import Query, Reads, bind_time, read_time, run_reads
from calltracking.enums import AttributionKind, NumberKind


class Holder(NamedTuple):
    """The visitor session holding a pool number (what the route hook needs of it)."""

    id: int
    source_id: Optional[int]
    first_seen: dt.datetime
    keyword: str
    utm_term: str
    visitor_id: str


@dataclass(frozen=True)
class NumberAttribution:
    """What :func:`attribute_number` found (ids, not ORM objects)."""

    kind: AttributionKind = AttributionKind.NONE
    source_id: Optional[int] = None
    campaign_id: Optional[int] = None
    session: Optional[Holder] = None
    confidence: Optional[Decimal] = None
    candidates: Optional[int] = None


NOT_ATTRIBUTED = NumberAttribution()


def forwarded_mapping(cat, info: NumberInfo, fwd_cat, fwd: NumberInfo):
    """``(catalogue, mapping)`` that attributes a forwarded call: the forwarding number's
    (``fwd``, from ``fwd_cat``) when it is an active static tracking number, with the dialled
    number kept as the call's ``did``; else the dialled number's (``cat``, ``info``). A pool
    number, a retired or an unknown number never attributes a call it forwarded."""
    if fwd.tn_id is None or not fwd.active or fwd.kind != NumberKind.STATIC:
        return cat, info
    return fwd_cat, NumberInfo(**{**fwd.__dict__, "did": info.did})


def attribute_number(conn, info: NumberInfo, now: dt.datetime) -> NumberAttribution:
    """The attribution of a call to the DID ``info`` at ``now`` (rules: the module docstring)."""
    return run_reads(conn, attribute_steps(conn.dialect.name, info, now))


def attribute_steps(dialect: str, info: NumberInfo, now: dt.datetime) -> Reads:
    """:func:`attribute_number` as steps (:data:`~calltracking.attribution.rawsql.Reads`)."""
    if info.tn_id is None or not info.active:
        return NOT_ATTRIBUTED                        # unknown or retired: keeps ringing
    if info.kind == NumberKind.STATIC:
        if info.source_id is None:
            return NOT_ATTRIBUTED                    # unassigned
        return NumberAttribution(AttributionKind.STATIC, info.source_id, info.campaign_id,
                                 confidence=CERTAIN)
    holder, candidates = yield from pool_holder_steps(dialect, info.tn_id, info.hold_seconds, now)
    if holder is None:
        return NumberAttribution(source_id=info.pool_source_id, candidates=candidates)
    return NumberAttribution(AttributionKind.DYNAMIC, holder.source_id or info.pool_source_id,
                             session=holder, confidence=confidence(candidates), candidates=candidates)


_HOLDER_SQL = (
    "SELECT v.id, v.source_id, v.first_seen, v.keyword, v.utm_term, v.visitor_id"
    " FROM pool_reservations r JOIN visitor_sessions v ON v.id = r.session_id"
    " WHERE r.tracking_number_id = :tn AND r.assigned_at <= :at"
    " AND (r.released_at IS NULL OR r.released_at >= :since)"
    " ORDER BY (r.released_at IS NULL) DESC, r.last_seen_at DESC")


def pool_holder(conn, tn_id: int, hold_seconds: int, at: dt.datetime) -> tuple[Optional[Holder], int]:
    """:func:`lookup.pool_holder` in one query: ``(holder or None, candidate count)``."""
    return run_reads(conn, pool_holder_steps(conn.dialect.name, tn_id, hold_seconds, at))


def pool_holder_steps(dialect: str, tn_id: int, hold_seconds: int, at: dt.datetime) -> Reads:
    """:func:`pool_holder` as steps."""
    rows = yield Query(_HOLDER_SQL, {
        "tn": tn_id, "at": bind_time(at, dialect),
        "since": bind_time(at - dt.timedelta(seconds=hold_seconds), dialect)}, many=True)
    if not rows:
        return None, 0
    r = rows[0]
    holder = Holder(r[0], r[1], read_time(r[2]), r[3] or "", r[4] or "", r[5])
    return holder, len({row[5] for row in rows})


def first_call(conn, pbx_id: str, project_id: Optional[int], number: str, now: dt.datetime,
               window_days: int, linkedid: str) -> Optional[bool]:
    """:func:`lookup.is_first_call` in one query that skips this call's own row
    (``pbx_id``, ``linkedid``)."""
    return run_reads(conn, first_call_steps(conn.dialect.name, pbx_id, project_id, number, now,
                                            window_days, linkedid))


def first_call_steps(dialect: str, pbx_id: str, project_id: Optional[int], number: str,
                     now: dt.datetime, window_days: int, linkedid: str) -> Reads:
    """:func:`first_call` as steps."""
    if not number or not number.strip("+").isdigit():
        return None
    params = {"number": number, "now": bind_time(now, dialect), "pbx": pbx_id, "linkedid": linkedid}
    sql = ("SELECT 1 FROM calls WHERE caller_number = :number AND started_at < :now"
           " AND NOT (pbx_id = :pbx AND linkedid = :linkedid)")
    if project_id is not None:
        params["project"] = project_id
        sql += " AND project_id + 0 = :project"      # keep the caller index (see lookup.is_first_call)
    if window_days:
        params["since"] = bind_time(now - dt.timedelta(days=window_days), dialect)
        sql += " AND started_at >= :since"
    return (yield Query(sql + " LIMIT 1", params)) is None
