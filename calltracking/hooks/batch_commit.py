"""How the FastAGI writer thread (:mod:`calltracking.hooks.writer`) commits a batch of call
rows: its own connection, set up once per database and kept open between batches (no pool
checkout, no pre-ping round trip), and the rows of a batch grouped by shape, each group one
``executemany`` of the driver (SQLite) or one statement (PostgreSQL), in one transaction.

PostgreSQL: the connection is in autocommit mode with ``synchronous_commit = off``: a batch of
one shape is one statement, one round trip, no flush to wait for. The commit returns before
the WAL reaches the disk: a crash of the database server may lose the last fraction of a second
of these rows (never corrupts anything; the AMI listener still records the calls).

SQLite: ``wal_autocheckpoint = 0``. A commit that crosses the WAL's auto-checkpoint size copies
the WAL into the database and syncs it (~10 ms) while the whole batch waits: that was the p99.
The writer's :class:`~calltracking.hooks.checkpoint.Checkpointer` thread does it beside the
commits.
"""
from __future__ import annotations

from sqlalchemy.engine import Connection, Engine

from calltracking.attribution.rawsql import discard
from calltracking.hooks import call_row


def connect(engine: Engine, busy_ms: int) -> Connection:
    """The writer's connection to ``engine`` (the writer's engine: SQLite transactions begin
    IMMEDIATE), set up for its database; a lock is waited for at most ``busy_ms``."""
    conn = engine.connect()
    try:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SET lock_timeout = {int(busy_ms)}")
            conn.exec_driver_sql("SET synchronous_commit = off")
            conn.commit()
            conn.execution_options(isolation_level="AUTOCOMMIT")    # no COMMIT round trip
        else:
            conn.connection.driver_connection.execute("PRAGMA wal_autocheckpoint=0")
    except BaseException:
        discard(conn)
        raise
    return conn


def write_rows(conn: Connection, rows: list[tuple[dict, tuple]]) -> None:
    """Upsert ``(values, overwrite)`` rows (:func:`calltracking.hooks.call_row.upsert`'s rule)
    in one transaction and commit it; on any failure it is rolled back (a connection that
    cannot even roll back is thrown away: ``conn.invalidated``) and the error raised."""
    groups: dict[tuple, list[dict]] = {}
    for values, overwrite in rows:
        groups.setdefault((tuple(sorted(values)), overwrite), []).append(values)
    dialect = conn.dialect
    try:
        for (keys, overwrite), group in groups.items():
            if dialect.name == "sqlite":
                call_row.executemany(conn, *call_row.driver_statement(dialect, keys, overwrite), group)
            else:       # PostgreSQL: one autocommit statement per batch already
                conn.execute(call_row.statement(dialect.name, keys, overwrite), group)
        conn.commit()
    except BaseException:
        try:
            conn.rollback()
        except Exception:  # noqa: BLE001 - a broken connection: a new one next time
            discard(conn)
        raise
