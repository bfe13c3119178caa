"""The call-row spool: a hook's row on disk before the channel goes on.

The FastAGI server's call rows (``route``, ``promo``) are committed by the writer thread
(:mod:`calltracking.hooks.writer`) in batches. Before the channel goes on, each row is also a
line of this process's spool file, ``agi-<pid>-<time>.spool`` in ``[agi] spool_dir`` (mode
0600: it holds caller numbers and names), all the rows of one pass of the event loop in one
``write``. So the hook answers without waiting for the database (``[agi] write_wait_ms = 0``)
and loses nothing when this process dies: the next FastAGI server to start (``calltracking
agi`` or ``run``) replays every spool file whose process is gone, before it listens.

**What survives.** A line is in the kernel's page cache once ``write`` returns: a crash, a
``kill -9`` or a restart of our process keeps it (no ``fsync``: like the writer's
``synchronous_commit = off`` on PostgreSQL, a crash of the machine itself may lose the last
second or so).

**Once.** Lines are ``{"n": seq, "v": values, "o": overwrite}`` for a row and
``{"done": [seq, ...]}`` once the writer committed those rows (or failed them for good: a bad
row, logged). Replay upserts only the rows with no ``done`` line, in their order, each the way
the hook would have (the upsert merges with a row the AMI listener created meanwhile). A row
caught between its commit and its ``done`` line (microseconds; or, on PostgreSQL, a statement
the dead process had sent and its backend still ran) is upserted a second time with the same
values: the keyed upsert never makes a second row. The
file is emptied whenever every row in it is done, so it holds at most the rows in flight. Under a
steady load some row is always in flight: once the file passes :data:`ROTATE_BYTES` the
process starts a new one (:meth:`Spool.rotate`) and deletes the old one as soon as its last
row is done.
A torn last line (the process died inside its ``write``) is skipped: that row's channel had
not been answered yet.

**Ownership.** Each process holds an exclusive ``flock`` on its own file while it runs; a file
that can be locked belongs to nobody and is adopted: replayed, then deleted once its rows are
all done. A spool directory that cannot be written is logged, and the hooks then wait for
their commits as before (at least :data:`NO_SPOOL_WAIT_MS`).
"""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Optional

import orjson

log = logging.getLogger("calltracking.hooks")

SUFFIX = ".spool"
#: Seconds after a failed write before the spool is tried again.
RETRY_SECONDS = 5.0
#: A spool file this large is replaced by a new one (:meth:`Spool.rotate`): ~7,000 rows, two
#: seconds of a server at its saturation here (without it the file grew 2.6 MB a second there).
ROTATE_BYTES = 4 << 20
#: Without a spool, a hook waits at least this long for its row's commit (``[agi]
#: write_wait_ms`` when larger): a row still queued is lost if the process dies.
NO_SPOOL_WAIT_MS = 50


def _encode(o):
    if isinstance(o, dt.datetime):
        return {"$t": o.isoformat()}
    if isinstance(o, Decimal):
        return {"$d": str(o)}
    raise TypeError(f"not a spool value: {type(o).__name__}")


def _decode(d: dict):
    if len(d) == 1:
        if "$t" in d:
            return dt.datetime.fromisoformat(d["$t"])
        if "$d" in d:
            return Decimal(d["$d"])
    return d


_LINE = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_APPEND_NEWLINE     # datetimes: _encode


def row_line(seq: int, values: dict, overwrite: tuple) -> bytes:
    """One row's line, UTF-8 (JSON escapes newlines in values: a line is always one row).
    ``orjson``: 1.8 µs a route row here, against 6.7 µs with the standard library's encoder
    (the same bytes); it runs on the FastAGI event loop for every call."""
    return orjson.dumps({"n": seq, "v": values, "o": overwrite}, default=_encode, option=_LINE)


def read_rows(data: bytes, name: str = "spool") -> list[tuple[int, dict, tuple]]:
    """The rows of a spool's bytes with no ``done`` line: ``(seq, values, overwrite)`` in
    file order. A line that does not parse is skipped (the last one: torn by a crash; any
    other: logged as damage)."""
    lines = data.split(b"\n")
    rows: dict[int, tuple[int, dict, tuple]] = {}
    done: set[int] = set()
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw, object_hook=_decode)
            if "done" in item:
                done.update(int(n) for n in item["done"])
            else:
                seq = int(item["n"])
                rows[seq] = (seq, dict(item["v"]), tuple(item["o"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            if i == len(lines) - 1:
                log.warning("%s: its last line is incomplete (the process died writing it): "
                            "skipped", name)
            else:
                log.error("%s: line %d is damaged and skipped: %r", name, i + 1, raw[:200])
    return [r for seq, r in rows.items() if seq not in done]


class Spool:
    """One spool file, locked by this process: its own (:meth:`open`) or an adopted one
    (:meth:`adopt`). Thread-safe: rows are appended by the event loop's thread (or a hook's
    thread), marked done by the writer thread."""

    def __init__(self, path: Path, fd: int, adopted: bool = False, next_seq: int = 1):
        self.path, self.fd, self.adopted = path, fd, adopted
        self.lock = threading.Lock()
        self.seq = next_seq - 1
        self.unfinished = 0             # rows in the file with no done line yet
        self.size = 0                   # the file's size after the last append (for full())
        self.retired = False            # rotated out: deleted once its rows are done
        self.broken_at: Optional[float] = None    # when a write last failed (None: it works)

    # ------------------------------------------------------------ opening
    @classmethod
    def open(cls, directory: str | os.PathLike) -> "Spool":
        """This process's own spool (the directory is created, mode 0700). Raises OSError."""
        d = Path(directory)
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = d / f"agi-{os.getpid()}-{time.time_ns():x}{SUFFIX}"     # never an old file's name
        # created under a name adopt() does not look at, locked, then renamed (the lock stays):
        # another server starting at the same moment never sees it unlocked
        tmp = path.with_name("." + path.name + ".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(tmp, path)
        except OSError:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        return cls(path, fd)

    @classmethod
    def adopt(cls, directory: str | os.PathLike) -> list[tuple["Spool", list[tuple[int, dict, tuple]]]]:
        """The spool files of ``directory`` whose process is gone, locked by us: each with its
        rows to replay. A file with none is deleted at once."""
        found = []
        d = Path(directory)
        for tmp in d.glob(f".*{SUFFIX}.new") if d.is_dir() else []:
            _remove_if_unlocked(tmp)    # a process that died while creating its spool
        for path in sorted(d.glob(f"*{SUFFIX}")) if d.is_dir() else []:
            fd = _lock(path, os.O_RDWR | os.O_APPEND)
            if fd is None:
                continue            # a live process's, or deleted meanwhile by another adopter
            if os.fstat(fd).st_nlink == 0:
                os.close(fd)        # adopted and finished by another process meanwhile
                continue
            rows = _rows_in(fd, path)
            j = cls(path, fd, adopted=True, next_seq=max((r[0] for r in rows), default=0) + 1)
            if not rows:
                j.close()
                continue
            j.unfinished = len(rows)
            found.append((j, rows))
        return found

    @staticmethod
    def left(directory: str | os.PathLike) -> list[tuple[Path, int]]:
        """Read-only, for ``doctor``: the spool files of ``directory`` whose process is gone,
        each with its rows not yet written (files of running servers are skipped)."""
        out = []
        d = Path(directory)
        for path in sorted(d.glob(f"*{SUFFIX}")) if d.is_dir() else []:
            fd = _lock(path, os.O_RDONLY, exclusive=False)
            if fd is None:
                continue                # a running server's
            try:
                out.append((path, len(_rows_in(fd, path))))
            finally:
                os.close(fd)
        return out

    # ------------------------------------------------------------ writing
    def append(self, rows: Iterable[tuple[dict, tuple]]) -> Optional[list[int]]:
        """Write ``(values, overwrite)`` rows in one ``write``; their sequence numbers, or None
        when the spool cannot be written (disk full, I/O error: logged; those rows then go
        unspooled and their hooks wait for the commit; tried again after
        :data:`RETRY_SECONDS`). A write that failed halfway is cut off again."""
        with self.lock:
            if self.fd < 0 or (self.broken_at is not None
                               and time.monotonic() - self.broken_at < RETRY_SECONDS):
                return None
            seqs, chunks = [], []
            for values, overwrite in rows:
                seqs.append(self.seq + len(seqs) + 1)
                chunks.append(row_line(seqs[-1], values, overwrite))
            size = None
            try:
                size = os.lseek(self.fd, 0, os.SEEK_END)
                _write_all(self.fd, b"".join(chunks))
            except (OSError, TypeError, ValueError) as e:
                if size is not None:
                    try:
                        os.ftruncate(self.fd, size)     # no half row, no unspooled row, in the file
                    except OSError:
                        pass
                if self.broken_at is None:
                    log.error("call spool %s: cannot write (%s); until it can, the hooks wait for "
                              "their rows' commits instead", self.path, e)
                self.broken_at = time.monotonic()
                return None
            if self.broken_at is not None:
                log.warning("call spool %s: writable again", self.path)
                self.broken_at = None
            self.seq += len(seqs)
            self.unfinished += len(seqs)
            self.size = size + sum(map(len, chunks))
            return seqs

    def full(self) -> bool:
        """Past :data:`ROTATE_BYTES` at the last append: time for :meth:`rotate`."""
        return self.size >= ROTATE_BYTES

    def rotate(self) -> "Spool":
        """A new file for this process's next rows (:meth:`open` in the same directory); this
        one takes no more rows and is deleted once its last row is done. Raises OSError (this
        file then goes on being used)."""
        new = Spool.open(self.path.parent)
        with self.lock:
            self.retired = True
            if self.unfinished == 0:
                self._remove()
        return new

    def done(self, seqs: list[int]) -> None:
        """The writer committed (or failed for good) these rows: one ``done`` line, or the file
        emptied when nothing in it is left to do (an adopted file is then deleted)."""
        if not seqs:
            return
        with self.lock:
            if self.fd < 0:
                return
            self.unfinished -= len(seqs)
            try:
                if self.unfinished <= 0:
                    self.unfinished = 0
                    if self.adopted or self.retired:
                        self._remove()
                    else:
                        os.ftruncate(self.fd, 0)
                else:
                    _write_all(self.fd, orjson.dumps({"done": seqs}, option=_LINE))
            except OSError as e:
                # not fatal: at worst these rows are upserted again at the next start
                log.warning("call spool %s: cannot mark rows done (%s)", self.path, e)

    def close(self) -> None:
        """Stop using the file: deleted when nothing in it is left to do, else kept and unlocked
        (the next server to start replays it)."""
        with self.lock:
            if self.fd < 0:
                return
            if self.unfinished == 0:
                self._remove()
            else:
                log.warning("call spool %s: %d row(s) not yet in the database are kept for the "
                            "next start of the FastAGI server", self.path, self.unfinished)
                os.close(self.fd)
                self.fd = -1

    def _remove(self) -> None:
        if self.fd < 0:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        finally:
            os.close(self.fd)
            self.fd = -1


def _rows_in(fd: int, path: Path) -> list[tuple[int, dict, tuple]]:
    """:func:`read_rows` of the file just opened as ``fd``."""
    with open(fd, "rb", closefd=False) as fh:
        return read_rows(fh.read(), str(path))


def _write_all(fd: int, data: bytes) -> None:
    while data:
        n = os.write(fd, data)
        data = data[n:]


def _lock(path: Path, flags: int, exclusive: bool = True) -> Optional[int]:
    """``path`` opened with ``flags`` and ``flock``-ed without waiting; None when it is gone or
    a live process holds its lock."""
    try:
        fd = os.open(path, flags | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _remove_if_unlocked(path: Path) -> None:
    fd = _lock(path, os.O_RDONLY)
    if fd is None:
        return                          # being created by a live process right now
    try:
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)
