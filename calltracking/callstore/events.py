"""The stored AMI events (``ami_events``) and the index of the calls they belong to (``ami_calls``).

Every event that changed a call is kept with the headers the interpreter reads, so a restarted
listener replays the calls that were live (:meth:`EventLog.live_events`) and ``ami rebuild``
re-derives calls from them (:meth:`EventLog.since`). ``ami_calls`` has one row per Linkedid
followed, ``live`` until all its channels hung up; events of finished calls are purged after
the retention the listener sets (:meth:`EventLog.purge`).
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable

from sqlalchemy import delete, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from calltracking.callstore.rows import CHUNK, epoch_text, upsert, utc
from calltracking.interpret.handlers import HEADERS
from calltracking.interpret.state import CallState
from calltracking.models import AmiCall, AmiEvent

#: Headers the interpreter reads; only these are stored with an event.
KEEP = HEADERS
_AT = AmiEvent.__table__.c.at


def event_row(pbx_id: str, lid: str, ev: dict, ts: float, received_at: float) -> tuple:
    """A stored event as ``(pbx_id, linkedid, at, event, data)`` (:data:`EVENT_COLUMNS`): the
    headers we read, in AMI's own ``Key: Value`` line format (with the time it was received
    when Asterisk sent no ``Timestamp``); ``at``: its time, epoch seconds."""
    lines = [f"{k}: {v}" for k, v in ev.items() if k in KEEP]
    if "Timestamp" not in ev:
        lines.append(f"_recv: {received_at:.6f}")
    return pbx_id, lid[:64], ts, ev.get("Event", "")[:40], "\n".join(lines)


#: The columns of an :func:`event_row`, in its order.
EVENT_COLUMNS = ("pbx_id", "linkedid", "at", "event", "data")


def copy_text(value: str) -> str:
    """A text value in PostgreSQL's ``COPY`` text format: backslash, newline, carriage return
    and tab escaped."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def copy_line(row: tuple) -> str:
    """An :func:`event_row` as one line of ``COPY ami_events (EVENT_COLUMNS) FROM STDIN``; the
    time as :func:`epoch_text` (the column holds naive UTC: the same value its own bind of
    :func:`utc` stores). psycopg's ``write_row`` with a datetime per event took 18 %
    of the writer thread's time on PostgreSQL (``py-spy``, sustained ingest)."""
    p, lid, ts, e, d = row
    return f"{copy_text(p)}\t{copy_text(lid)}\t{epoch_text(ts)}\t{copy_text(e)}\t{copy_text(d)}\n"


def row_event(data: str) -> tuple[dict, float]:
    """A stored event back as (event, received_at)."""
    ev = {}
    for line in data.split("\n"):
        k, _, v = line.partition(": ")
        ev[k] = v
    recv = float(ev.pop("_recv", 0) or 0)
    if not recv and ev.get("Timestamp"):
        try:
            recv = float(ev["Timestamp"])
        except ValueError:
            recv = 0.0
    return ev, recv


class EventLog:
    """The stored events and the call index of one PBX, in the caller's session."""

    def __init__(self, pbx_id: str):
        self.pbx_id = pbx_id

    # ------------------------------------------------------------------ writing
    def add(self, s: Session, rows: list[tuple]) -> None:
        """Store events (rows made by :func:`event_row`). One ``executemany`` of the driver, the
        time converted as the column type's own bind processor converts it (the values
        SQLAlchemy would write): its per-row parameter handling cost more than SQLite's insert
        itself. SQLite: the text straight from the epoch seconds (:func:`epoch_text`);
        PostgreSQL (psycopg): one ``COPY`` of the batch as text made here (:func:`copy_line`)."""
        if not rows:
            return
        conn = s.connection()
        dialect = conn.dialect
        if dialect.driver == "psycopg":
            # PostgreSQL: one COPY (its rows parsed in one pass by the server) instead of an
            # INSERT per event: the server's per-statement work was the writer's bottleneck
            # (the AMI bench's sustained ingest: 1.13x panoramisk's bare parse before)
            sql = f"COPY {AmiEvent.__tablename__} ({', '.join(EVENT_COLUMNS)}) FROM STDIN"
            raw = conn.connection.dbapi_connection
            try:
                with raw.cursor() as cur, cur.copy(sql) as cp:
                    cp.write("".join(map(copy_line, rows)))
            except dialect.loaded_dbapi.Error as e:
                # as SQLAlchemy reports a statement's error (the caller tells a database that
                # is away from a value it refuses by it), a lost connection invalidated
                gone = dialect.is_disconnect(e, raw, None)
                if gone:
                    conn.invalidate(e)
                raise DBAPIError.instance(sql, None, e, dialect.loaded_dbapi.Error,
                                          connection_invalidated=gone, dialect=dialect) from e
            return
        if dialect.name == "sqlite":
            at = epoch_text
        else:
            bind = _AT.type.dialect_impl(dialect).bind_processor(dialect) or (lambda v: v)
            at = lambda ts: bind(utc(ts))  # noqa: E731
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        conn.exec_driver_sql(f"INSERT INTO {AmiEvent.__tablename__} ({', '.join(EVENT_COLUMNS)}) "
                             f"VALUES ({', '.join([mark] * 5)})",
                             [(p, lid, at(ts), e, d) for p, lid, ts, e, d in rows])

    def index(self, s: Session, calls: list[CallState], done: set, recorded: set) -> None:
        """Upsert the ``ami_calls`` rows of ``calls``: live unless in ``done`` or done; recorded
        (a ``calls`` row exists) once any write recorded it."""
        rows = [{"pbx_id": self.pbx_id, "linkedid": c.linkedid, "live": c.linkedid not in done and not c.done,
                 "recorded": c.linkedid in recorded, "first_event_at": utc(c.started_at),
                 "last_event_at": utc(c.last_event_at)} for c in calls]
        if not rows:
            return
        stmt = upsert(s, AmiCall.__table__)
        ex = stmt.excluded
        s.execute(stmt.on_conflict_do_update(
            index_elements=["pbx_id", "linkedid"],
            set_={"live": ex.live, "last_event_at": ex.last_event_at,
                  "recorded": AmiCall.__table__.c.recorded | ex.recorded}), rows)

    def purge(self, s: Session, older_than: dt.datetime) -> int:
        """Delete the stored events of finished calls older than ``older_than``; how many."""
        done = select(AmiCall.linkedid).where(AmiCall.pbx_id == self.pbx_id, AmiCall.live.is_(False))
        res = s.execute(delete(AmiEvent).where(AmiEvent.pbx_id == self.pbx_id, AmiEvent.at < older_than,
                                               AmiEvent.linkedid.in_(done)))
        return res.rowcount or 0

    # ------------------------------------------------------------------ reading
    def live_events(self, s: Session) -> list[tuple[dict, float]]:
        """The stored events of the calls still live, in the order they were stored."""
        lids = s.scalars(select(AmiCall.linkedid).where(AmiCall.pbx_id == self.pbx_id,
                                                        AmiCall.live.is_(True))).all()
        return self._events_of(s, lids)

    def since(self, s: Session, since: dt.datetime) -> list[tuple[dict, float]]:
        """Every stored event of the calls that have one at or after ``since``, in order."""
        lids = s.scalars(select(AmiEvent.linkedid).where(
            AmiEvent.pbx_id == self.pbx_id, AmiEvent.at >= since).distinct()).all()
        return self._events_of(s, list(lids))

    def _events_of(self, s: Session, lids: list[str]) -> list[tuple[dict, float]]:
        rows = []
        for i in range(0, len(lids), CHUNK):
            rows += s.execute(select(AmiEvent.id, AmiEvent.data).where(
                AmiEvent.pbx_id == self.pbx_id, AmiEvent.linkedid.in_(lids[i:i + CHUNK]))).all()
        rows.sort()
        return [row_event(data) for _, data in rows]

    def finished_among(self, s: Session, lids: Iterable[str]) -> set[str]:
        """Those of ``lids`` the index holds as finished."""
        lids = list(lids)
        out: set[str] = set()
        for i in range(0, len(lids), CHUNK):
            out.update(s.scalars(select(AmiCall.linkedid).where(
                AmiCall.pbx_id == self.pbx_id, AmiCall.linkedid.in_(lids[i:i + CHUNK]),
                AmiCall.live.is_(False))).all())
        return out
