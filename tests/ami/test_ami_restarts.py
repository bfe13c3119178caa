"""Records stay exact after any restart of the listener or of Asterisk (recorded live streams).

Each recording of ``fixtures/restarts/`` (``live_restarts.py``: a real Asterisk 22, the real
listener killed, stopped, cut off, outlived by an Asterisk restart, started late) is served by a
real AMI server and split where the live run split it: the listener hears the stream up to the
``kill``/``stop``/``cut`` mark, is away until the recorder's sync (where the listener came back
live), is then told what Asterisk answered at that moment (Ping, QueueStatus, CoreShowChannels)
and hears the rest. Its records must equal the ones of the same stream interpreted without
interruption: same status, reason, operator and legs, every time within 1 s.
"""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time

import pytest
from sqlalchemy import select, update

from calltracking.models import AmiEvent, AmiListenerState, Call, Project
from support.ami_restarts import RecordedAsterisk, Recording, epoch
from support.ami_server import headers
from support.config import make_config
from support.fixtures import RESTARTS
from support.listener import Listener
from support.polling import poll




class Run:
    """One recording served, and the listeners that hear it."""

    def __init__(self, name, db_url, session_factory, tmp_path):
        self.rec = Recording.load(RESTARTS / name)
        self.srv = RecordedAsterisk(self.rec, members=self.members(), chunk=701).start()
        self.db_url, self.factory, self.tmp = db_url, session_factory, tmp_path
        self.listeners: list[Listener] = []

    def members(self) -> dict:
        out: dict = {}
        for f in next(iter(self.rec.syncs.values())).queues:
            h = headers(f)
            if h.get("Event") == "QueueMember":
                out.setdefault(h["Queue"], []).append((h["Location"], h["Name"]))
        return out

    def queue_log(self, until: float | None) -> str:
        path = self.tmp / "queue_log"
        path.write_text(self.rec.queue_log_lines(until))
        return str(path)

    def listener(self, queue_log: str = "") -> Listener:
        lst = Listener(make_config(self.db_url, ami__port=self.srv.port, ami__queue_log=queue_log), self.factory).start()
        self.listeners.append(lst)
        return lst

    def spawn(self, queue_log: str = "") -> subprocess.Popen:
        """The listener as a process of its own (``calltracking ami``), to be killed."""
        cfg = self.tmp / "config.ini"
        cfg.write_text(f"[ami]\nsecret = ctsecret\nusername = calltracking\nping_interval = 1\n"
                       f"queue_log = {queue_log}\n[general]\npbx_id = pbx1\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLTRACKING_")}
        env.update(CALLTRACKING_CONFIG=str(cfg), CALLTRACKING_DATABASE_URL=self.db_url,
                   CALLTRACKING_AMI_PORT=str(self.srv.port), CALLTRACKING_GENERAL_DEFAULT_REGION="RU")
        return subprocess.Popen([sys.executable, "-c", "from calltracking.cli import main; main()", "ami"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def committed(self, position: int) -> None:
        """Wait until the listener wrote the state of the script's events before ``position``."""
        from calltracking.interpret import EVENTTYPE_MAP

        # the reader drops unread what the interpreter never uses (CEL, Newexten, most VarSets)
        last = max(ts for h, ts in list(self.rec.events())[:position]
                   if h.get("Event") in EVENTTYPE_MAP and h.get("Event") != "VarSet")

        def seen():
            with self.factory() as s:
                at = s.scalar(select(AmiListenerState.last_event_at))
            return at is not None and at.timestamp() >= last - 1e-6
        poll(seen)

    def back(self, n: int = 1) -> None:
        """The listener is away until sync ``n`` (its connection, if any, is cut): the script runs
        on unheard, then the sync's answers."""
        self.srv.away(n)

    def finish(self, lst: Listener) -> None:
        self.srv.emit()
        lst.wait_idle(0)
        time.sleep(0.2)
        lst.wait_idle(0)

    def close(self) -> None:
        for lst in self.listeners:
            if lst.thread.is_alive():
                lst.stop()
        self.srv.stop()


@pytest.fixture
def served(db_url, session_factory, tmp_path):
    runs = []

    def start(name):
        run = Run(name, db_url, session_factory, tmp_path)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.close()


def assert_same_as_uninterrupted(got: list[dict], rec: Recording, allowed=()) -> dict:
    want = rec.expected()
    by_lid = {c["linkedid"]: c for c in got}
    assert set(by_lid) == set(want)
    for lid, exp in want.items():
        diffs = [d for d in Recording.differences(by_lid[lid], exp) if not d.startswith(tuple(allowed))]
        assert diffs == [], (lid, diffs)
    return by_lid


def kill_at(run: Run, mark: str, queue_log: str = "") -> None:
    """The listener (a process) hears the stream up to ``mark`` and is killed (SIGKILL)."""
    proc = run.spawn(queue_log)
    try:
        run.srv.wait_logins(1, timeout=30)
        time.sleep(0.3)
        position = run.rec.marks[mark][0]
        run.srv.emit_to(position)
        run.committed(position)
    finally:
        proc.kill()
        proc.wait(10)


@pytest.mark.parametrize("with_queue_log", [True, False], ids=["queue_log", "ami_only"])
def test_killed_while_ringing_answered_while_down(with_queue_log, tracked, served, calls, session_factory):
    """The listener is SIGKILLed while Ghost rings; Vera answers while it is down; the call ends
    after it is back. Before: stored as missed, with a leg '103' of kind pickup answered when the
    call entered the queue, talk 11 s. A second call begins as the listener starts."""
    run = served("kill_answered_while_down")
    kill_at(run, "kill")
    run.back(1)
    qlog = run.queue_log(run.rec.syncs[1].at) if with_queue_log else ""
    lst = run.listener(qlog)
    live = min(calls(), key=lambda c: c["started_at"])
    assert live["status"] == "in_progress" and live["operator"] == "Vera" and live["answered_at"]
    assert [(leg["operator"], leg["kind"]) for leg in live["legs"]] == [("Ghost", "queue"), ("Vera", "queue")]
    run.finish(lst)
    # without queue_log nothing tells when Ghost's ring, given up while the listener was away, ended
    got = assert_same_as_uninterrupted(calls(), run.rec, () if with_queue_log else ("leg Ghost ended_at",))
    rec = got[live["linkedid"]]
    assert (rec["status"], rec["operator"]) == ("answered", "Vera")
    assert all(leg["kind"] == "queue" for leg in rec["legs"])


def test_call_started_while_the_listener_starts(tracked, served, calls):
    """Call B begins while the stopped listener is starting again: its start is its channel's
    creation (Duration and Uniqueid), not the last event heard (call A's hang-up)."""
    run = served("started_while_starting")
    lst = run.listener()
    run.srv.emit_to(run.rec.marks["stop"][0])
    lst.wait_idle(0)
    lst.stop()
    run.back(1)
    lst = run.listener(run.queue_log(run.rec.syncs[1].at))
    run.finish(lst)
    got = assert_same_as_uninterrupted(calls(), run.rec)
    first, second = sorted(got.values(), key=lambda c: c["started_at"])
    assert epoch(second["started_at"]) - epoch(first["ended_at"]) > 1.0


def test_stopped_mid_talk_and_the_call_ended_meanwhile(tracked, served, calls):
    """SIGTERM while Anna talks; the call ends while the listener is down: queue_log's
    COMPLETEAGENT tells when (the record is not 'vanished')."""
    run = served("sigterm_ended_while_down")
    lst = run.listener()
    run.srv.emit_to(run.rec.marks["stop"][0])
    lst.wait_idle(0)
    lst.stop()
    run.back(1)
    lst = run.listener(run.queue_log(run.rec.syncs[1].at))
    run.finish(lst)
    got = assert_same_as_uninterrupted(calls(), run.rec)
    (rec,) = got.values()
    assert rec["talk_seconds"] > 3.0


def test_stopped_mid_talk_without_queue_log_closes_at_the_last_moment_known(tracked, served, calls,
                                                                              session_factory):
    run = served("sigterm_ended_while_down")
    lst = run.listener()
    position = run.rec.marks["stop"][0]
    run.srv.emit_to(position)
    lst.wait_idle(0)
    lst.stop()
    run.back(1)
    run.finish(run.listener())
    (rec,) = calls()
    with session_factory() as s:
        assert s.scalar(select(Call.closed_reason)) == "vanished"
        last = s.scalar(select(AmiListenerState.last_event_at))
    assert rec["status"] == "answered" and rec["operator"] == "Anna"
    assert epoch(rec["ended_at"]) < last.timestamp() + 1.0


def test_connection_lost_and_answered_meanwhile(tracked, served, calls):
    run = served("connection_lost_answered")
    lst = run.listener(run.queue_log(run.rec.syncs[1].at))
    run.srv.emit_to(run.rec.marks["cut"][0])
    lst.wait_idle(0)
    run.back(1)
    lst.wait_resyncs(2)
    assert lst.stats["connections"] == 2
    run.finish(lst)
    assert_same_as_uninterrupted(calls(), run.rec)


def test_asterisk_restarted_under_the_listener(tracked, served, calls):
    """core restart now mid-call: Asterisk hangs the call up (events heard), says Shutdown and
    closes; the listener reconnects when it is back and records the next call."""
    run = served("asterisk_restart")
    lst = run.listener(run.queue_log(run.rec.syncs[1].at))
    shutdown = next(i for i, (h, _) in enumerate(run.rec.events()) if h.get("Event") == "Shutdown")
    run.srv.emit_to(shutdown + 1)
    lst.wait_idle(0)
    run.back(1)
    lst.wait_resyncs(2)
    run.finish(lst)
    assert len(assert_same_as_uninterrupted(calls(), run.rec)) == 2


def test_listener_started_after_calls_began(tracked, served, calls):
    """Started while one call rings Vera (Ghost gave up twice before) and another talks with Anna:
    legs only for registered operators seen live or in queue_log, times within 1 s."""
    run = served("started_after_calls")
    run.back(1)
    lst = run.listener(run.queue_log(run.rec.syncs[1].at))
    run.finish(lst)
    got = assert_same_as_uninterrupted(calls(), run.rec)
    assert sorted(c["operator"] for c in got.values()) == ["Anna", "Vera"]


def test_listener_started_after_calls_began_ami_only(tracked, served, calls):
    """Without queue_log the rings given up before the listener started are unknown: no leg is
    made up for them; the rest is as exact."""
    run = served("started_after_calls")
    run.back(1)
    run.finish(run.listener())
    want = run.rec.expected()
    for c in calls():
        exp = want[c["linkedid"]]
        diffs = Recording.differences(dict(c, legs=[]), dict(exp, legs=[]))
        assert diffs == [], diffs
        seen = [(leg["operator"], leg["outcome"]) for leg in c["legs"]]
        assert set(seen) <= {(leg["operator_name"], leg["outcome"]) for leg in exp["legs"]}
        assert all(leg["kind"] == "queue" for leg in c["legs"])


def test_abandoned_while_down(tracked, served, calls):
    run = served("abandoned_while_down")
    kill_at(run, "kill")
    run.back(1)
    run.finish(run.listener(run.queue_log(run.rec.syncs[1].at)))
    got = assert_same_as_uninterrupted(calls(), run.rec)
    (rec,) = got.values()
    assert (rec["status"], rec["missed_reason"]) == ("missed", "abandoned")


def test_calls_begun_and_ended_while_down(tracked, served, calls, session_factory):
    """Two calls began and ended while the listener was down: the FastAGI hook's rows
    (in_progress) are completed from queue_log (answered by Anna; abandoned)."""
    run = served("whole_calls_while_down")
    live = {c["linkedid"]: c for c in run.rec.meta["listener"]}
    first = min(epoch(c["started_at"]) for c in live.values())
    with session_factory() as s, s.begin():
        pid = s.scalar(select(Project.id).where(Project.key == "acme"))
        for c in live.values():
            s.add(Call(pbx_id="pbx1", linkedid=c["linkedid"], project_id=pid, did=c["did"],
                       caller_number=c["caller"], queue=c["queue"], via_agi=True, status="in_progress",
                       started_at=dt.datetime.fromisoformat(c["started_at"]), attribution="static"))
        s.add(AmiListenerState(pbx_id="pbx1", events=0, unknown_events=0, malformed_frames=0,
                               without_timestamp=0, classes="{}", stats="{}",
                               last_event_at=dt.datetime.fromtimestamp(first - 5, dt.timezone.utc),
                               updated_at=dt.datetime.fromtimestamp(first - 5, dt.timezone.utc)))
    run.back(1)
    run.finish(run.listener(run.queue_log(run.rec.syncs[1].at)))
    got = assert_same_as_uninterrupted(calls(), run.rec)
    assert sorted((c["status"], c["missed_reason"]) for c in got.values()) == [
        ("answered", None), ("missed", "abandoned")]


def test_records_replay_identically(tracked, served, calls, session_factory, run_cli):
    """What the reconciliation decided is stored with the call: a second restart and
    `ami rebuild` give the same records."""
    run = served("kill_answered_while_down")
    kill_at(run, "kill")
    run.back(1)
    lst = run.listener(run.queue_log(run.rec.syncs[1].at))
    talking = next(i for i, (h, _) in enumerate(run.rec.events()) if h.get("Event") == "AgentComplete")
    run.srv.emit_to(talking)        # the call still talking, its answer still estimated
    lst.wait_idle(0)
    lst.stop()
    run.srv.sync = None             # the next sync: the server's own view of the live channels
    lst = run.listener()
    run.finish(lst)
    first = calls()
    assert_same_as_uninterrupted(first, run.rec)
    lst.stop()
    with session_factory() as s, s.begin():
        s.execute(update(Call).values(answered_at=None, talk_seconds=None, status="in_progress"))
        assert s.scalar(select(AmiEvent.id).where(AmiEvent.event == "CTGap").limit(1)) is not None
    out = run_cli("ami", "rebuild", "--since", "2000-01-01")
    assert out.exit_code == 0, out.output
    assert calls() == first
