"""New visitors' sessions and numbers, batched: the fast path of ``POST /api/dni/assign``.

A new visitor (no visitor id yet: the first page view of a visit, the bulk of
the assignment traffic) needs a new session and a pool number. Through
SQLAlchemy that is a transaction of 5–6 statements and about half a
millisecond of Python; here the request thread hands it to the engine's
single :class:`Writer` thread, which takes every request queued meanwhile (a
batch) and writes it with raw DBAPI statements (group commit):

- **PostgreSQL**: ONE statement per pool and batch, one round trip,
  autocommit — a data-modifying CTE inserts the sessions (rows passed as one
  JSON parameter), locks as many free numbers as there are sessions with
  ``FOR UPDATE SKIP LOCKED`` (never used first by id, then least recently
  released), marks them held, inserts the reservations and returns
  (visitor id, session id, number). Prepared once, with a generic plan.
- **SQLite**: one ``BEGIN IMMEDIATE`` … ``COMMIT`` per batch (under the
  Python lock of the general path's transactions,
  :func:`calltracking.dni.transactions.write_lock`), and per request the
  session insert, one ``UPDATE … RETURNING`` taking the first free number in
  the order of ``ix_tracking_numbers_pool_free`` (SQLite sorts NULL — never
  released — first) and the reservation insert.

The rules are those of the general path, in raw SQL: the free-number order of
:data:`calltracking.dni.statements.FREE`, a new reservation provisional (``last_seen_at =
assigned_at``), the session row of :func:`calltracking.dni.assign.session_row` (tests/dni run
both paths on the same cases). The guarantees too: the partial unique index on
``pool_reservations(tracking_number_id) WHERE released_at IS NULL`` decides;
a conflict (or any database error) rolls the batch back and each of its
requests runs :func:`calltracking.dni.assign.complete` (the general path) instead. No free
number → the session exists and the general path takes over with it
(releasing expired holds on the spot, counting the exhaustion, the promo code).

The writer owns one driver connection, detached from the engine's pool (no
pre-ping round trip per request); a broken one is dropped and the batch
retried once on a fresh one. A thread waits for its request
(:func:`assign_new`); an event loop gets an asyncio future
(:func:`assign_new_async`), and the futures of a batch are settled with one
``call_soon_threadsafe`` per loop. The thread ends after ``Writer.IDLE`` seconds
without work and when the engine is disposed.
"""
from __future__ import annotations

import datetime as dt
import json
import threading
import weakref
from typing import Optional

from sqlalchemy import event
from sqlalchemy.engine import Engine

from calltracking.dni.statements import SESSION_COLUMNS
from calltracking.futures import settle_batch

_COL_TYPES = {"project_id": "int", "source_id": "int", "first_seen": "timestamp", "last_seen": "timestamp"}

#: a batch of new visitors of ONE pool in one statement: ``%(rows)s`` is a JSON array of objects
#: (the SESSION_COLUMNS), ``%(n)s`` its length. Returns (visitor_id, session id, number or NULL).
PG_ASSIGN_BATCH = f"""
WITH x AS (SELECT * FROM json_to_recordset(%(rows)s::json)
           AS x({', '.join(f'{c} {_COL_TYPES.get(c, "text")}' for c in SESSION_COLUMNS)})),
s AS (INSERT INTO visitor_sessions ({', '.join(SESSION_COLUMNS)}) SELECT {', '.join(SESSION_COLUMNS)} FROM x
      RETURNING id, visitor_id, first_seen),
a AS (SELECT id, pool_released_at FROM tracking_numbers
      WHERE pool_id = %(pool)s AND pool_held = false AND pool_released_at IS NULL AND active
      ORDER BY pool_released_at, id LIMIT %(n)s FOR UPDATE SKIP LOCKED),
b AS (SELECT id, pool_released_at FROM tracking_numbers
      WHERE pool_id = %(pool)s AND pool_held = false AND pool_released_at IS NOT NULL AND active
      ORDER BY pool_released_at, id LIMIT (SELECT %(n)s - count(*) FROM a) FOR UPDATE SKIP LOCKED),
t AS (UPDATE tracking_numbers n SET pool_held = true
      WHERE n.id = ANY(ARRAY(SELECT id FROM a UNION ALL SELECT id FROM b))
      RETURNING n.id, n.number, n.pool_released_at),
pair AS (SELECT q.id AS sid, q.first_seen, p.id AS tid, p.number
         FROM (SELECT id, first_seen, row_number() OVER (ORDER BY id) AS k FROM s) q
         JOIN (SELECT id, number, row_number() OVER (ORDER BY pool_released_at NULLS FIRST, id) AS k FROM t) p
           ON p.k = q.k),
r AS (INSERT INTO pool_reservations (pool_id, tracking_number_id, session_id, assigned_at, last_seen_at)
      SELECT %(pool)s, tid, sid, first_seen, first_seen FROM pair)
SELECT s.visitor_id, s.id, pair.number FROM s LEFT JOIN pair ON pair.sid = s.id
"""

SQLITE_INSERT_SESSION = (f"INSERT INTO visitor_sessions ({', '.join(SESSION_COLUMNS)}) "
                         f"VALUES ({', '.join('?' for _ in SESSION_COLUMNS)})")
SQLITE_TAKE = ("UPDATE tracking_numbers SET pool_held = 1 WHERE id = "
               "(SELECT id FROM tracking_numbers WHERE pool_id = ? AND pool_held = 0 AND active = 1 "
               "ORDER BY pool_released_at, id LIMIT 1) RETURNING id, number")
SQLITE_RESERVE = ("INSERT INTO pool_reservations (pool_id, tracking_number_id, session_id, assigned_at, "
                  "last_seen_at) VALUES (?, ?, ?, ?, ?)")


def sqlite_time(now: dt.datetime) -> str:
    """A UTC datetime as SQLAlchemy's SQLite ``DateTime`` stores it (naive UTC)."""
    u = now.astimezone(dt.timezone.utc)
    return (f"{u.year:04d}-{u.month:02d}-{u.day:02d} "
            f"{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}")


class _Slot:
    """One request waiting for the writer: a thread (``done`` is released when the result is set)
    or an event loop (``afut`` is settled on ``loop``; ``dropped``: the caller gave up)."""

    __slots__ = ("values", "pool_id", "result", "error", "done", "loop", "afut", "dropped")

    def __init__(self, values: tuple, pool_id: int, loop=None):
        self.values, self.pool_id, self.result, self.error = values, pool_id, None, None
        self.loop, self.dropped = loop, False
        if loop is None:
            self.afut = None
            self.done = threading.Lock()
            self.done.acquire()
        else:
            self.done = None
            self.afut = loop.create_future()


class Writer:
    """The single writer of one engine: batches concurrent new-visitor assignments (group commit).

    Request threads queue a slot and wait; the writer thread takes everything
    queued (up to ``MAX_BATCH``) and writes it in one statement per pool
    (PostgreSQL) or one transaction (SQLite), so the per-statement and
    per-commit costs are shared by the requests that arrived meanwhile. It
    owns one driver connection, detached from the engine's pool, and ends
    after ``IDLE`` seconds without work (or when the engine is disposed).
    """

    MAX_BATCH = 64
    IDLE = 10.0

    def __init__(self, engine: Engine, write_lock: Optional[threading.Lock]):
        self.engine = weakref.ref(engine)       # weak: the registry is keyed by the engine
        self.pg = engine.dialect.name == "postgresql"
        self.write_lock = write_lock
        self.cv = threading.Condition(threading.Lock())
        self.queue: list = []
        self.thread: Optional[threading.Thread] = None
        self.closed = False
        self.conn = None                      # (pool fairy, driver connection), writer thread only

    def submit(self, values: tuple, pool_id: int) -> tuple:
        slot = self._queue(_Slot(values, pool_id))
        slot.done.acquire()
        if slot.error is not None:
            raise slot.error
        return slot.result

    def submit_async(self, values: tuple, pool_id: int, loop) -> "_Slot":
        """From an event loop: queue the request; ``slot.afut`` (an asyncio future on ``loop``) gets
        ``(session id, number)`` or the error. The futures of a batch are settled with ONE
        ``call_soon_threadsafe`` per loop. Set ``slot.dropped`` to give up: a slot not yet
        written is then skipped."""
        return self._queue(_Slot(values, pool_id, loop))

    def _queue(self, slot: "_Slot") -> "_Slot":
        with self.cv:
            if self.closed:
                raise RuntimeError("the database engine was disposed")
            self.queue.append(slot)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="dni-writer", daemon=True)
                self.thread.start()
            else:
                self.cv.notify()
        return slot

    def close(self):
        with self.cv:
            self.closed = True
            self.cv.notify()

    def _run(self):
        try:
            while True:
                with self.cv:
                    if not self.queue and not self.closed:
                        self.cv.wait(self.IDLE)
                    if not self.queue:
                        self.thread = None
                        return
                    batch, self.queue = self.queue[:self.MAX_BATCH], self.queue[self.MAX_BATCH:]
                groups: dict = {}
                for slot in batch:
                    if not slot.dropped:
                        groups.setdefault(slot.pool_id, []).append(slot)
                for pool_id, slots in groups.items():
                    self._write(pool_id, slots)
        finally:
            self._drop()

    def _write(self, pool_id: int, slots: list):
        try:
            for attempt in (0, 1):
                if self.conn is None:
                    self.conn = self._connect()
                try:
                    results = (_pg_batch if self.pg else _sqlite_batch)(self.conn[1], pool_id, slots,
                                                                         self.write_lock)
                    break
                except Exception as exc:
                    broken = _broken(exc)
                    if broken or not self.pg:
                        self._drop()
                    if not (broken and attempt == 0):
                        raise
            for slot, res in zip(slots, results):
                slot.result = res
        except BaseException as exc:            # every request of the batch takes the general path
            for slot in slots:
                slot.error = exc
        finally:
            for slot in slots:
                if slot.loop is None:
                    slot.done.release()
            settle_batch((s.loop, s.afut, s.result, s.error) for s in slots if s.loop is not None)

    def _connect(self):
        engine = self.engine()
        if engine is None:
            raise RuntimeError("the database engine is gone")
        fairy = engine.raw_connection()
        dbapi = fairy.driver_connection
        fairy.detach()
        if self.pg:
            dbapi.rollback()                    # the pool's pre-ping may have opened a transaction
            dbapi.autocommit = True
            # The batch statement is prepared once, and its plan is fixed (index scans and joins of
            # a few CTE rows): re-planning it for each execution would cost more than running it.
            dbapi.execute("SET plan_cache_mode = force_generic_plan")
        return fairy, dbapi

    def _drop(self):
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn[0].close()
            except Exception:                   # already broken: nothing to release
                pass


_writers: "weakref.WeakKeyDictionary[Engine, Writer]" = weakref.WeakKeyDictionary()
_writers_lock = threading.Lock()


def writer(engine: Engine, write_lock: Optional[threading.Lock]) -> Writer:
    w = _writers.get(engine)
    if w is None or w.closed:
        with _writers_lock:
            w = _writers.get(engine)
            if w is None or w.closed:
                w = _writers[engine] = Writer(engine, write_lock)
                event.listen(engine, "engine_disposed", lambda _conn, w=w: w.close())
    return w


def supported(engine: Engine) -> bool:
    return engine.dialect.name in ("sqlite", "postgresql")


def assign_new(engine: Engine, session_values: tuple, pool_id: int,
               write_lock: Optional[threading.Lock]) -> tuple:
    """Insert a new visitor session and reserve a pool number for it, atomically.

    ``session_values``: the values of ``SESSION_COLUMNS`` (aware datetimes;
    the visitor id must be new). Returns ``(session id, number)`` — number
    ``None`` when the pool has no free number (the session exists then).
    Raises on a database error; nothing of this request is written then.
    """
    return writer(engine, write_lock).submit(session_values, pool_id)


def assign_new_async(engine: Engine, session_values: tuple, pool_id: int,
                     write_lock: Optional[threading.Lock], loop) -> _Slot:
    """:func:`assign_new` for an event loop: returns the queued slot; await ``slot.afut``."""
    return writer(engine, write_lock).submit_async(session_values, pool_id, loop)


def _broken(exc: BaseException) -> bool:
    if type(exc).__module__.startswith("psycopg"):
        import psycopg

        return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))
    return False


def _naive(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat()


def _pg_batch(conn, pool_id: int, slots: list, _lock) -> list:
    rows = []
    for slot in slots:
        row = dict(zip(SESSION_COLUMNS, slot.values))
        row["first_seen"], row["last_seen"] = _naive(row["first_seen"]), _naive(row["last_seen"])
        rows.append(row)
    out = {vid: (sid, number) for vid, sid, number in conn.execute(
        PG_ASSIGN_BATCH, {"rows": json.dumps(rows), "pool": pool_id, "n": len(rows)}, prepare=True)}
    return [out[slot.values[1]] for slot in slots]


def _sqlite_batch(conn, pool_id: int, slots: list, lock) -> list:
    results = []
    with lock:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for slot in slots:
                stamp = sqlite_time(slot.values[-1])
                sid = conn.execute(SQLITE_INSERT_SESSION, slot.values[:-2] + (stamp, stamp)).lastrowid
                rows = conn.execute(SQLITE_TAKE, (pool_id,)).fetchall()
                if rows:
                    conn.execute(SQLITE_RESERVE, (pool_id, rows[0][0], sid, stamp, stamp))
                results.append((sid, rows[0][1] if rows else None))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return results
