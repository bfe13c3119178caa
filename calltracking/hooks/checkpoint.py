"""SQLite's WAL checkpoints of the FastAGI writer, in a thread of their own."""
from __future__ import annotations

import logging
import threading

from sqlalchemy.engine import Engine

log = logging.getLogger("calltracking.hooks")


class Checkpointer:
    """SQLite: copies the WAL back into the database (``PRAGMA wal_checkpoint(PASSIVE)``) in
    its own thread and connection, at most every ``interval`` seconds and only after writes,
    so that no commit of the writer pays for it. A passive checkpoint never blocks readers or
    writers; the other processes (AMI listener, web UI) keep SQLite's automatic checkpoints."""

    def __init__(self, engine: Engine, interval: float = 1.0):
        self.engine, self.interval = engine, interval
        self.dirty = threading.Event()
        self.stop = threading.Event()
        self.stats = {"checkpoints": 0, "failed": 0}
        self.thread = threading.Thread(target=self._run, name="agi-checkpoint", daemon=True)
        self.thread.start()

    def wrote(self) -> None:
        self.dirty.set()

    def close(self, timeout: float = 5.0) -> None:
        self.stop.set()
        self.dirty.set()
        self.thread.join(timeout)

    def _run(self) -> None:
        conn = None
        while True:
            self.dirty.wait()
            if self.stop.wait(self.interval):   # gather a second of commits per checkpoint
                break
            self.dirty.clear()
            try:
                if conn is None:
                    conn = self.engine.raw_connection()
                conn.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                self.stats["checkpoints"] += 1
            except Exception as e:  # noqa: BLE001 - busy or broken: the next round tries again
                self.stats["failed"] += 1
                log.debug("WAL checkpoint failed: %s", e)
                if conn is not None:
                    try:
                        conn.invalidate()
                    except Exception:  # noqa: BLE001
                        pass
                    conn = None
        if conn is not None:
            conn.close()
