"""Holding a database's write lock from a test: the writers of ``calls`` wait, the readers go on."""
from __future__ import annotations

from calltracking.db import writer


class WriteLock:
    """Another transaction holds the write lock for as long as the ``with`` block lasts:
    SQLite's (a long write transaction elsewhere), PostgreSQL's EXCLUSIVE lock on the calls
    and their tags (reads go on, writes wait)."""

    def __init__(self, engine):
        self.engine = engine

    def __enter__(self):
        self.conn = writer(self.engine).connect()
        self.tx = self.conn.begin()
        if self.engine.dialect.name == "postgresql":
            self.conn.exec_driver_sql("LOCK TABLE calls, call_tags IN EXCLUSIVE MODE")
        else:
            self.conn.exec_driver_sql("UPDATE projects SET name = name")
        return self

    def __exit__(self, *exc):
        self.tx.commit()
        self.conn.close()
