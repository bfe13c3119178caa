"""How the DNI core's general path writes: one transaction, retried on a lost race.

A number is never held by two live reservations: the partial unique index on
``pool_reservations(tracking_number_id) WHERE released_at IS NULL`` is the guarantee, and the
writers avoid fighting over it — PostgreSQL takes the candidate row with ``FOR UPDATE SKIP
LOCKED`` (:data:`calltracking.dni.statements.FREE_SKIP_LOCKED`); on SQLite the transaction
takes the database write lock first (a first write statement, like ``BEGIN IMMEDIATE``) and
the writers of one process queue on a Python lock (:func:`write_lock`, shared with the batched
writer of :mod:`calltracking.dni.new_visitors`). A conflict that still happens (another
process) rolls back and the transaction is retried, up to :data:`MAX_ATTEMPTS` times.
"""
from __future__ import annotations

import random
import threading
import time
import weakref

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from calltracking.dni import statements as Q

MAX_ATTEMPTS = 10

_locks: dict = {}
_locks_guard = threading.Lock()
_keys: "weakref.WeakKeyDictionary[Engine, str]" = weakref.WeakKeyDictionary()


def engine_key(engine: Engine) -> str:
    """The database an engine writes to (its URL as a string, computed once: hashing a ``URL``
    renders it every time). Caches and counters of the DNI core are keyed by it."""
    key = _keys.get(engine)
    if key is None:
        key = _keys[engine] = engine.url.render_as_string(hide_password=False)
    return key


def engine_of(factory_or_engine) -> Engine:
    """The engine of a sessionmaker (the callers' usual handle), or the engine itself."""
    if isinstance(factory_or_engine, Engine):
        return factory_or_engine
    return factory_or_engine.kw["bind"]


def write_lock(engine: Engine) -> threading.Lock:
    """The lock the DNI writers of this process take on SQLite (one writer at a time anyway)."""
    key = engine_key(engine)
    lock = _locks.get(key)
    if lock is None:
        with _locks_guard:
            lock = _locks.setdefault(key, threading.Lock())
    return lock


def retrying(engine: Engine, fn, write_first: bool = False):
    """Run ``fn(conn)`` in a transaction; retry on a lost race (unique index, lock).

    ``write_first``: ``fn`` starts with a write, which takes SQLite's write
    lock by itself; otherwise a no-op write takes it before ``fn`` reads.
    """
    lock = write_lock(engine) if engine.dialect.name == "sqlite" else None
    for attempt in range(MAX_ATTEMPTS):
        try:
            if lock is not None:
                with lock, engine.begin() as conn:
                    if not write_first:   # take the write lock now (BEGIN IMMEDIATE semantics)
                        conn.execute(Q.SQLITE_WRITE_LOCK)
                    return fn(conn)
            with engine.begin() as conn:
                return fn(conn)
        except (IntegrityError, OperationalError):
            if attempt == MAX_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0.001, 0.004) * (attempt + 1))
