"""Nothing lost: kill and restart mid-call, dropped connection, SIGTERM, a burst of 10k events."""
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from calltracking.models import AmiEvent, Call
from support.ami_server import event_count, headers, load
from support.ami_streams import burst
from support.fixtures import FIXTURES, as_registered
from support.polling import poll

EXPECTED = {e["linkedid"]: as_registered(e) for e in json.loads((FIXTURES / "expected_calls.json").read_text())}


def epoch(iso):
    return dt.datetime.fromisoformat(iso).timestamp() if iso else None


def same_as_expected(rec, exp):
    assert rec["status"] == exp["status"] and rec["operator"] == exp.get("operator")
    for k in ("started_at", "queued_at", "answered_at", "ended_at"):
        if k in exp:
            assert epoch(rec[k]) == pytest.approx(exp[k], abs=1e-6), k
    for k in ("wait_seconds", "talk_seconds", "hold_seconds"):
        assert rec[k] == pytest.approx(exp[k], abs=0.0011), k


def _ts(frame_pred_frames, pred):
    for f in frame_pred_frames:
        h = headers(f)
        if pred(h):
            return float(h["Timestamp"])
    raise AssertionError("no such frame")



def spawn_listener(db_url, port, tmp_path):
    cfg = tmp_path / "config.ini"
    cfg.write_text("[ami]\nsecret = ctsecret\nusername = calltracking\nping_interval = 1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLTRACKING_")}
    env.update(CALLTRACKING_CONFIG=str(cfg), CALLTRACKING_DATABASE_URL=db_url,
               CALLTRACKING_AMI_PORT=str(port), CALLTRACKING_GENERAL_DEFAULT_REGION="RU")
    return subprocess.Popen([sys.executable, "-c", "from calltracking.cli import main; main()", "ami"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_listener_killed_mid_call_resumes_from_stored_events(tracked, asterisk, listener, calls, db_url,
                                                             session_factory, tmp_path):
    frames = load(FIXTURES / "answered_queue.ami")
    asterisk.add(frames)
    proc = spawn_listener(db_url, asterisk.port, tmp_path)
    try:
        asterisk.wait_logins(1, timeout=30)
        time.sleep(0.3)
        asterisk.emit_until(lambda h: h.get("Event") == "AgentConnect")

        def answered():
            with session_factory() as s:
                return s.scalars(select(Call.answered_at)).first()
        poll(answered)
    finally:
        proc.kill()                             # SIGKILL: no chance to flush anything more
        proc.wait(10)
    (live,) = calls()
    assert live["status"] == "in_progress"
    lst = listener()                            # a new listener process state, same database
    asterisk.emit()
    lst.wait_idle(0)
    poll(lambda: calls()[0]["status"] == "answered")
    lst.wait_idle(0)
    (rec,) = calls()
    same_as_expected(rec, EXPECTED["1795391970.0"])
    assert [l["operator"] for l in rec["legs"]] == ["Anna"]


def test_sigterm_stops_cleanly_and_drains(tracked, asterisk, calls, db_url, tmp_path, session_factory):
    frames = load(FIXTURES / "abandoned_queue.ami")
    asterisk.add(frames)
    proc = spawn_listener(db_url, asterisk.port, tmp_path)
    try:
        asterisk.wait_logins(1, timeout=30)
        time.sleep(0.3)
        asterisk.emit()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out.decode()
    (rec,) = calls()
    same_as_expected(rec, EXPECTED["1795391983.4"])
    assert rec["missed_reason"] == "abandoned"


def test_connection_dropped_mid_call_is_reconciled(tracked, asterisk, listener, calls, session_factory):
    frames = load(FIXTURES / "two_concurrent.ami")
    asterisk.add(frames)
    lst = listener()
    asterisk.emit_until(lambda h: h.get("Event") == "BridgeEnter" and h.get("Uniqueid") == "1795392091.49")
    lst.wait_idle(0)
    lost_at = _ts(frames, lambda h: h.get("Event") == "BridgeEnter" and h.get("Uniqueid") == "1795392091.49")
    # While the listener is away, call .46 ends (its events are never delivered).
    asterisk.drop(skip_to=asterisk.position_after(
        lambda h: h.get("Event") == "Hangup" and h.get("Uniqueid") == "1795392091.46"))
    lst.wait_resyncs(2)
    assert asterisk.logins == 2 and lst.stats["connections"] == 2
    lst.wait_idle(0)
    asterisk.emit()
    lst.wait_idle(0)
    got = {c["linkedid"]: c for c in calls()}
    same_as_expected(got["1795392091.48"], EXPECTED["1795392091.48"])
    gone = got["1795392091.46"]
    assert gone["status"] == "answered" and gone["operator"] == "Anna"
    assert epoch(gone["ended_at"]) == pytest.approx(lost_at, abs=1e-6)
    assert gone["talk_seconds"] == pytest.approx(lost_at - 1795392092.341114, abs=0.0011)
    with session_factory() as s:
        reasons = dict(s.execute(select(Call.linkedid, Call.closed_reason)).all())
    assert reasons == {"1795392091.46": "vanished", "1795392091.48": ""}


def test_burst_of_10k_events_nothing_lost_or_duplicated(tracked, asterisk, listener, calls, session_factory):
    frames, expected = burst(10_000)
    assert event_count(frames) >= 10_000
    asterisk.add(frames)
    lst = listener()
    asterisk.emit()
    lst.wait_idle(event_count(frames), timeout=120)
    got = {c["linkedid"]: c for c in calls()}
    assert set(got) == set(expected) and len(got) == len(expected)
    for lid, exp in expected.items():
        rec = got[lid]
        assert (rec["status"], rec["missed_reason"], rec["operator"]) == (
            exp["status"], exp.get("missed_reason"), exp.get("operator"))
        for k in ("wait_seconds", "talk_seconds", "hold_seconds"):
            assert rec[k] == pytest.approx(exp[k], abs=0.0011), (lid, k)
        assert epoch(rec["started_at"]) == pytest.approx(exp["started_at"], abs=1e-6)
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Call)) == len(expected)
        assert s.scalar(select(func.count()).select_from(AmiEvent)) > 0


def test_reader_keeps_reading_while_the_database_is_locked(tracked, asterisk, listener, calls, db_url,
                                                           engine):
    """The socket is drained while writes wait for the database; nothing is lost afterwards."""
    frames, expected = burst(10_000)
    lst = listener()
    asterisk.add(frames)
    if engine.dialect.name == "sqlite":
        import sqlite3
        raw = sqlite3.connect(engine.url.database, isolation_level=None)
        raw.execute("BEGIN EXCLUSIVE")
        release = raw.close
    else:
        conn = engine.connect()
        tx = conn.begin()
        conn.exec_driver_sql("LOCK TABLE calls, ami_events, ami_calls IN ACCESS EXCLUSIVE MODE")

        def release():
            tx.rollback()
            conn.close()
    try:
        t = time.monotonic()
        asterisk.emit()                       # ~4.6 MB: blocks if the listener stops reading
        took = time.monotonic() - t
        proto = lst.stats["connection"].protocol
        poll(lambda: proto.frames + proto.parser.skipped >= len(frames), timeout=30)   # all read
        assert not lst.stats["writer"].idle   # while the write still waits for the lock
    finally:
        release()
    assert took < 10
    lst.wait_idle(event_count(frames), timeout=120)
    got = {c["linkedid"]: c for c in calls()}
    assert set(got) == set(expected)
