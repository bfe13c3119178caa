"""The call-row spool (calltracking/hooks/spool.py): the hook answers before the commit and a
killed server loses, doubles and alters nothing. Real files, real databases, real server
processes killed with SIGKILL."""
from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select, update

from calltracking.db import session_scope
from calltracking.hooks import ROUTE_OVERWRITE
from calltracking.hooks.spool import Spool, read_rows, row_line
from calltracking.hooks.writer import CallWriter
from calltracking.models import Call

from support.agi_server import ServerThread
from support.config import make_config
from support.db_locks import WriteLock
from support.fastagi_client import call, headers
from support.net import free_port

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = 'Ivan "Boss"\n\\N\t,$[x]; DROP TABLE calls;-- Иван ☎'


def _row(linkedid: str, **more) -> dict:
    values = dict(pbx_id="pbx1", linkedid=linkedid, did="74950001001", caller_number="79161234567",
                  caller_name=HOSTILE, started_at=dt.datetime(2026, 3, 4, 6, 30, 1, 250000, tzinfo=dt.timezone.utc),
                  attribution="static", attribution_confidence=Decimal("0.750"), first_call=True,
                  queue="sales", record=False, session_id=None, via_agi=True,
                  updated_at=dt.datetime(2026, 3, 4, 6, 30, 1, tzinfo=dt.timezone.utc))
    values.update(more)
    return values


def _spools(d: Path) -> list[Path]:
    return sorted(d.glob("*.spool"))


# ------------------------------------------------------------------ the file format
def test_a_row_comes_back_exactly_as_written():
    values = _row("j.1")
    data = row_line(7, values, ROUTE_OVERWRITE)
    assert data.count(b"\n") == 1                # the name's newline is escaped: one line a row
    assert read_rows(data) == [(7, values, ROUTE_OVERWRITE)]
    got = read_rows(data)[0][1]
    assert got["started_at"] == values["started_at"] and got["started_at"].tzinfo is not None
    assert isinstance(got["attribution_confidence"], Decimal)


def test_done_rows_are_not_replayed_and_a_torn_last_line_is_skipped(caplog):
    data = (row_line(1, _row("a"), ()) + row_line(2, _row("b"), ()) + b'{"done":[1]}\n'
            + row_line(3, _row("c"), ())[:40])    # the process died inside this write
    with caplog.at_level(logging.WARNING, logger="calltracking.hooks"):
        rows = read_rows(data, "j")
    assert [r[1]["linkedid"] for r in rows] == ["b"]
    assert "its last line is incomplete" in caplog.text


def test_a_damaged_line_in_the_middle_is_logged_and_the_rest_kept(caplog):
    data = row_line(1, _row("a"), ()) + b"\x00garbage{\n" + row_line(2, _row("b"), ())
    with caplog.at_level(logging.ERROR, logger="calltracking.hooks"):
        rows = read_rows(data, "j")
    assert [r[1]["linkedid"] for r in rows] == ["a", "b"]
    assert "line 2 is damaged" in caplog.text


# ------------------------------------------------------------------ the file's life
def test_own_file_is_private_emptied_when_all_done_and_removed_at_close(tmp_path):
    d = tmp_path / "j"
    j = Spool.open(d)
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert stat.S_IMODE(j.path.stat().st_mode) == 0o600         # caller numbers and names
    seqs = j.append([(_row("a"), ()), (_row("b"), ())])
    assert seqs == [1, 2] and j.path.read_bytes().count(b"\n") == 2
    j.done([1])
    assert [r[1]["linkedid"] for r in read_rows(j.path.read_bytes())] == ["b"]
    j.done([2])
    assert j.path.stat().st_size == 0                            # nothing left to do: emptied
    assert j.append([(_row("c"), ())]) == [3]
    assert read_rows(j.path.read_bytes())[0][0] == 3            # appended at the new end
    j.close()
    assert j.path.exists()                                       # row 3 is not done: kept
    j2 = Spool.open(d)
    j2.close()
    assert not j2.path.exists()                                  # nothing in it: removed


def test_adopt_takes_only_files_of_stopped_processes(tmp_path):
    live = Spool.open(tmp_path)
    live.append([(_row("live"), ())])
    stopped = Spool.open(tmp_path)
    stopped.append([(_row("x"), ()), (_row("y"), ())])
    stopped.done([1])
    stopped.close()                                              # y is left undone
    empty = Spool.open(tmp_path)
    empty.close()
    (tmp_path / ".half-created.spool.new").write_bytes(b"")      # its process died creating it

    adopted = Spool.adopt(tmp_path)
    assert [(j.path, [r[1]["linkedid"] for r in rows]) for j, rows in adopted] == [(stopped.path, ["y"])]
    j, rows = adopted[0]
    assert Spool.adopt(tmp_path) == []                         # locked by us now
    j.done([rows[0][0]])
    assert not stopped.path.exists()                             # replayed: deleted
    assert _spools(tmp_path) == [live.path]
    assert not (tmp_path / ".half-created.spool.new").exists()
    live.close()


# ------------------------------------------------------------------ with the writer
def _call_rows(session_factory) -> dict[str, Call]:
    with session_scope(session_factory) as s:
        return {c.linkedid: c for c in s.scalars(select(Call))}


def _wait(pred, timeout=20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def test_writer_marks_rows_done_and_a_new_writer_replays_what_was_left(db_url, data, session_factory, tmp_path):
    engine = session_factory.kw["bind"]
    values = [_row(f"w.{i}", project_id=data["project"], source_id=data["google"]) for i in range(3)]
    w = CallWriter(engine, busy_ms=100, spool=Spool.open(tmp_path))
    assert w.write(values[0], ROUTE_OVERWRITE, wait=10)
    assert w.spool.path.stat().st_size == 0                    # committed: nothing to replay
    with WriteLock(session_factory.kw["bind"]):
        for v in values[1:]:
            assert not w.write(v, ROUTE_OVERWRITE, wait=0.3)     # spooled, not committed
        w.close(timeout=0.5)                                     # stops with them unwritten
    assert sorted(_call_rows(session_factory)) == ["w.0"]
    # what someone changed on the committed row meanwhile is not touched by the replay
    with session_scope(session_factory) as s:
        s.execute(update(Call).where(Call.linkedid == "w.0").values(queue="changed"))

    w2 = CallWriter(engine, busy_ms=100)
    for j, rows in Spool.adopt(tmp_path):
        w2.replay(j, rows)
    assert _wait(lambda: len(_call_rows(session_factory)) == 3)
    w2.close()
    rows = _call_rows(session_factory)
    assert rows["w.0"].queue == "changed"
    assert rows["w.1"].caller_name == HOSTILE and rows["w.2"].source_id == data["google"]
    assert rows["w.1"].attribution_confidence == Decimal("0.750")
    assert _spools(tmp_path) == []                             # replayed files are deleted


def test_a_large_spool_is_rotated_and_the_old_files_go_once_written(db_url, data, session_factory, tmp_path,
                                                                     monkeypatch):
    """Under a steady load some row is always in flight, so the file is never emptied: past
    ROTATE_BYTES the rows go to a new file, and the old one is deleted once its rows are done
    (at a server's saturation the one file grew 2.6 MB a second). Files left by a stop are
    replayed whole, one after the other."""
    from calltracking.hooks import spool as spool_mod
    monkeypatch.setattr(spool_mod, "ROTATE_BYTES", 3000)             # ~3 rows a file
    engine = session_factory.kw["bind"]
    w = CallWriter(engine, busy_ms=100, spool=Spool.open(tmp_path))
    first = w.spool.path
    with WriteLock(engine):
        for i in range(12):
            assert not w.write(_row(f"r.{i}", project_id=data["project"]), ROUTE_OVERWRITE, wait=0.01)
        files = _spools(tmp_path)
        line = len(row_line(99, _row("r.99", project_id=data["project"]), ROUTE_OVERWRITE))   # ~670 bytes
        assert len(files) >= 12 * line // 3000 and first in files, files
        assert all(f.stat().st_size < 3000 + line + 10 for f in files)   # rows go in until it is past the limit
        assert stat.S_IMODE(files[-1].stat().st_mode) == 0o600
        spooled = sorted(r[1]["linkedid"] for f in files for r in read_rows(f.read_bytes()))
        assert spooled == sorted(f"r.{i}" for i in range(12))         # each row in exactly one file
    assert _wait(lambda: len(_call_rows(session_factory)) == 12)
    assert _wait(lambda: _spools(tmp_path) == [w.spool.path])         # the rotated-out files are gone
    assert w.spool.path.stat().st_size == 0
    w.close()
    assert _spools(tmp_path) == []

    # stopped with rows in several files: the next writer replays them all, once
    w = CallWriter(engine, busy_ms=100, spool=Spool.open(tmp_path))
    with WriteLock(engine):
        for i in range(12, 20):
            assert not w.write(_row(f"r.{i}", project_id=data["project"]), ROUTE_OVERWRITE, wait=0.01)
        w.close(timeout=0.3)
    left = Spool.left(tmp_path)
    assert len(left) >= 2 and sum(n for _, n in left) == 8, left
    w2 = CallWriter(engine, busy_ms=100)
    for j, rows in Spool.adopt(tmp_path):
        w2.replay(j, rows)
    assert _wait(lambda: len(_call_rows(session_factory)) == 20)
    w2.close()
    assert _spools(tmp_path) == []


# ------------------------------------------------------------------ a real server, killed
def _server(db_url: str, spool: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLTRACKING_")}
    env.update(CALLTRACKING_DATABASE_URL=db_url, CALLTRACKING_AGI_LISTEN=f"127.0.0.1:{port}",
               CALLTRACKING_AGI_TIMEOUT_MS="3000", CALLTRACKING_AGI_SPOOL_DIR=str(spool),
               CALLTRACKING_GENERAL_DEFAULT_QUEUE="general-q", CALLTRACKING_LOG_LEVEL="info")
    proc = subprocess.Popen([sys.executable, "-c", "from calltracking.cli import main; main(['agi'])"],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    log = b""
    while b"FastAGI listening" not in log:
        line = proc.stderr.readline()
        assert line, f"the server did not start: {log.decode()}"
        log += line
    proc.startup_log = log.decode()
    threading.Thread(target=proc.stderr.read, daemon=True).start()      # never block its writes
    return proc


def test_killed_server_loses_and_doubles_nothing(db_url, data, session_factory, tmp_path):
    """The database refuses writes; the server answers every call with its real routing at
    once (write_wait_ms = 0, the default), is killed with SIGKILL, and the next server writes
    exactly those rows, once, with what the hook decided. (PostgreSQL: the statement the dead
    server had sent goes on in its backend once the lock is released; the replay of the same
    row then merges with it, one row.)"""
    spool, port = tmp_path / "spool", free_port()
    proc = _server(db_url, spool, port)
    try:
        assert call(port, headers(args=("74950001001", "k.0"))).vars["CT_STATUS"] == "ok"
        assert _wait(lambda: "k.0" in _call_rows(session_factory))
        with WriteLock(session_factory.kw["bind"]):
            for i in range(1, 6):
                t0 = time.monotonic()
                v = call(port, headers(args=("74950001001", f"k.{i}"), agi_calleridname='Ivan "Boss"')).vars
                assert time.monotonic() - t0 < 1.0                   # never waits for the lock
                assert v["CT_STATUS"] == "ok" and v["CT_SOURCE"] == "Google Ads" and v["CT_QUEUE"] == "sales"
            (own,) = _spools(spool)
            assert len(read_rows(own.read_bytes())) == 5
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        committed = sorted(_call_rows(session_factory))
        if db_url.startswith("sqlite"):
            assert committed == ["k.0"]                              # none of them committed
        else:   # the dead server's backend still ran the INSERT it was waiting to lock for
            assert committed in (["k.0"], ["k.0", "k.1"]), committed

        proc = _server(db_url, spool, port)
        assert "writing 5 call row(s) left in 1 spool file(s)" in proc.startup_log
        assert _wait(lambda: len(_call_rows(session_factory)) == 6)
        assert call(port, headers(args=("74950001001", "k.6"))).vars["CT_STATUS"] == "ok"
        assert _wait(lambda: len(_call_rows(session_factory)) == 7)
        rows = _call_rows(session_factory)
        for i in range(1, 6):
            c = rows[f"k.{i}"]
            assert (c.source_id, c.campaign_id, c.queue, c.attribution, c.caller_name, c.via_agi) == \
                (data["google"], data["brand"], "sales", "static", 'Ivan "Boss"', True)
        assert own not in _spools(spool)                         # replayed, deleted
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert _spools(spool) == []                              # all written: removed
        assert len(_call_rows(session_factory)) == 7
    finally:
        if proc.poll() is None:
            proc.kill()


def test_without_a_usable_spool_the_hook_waits_for_its_commit(db_url, data, session_factory, tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with caplog.at_level(logging.WARNING, logger="calltracking.agi"):
        srv = ServerThread(make_config(db_url, agi__write_wait_ms=0, agi__spool_dir=blocker / "spool"),
                           session_factory)
    try:
        assert "no call-row spool" in caplog.text and "waits up to 50 ms" in caplog.text
        assert srv.server.env.writer.spool is None
        v = call(srv.port, headers(args=("74950001001", "n.1"))).vars
        assert v["CT_STATUS"] == "ok"
        assert "n.1" in _call_rows(session_factory)                 # committed before the answer
    finally:
        srv.stop()


def test_commit_wait_is_the_setting_and_at_least_the_minimum_without_a_spool(tmp_path):
    from calltracking.hooks.env import commit_wait_ms
    for setting, spooled, unspooled in ((0, 0, 50), (20, 20, 50), (50, 50, 50), (300, 300, 300)):
        cfg = make_config("sqlite://", agi__write_wait_ms=setting, agi__spool_dir=tmp_path)
        assert (commit_wait_ms(cfg, True), commit_wait_ms(cfg, False)) == (spooled, unspooled), setting


# ------------------------------------------------------------------ doctor
def test_doctor_reports_rows_a_stopped_server_left(tmp_path):
    from agi.doctor import spool_status
    assert spool_status("").status == "warn"
    assert spool_status(str(tmp_path / "not-yet")).status == "ok"
    live = Spool.open(tmp_path)
    live.append([(_row("in-flight"), ())])                       # a running server's: not counted
    assert spool_status(str(tmp_path)).status == "ok"
    stopped = Spool.open(tmp_path)
    stopped.append([(_row("a"), ()), (_row("b"), ()), (_row("c"), ())])
    stopped.done([1])
    stopped.close()
    r = spool_status(str(tmp_path))
    assert r.status == "warn" and r.detail.startswith("2 call row(s) left by a stopped FastAGI server in 1 file(s)")
    assert "calltracking run" in r.fix
    assert [n for _, n in Spool.left(tmp_path)] == [2]           # read-only: still there
    (adopted, rows), = Spool.adopt(tmp_path)
    adopted.done([seq for seq, _, _ in rows])
    assert spool_status(str(tmp_path)).status == "ok"
    live.close()


def test_a_failed_write_leaves_no_half_row_and_is_retried(tmp_path, monkeypatch, caplog):
    """Disk full halfway through a write: the half is cut off, the rows are reported unspooled
    (their hooks wait for the commit), and a later write works again."""
    from calltracking.hooks import spool as spool_mod
    j = Spool.open(tmp_path)
    assert j.append([(_row("a"), ())]) == [1]
    real_write = os.write

    def full_disk(fd, data):
        real_write(fd, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spool_mod.os, "write", full_disk)
    with caplog.at_level(logging.ERROR, logger="calltracking.hooks"):
        assert j.append([(_row("b"), ()), (_row("c"), ())]) is None
    assert "No space left on device" in caplog.text
    assert [r[1]["linkedid"] for r in read_rows(j.path.read_bytes())] == ["a"]   # no half of b
    monkeypatch.setattr(spool_mod.os, "write", real_write)
    assert j.append([(_row("d"), ())]) is None                   # not before RETRY_SECONDS
    monkeypatch.setattr(spool_mod, "RETRY_SECONDS", 0.0)
    assert j.append([(_row("d"), ())]) == [2]
    assert [(r[0], r[1]["linkedid"]) for r in read_rows(j.path.read_bytes())] == [(1, "a"), (2, "d")]
    j.done([1, 2])
    j.close()
