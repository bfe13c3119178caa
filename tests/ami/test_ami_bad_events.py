"""A bad AMI event never blocks the listener.

The real listener, fed by the AMI server with a recorded call, then a poisoned event, then
another recorded call: both calls are recorded exactly, the poison is logged once (raw text,
escaped, truncated), counted (``ami_listener_state.stats`` and ``/metrics``) and skipped (or,
for a bad ``Timestamp``, dated by the stream's clock), the writer never retries it, and the
listener keeps running. The last resort (an event that passes every check at the edge but
that the database refuses) is checked with a trigger of the test database, on the listener
and on one batch holding good events before and after two poisoned ones.
"""
import json
import math
import time

import pytest
from sqlalchemy import func, select

from calltracking import metrics
from calltracking.models import AmiCall, AmiEvent, AmiListenerState
from support.ami_server import event_count, load
from support.fixtures import FIXTURES, as_registered

EXPECTED = {e["linkedid"]: as_registered(e) for e in json.loads((FIXTURES / "expected_calls.json").read_text())}
FIRST, SECOND = "answered_queue", "abandoned_queue"
A, B = "1795391970.0", "1795391983.4"       # their calls
C = "1795391980.77"                          # the poisoned event's call (a tracked DID)
C_START = 1795391980.5                       # between A's end and B's start
LOG_LIMIT = 2500                             # a quarantine log line stays about this short
METRIC = "calltracking_ami_events_quarantined_total"


def newchannel(uid=C, ts=b"%.6f" % C_START, name=b"Ivan"):
    return (b"Event: Newchannel\r\nPrivilege: call,all\r\nTimestamp: %s\r\nChannel: PJSIP/trunk-000000c1\r\n"
            b"ChannelState: 4\r\nChannelStateDesc: Ring\r\nCallerIDNum: 79161110012\r\nCallerIDName: %s\r\n"
            b"ConnectedLineNum: <unknown>\r\nConnectedLineName: <unknown>\r\nLanguage: en\r\nAccountCode: \r\n"
            b"Context: from-trunk\r\nExten: 74950001012\r\nPriority: 1\r\nUniqueid: %s\r\nLinkedid: %s\r\n\r\n"
            % (ts, name, uid.encode(), uid.encode()))


def hangup(ts):
    return (b"Event: Hangup\r\nPrivilege: call,all\r\nTimestamp: %s\r\nChannel: PJSIP/trunk-000000c1\r\n"
            b"ChannelState: 4\r\nChannelStateDesc: Ring\r\nCallerIDNum: 79161110012\r\nCallerIDName: Ivan\r\n"
            b"Context: from-trunk\r\nExten: 74950001012\r\nPriority: 1\r\nUniqueid: %s\r\nLinkedid: %s\r\n"
            b"Cause: 16\r\nCause-txt: Normal Clearing\r\n\r\n" % (ts, C.encode(), C.encode()))


LONG_ID = "1795391980." + "7" * 100
#: an event whose values break its handler (the interpreter's own reconciliation event, forged)
BREAKS_HANDLER = (b"Event: CTGap\r\nTimestamp: 1795391980.600000\r\nLinkedid: %s\r\n"
                  b"Value: answer=not,a,time\r\n\r\n" % C.encode())
#: kind -> (frames between the two calls, reason counted, text the log line shows, C's fate)
POISONS = {
    "timestamp_inf": ([newchannel(), hangup(b"1e309")], "timestamp", "Timestamp: 1e309", "dated"),
    "timestamp_nan": ([newchannel(), hangup(b"nan")], "timestamp", "Timestamp: nan", "dated"),
    "timestamp_negative": ([newchannel(), hangup(b"-1795391980.9")], "timestamp", "Timestamp: -1795391980.9",
                           "dated"),
    "timestamp_huge": ([newchannel(), hangup(b"99999999999999.9")], "timestamp", "Timestamp: 99999999999999.9",
                       "dated"),
    "linkedid_too_long": ([newchannel(uid=LONG_ID)], "id_too_long", f"Linkedid: {LONG_ID}", "absent"),
    "value_100kB": ([newchannel(name=b"x" * 100_000)], "value_too_long", "CallerIDName: xxxxxxxx", "absent"),
    "nul_byte": ([newchannel(name=b"Iv\x00an\r\nEvent: Forged")], "nul_byte", "CallerIDName: Iv\\x00an\\r\\nEvent",
                 "absent"),
    "not_utf8": ([newchannel(name="Иван".encode("cp1251"))], "undecodable", "CallerIDName: \\xc8\\xe2\\xe0\\xed",
                 "replaced"),
    "breaks_interpreter": ([newchannel(), BREAKS_HANDLER], "handler_error", "Value: answer=not,a,time", "call"),
    "write_rejected": ([newchannel(name=b"POISON")], "write_failed", "CallerIDName: POISON", "absent"),
}


def reject_poison(engine):
    """A rule of the database the listener cannot know: calls named POISON are refused (the
    stand-in for any value a database refuses that the edge checks let through)."""
    with engine.begin() as c:
        if engine.dialect.name == "sqlite":
            c.exec_driver_sql("CREATE TRIGGER reject_poison BEFORE INSERT ON calls WHEN NEW.caller_name = 'POISON' "
                              "BEGIN SELECT RAISE(ABORT, 'calls named POISON are refused'); END")
        else:
            c.exec_driver_sql("CREATE FUNCTION reject_poison() RETURNS trigger AS $$ BEGIN "
                              "IF NEW.caller_name = 'POISON' THEN RAISE EXCEPTION 'calls named POISON are refused'; "
                              "END IF; RETURN NEW; END $$ LANGUAGE plpgsql")
            c.exec_driver_sql("CREATE TRIGGER reject_poison BEFORE INSERT OR UPDATE ON calls FOR EACH ROW "
                              "EXECUTE FUNCTION reject_poison()")


def quarantined(reason):
    return metrics.REGISTRY.get_sample_value(METRIC, {"reason": reason}) or 0.0


def exact(rec, exp):
    """The record of a recorded call is the expected one (what test_ami_recorded checks)."""
    assert rec["did"].lstrip("+") == exp["did"] and rec["caller"].lstrip("+") == exp["caller"]
    assert (rec["status"], rec["missed_reason"], rec["queue"], rec["operator"]) == (
        exp["status"], exp.get("missed_reason"), exp.get("queue"), exp.get("operator"))
    for k in ("started_at", "queued_at", "answered_at", "ended_at"):
        if k in exp:
            assert epoch(rec[k]) == pytest.approx(exp[k], abs=1e-6), k
        else:
            assert rec[k] is None, k
    for k in ("wait_seconds", "talk_seconds", "hold_seconds"):
        assert rec[k] == pytest.approx(exp[k], abs=0.0011), k


def epoch(iso):
    import datetime as dt

    return dt.datetime.fromisoformat(iso).timestamp() if iso else None


def ami_warnings(caplog):
    return [r for r in caplog.records if r.name.startswith("calltracking") and r.levelname in ("WARNING", "ERROR")]


@pytest.mark.parametrize("kind", list(POISONS))
def test_a_poisoned_event_between_two_calls(kind, tracked, asterisk, listener, calls, session_factory, engine,
                                            caplog):
    poison, reason, shown, fate = POISONS[kind]
    if kind == "write_rejected":
        reject_poison(engine)
    first, second = load(FIXTURES / f"{FIRST}.ami"), load(FIXTURES / f"{SECOND}.ami")
    frames = first + poison + second
    before = quarantined(reason)
    caplog.set_level("INFO", logger="calltracking")
    lst = listener()
    asterisk.add(frames)
    started = time.monotonic()
    asterisk.emit()
    lst.wait_idle(event_count(frames), timeout=30)          # bounded: no endless retry
    took = time.monotonic() - started
    writer = lst.stats["writer"]
    assert writer.failures == 0, "the writer retried a batch"
    assert lst.thread.is_alive() and not writer.closing      # still running
    got = {c["linkedid"]: c for c in calls()}
    exact(got.pop(A), EXPECTED[A])
    exact(got.pop(B), EXPECTED[B])
    with session_factory() as s:
        stored_c = s.scalars(select(AmiEvent.data).where(AmiEvent.linkedid == C)).all()
        long_ids = s.scalar(select(func.count()).select_from(AmiCall).where(func.length(AmiCall.linkedid) > 64))
    assert not long_ids
    if fate == "absent":
        assert got == {} and stored_c == []
    elif fate == "call":                     # the call is kept, without the event
        (rec,) = got.values()
        assert rec["linkedid"] == C and rec["status"] == "in_progress"
        assert [d.split("\n", 1)[0] for d in stored_c] == ["Event: Newchannel"]
    elif fate == "replaced":                 # undecodable bytes shown as U+FFFD: the call is kept
        (rec,) = got.values()
        assert rec["linkedid"] == C and rec["caller_name"] == "\ufffd" * 4
    else:                                    # the Hangup dated by the stream's clock: just after C began
        (rec,) = got.values()
        assert rec["linkedid"] == C and epoch(rec["started_at"]) == pytest.approx(C_START, abs=1e-6)
        assert C_START <= epoch(rec["ended_at"]) <= C_START + took + 1.0
        (hang,) = [d for d in stored_c if d.startswith("Event: Hangup")]
        assert f"Timestamp: {epoch(rec['ended_at']):.6f}" in hang
    assert quarantined(reason) == before + 1
    lines = [r.getMessage() for r in ami_warnings(caplog)]
    mine = [m for m in lines if shown in m]
    assert len(mine) == 1, lines                            # logged once, escaped
    assert len(mine[0]) <= LOG_LIMIT and "\n" not in mine[0] and "\x00" not in mine[0]
    assert not [m for m in lines if "retrying" in m], lines
    lst.stop()
    with session_factory() as s:
        stats = json.loads(s.get(AmiListenerState, "pbx1").stats)
    assert stats["quarantined"] == {reason: 1}


def parsed(frames, recv):
    from calltracking.interpret import FrameParser

    return [("ev", recv, f) for f in FrameParser().feed(b"".join(frames))]


def test_one_batch_with_two_poisons_keeps_everything_around_them(tracked, session_factory, engine, calls):
    """The last resort on one batch: the calls before, between and after two events the
    database refuses are written; only those two are set aside, in a bounded number of tries."""
    from calltracking.callstore.store import CallStore
    from calltracking.callstore.ingest import Processor

    reject_poison(engine)
    first, second = load(FIXTURES / f"{FIRST}.ami"), load(FIXTURES / f"{SECOND}.ami")
    other = newchannel(uid="1795391981.90", ts=b"1795391981.000000", name=b"Olga").replace(
        b"trunk-000000c1", b"trunk-000000c2")
    batch = parsed([newchannel(name=b"POISON")] + first + [other]
                   + [newchannel(uid="1795391982.91", ts=b"1795391982.000000", name=b"POISON")] + second,
                   time.time())
    proc = Processor(CallStore(session_factory, "pbx1"))
    proc.restore()
    before = quarantined("write_failed")
    tries = []
    persist = proc.store.persist

    def counted(*args, **kw):                 # counts the writes the search needs (not a stand-in)
        tries.append(1)
        return persist(*args, **kw)

    proc.store.persist = counted
    t = time.monotonic()
    proc.process(batch)
    assert time.monotonic() - t < 20
    assert len(tries) <= 2 * 3 * math.ceil(math.log2(len(batch)))   # O(log n) per poison, never a loop
    got = {c["linkedid"]: c for c in calls()}
    exact(got.pop(A), EXPECTED[A])
    exact(got.pop(B), EXPECTED[B])
    assert set(got) == {"1795391981.90"} and got["1795391981.90"]["caller_name"] == "Olga"
    assert quarantined("write_failed") == before + 2
    assert proc.quarantined == {"write_failed": 2}
    assert proc.pending_events == [] and proc.fed == []
    # and the next batch goes through the ordinary path
    proc.process(parsed([hangup(b"1795391981.500000").replace(C.encode(), b"1795391981.90")
                         .replace(b"trunk-000000c1", b"trunk-000000c2")], time.time()))
    assert {c["linkedid"]: c["status"] for c in calls()}["1795391981.90"] != "in_progress"


class Sickness:
    """The database unable to write for a while, as it happens: SQLite locked by another
    connection, PostgreSQL failing with a serialization failure (SQLSTATE 40001)."""

    def __init__(self, engine):
        self.engine, self.raw = engine, None
        if engine.dialect.name != "sqlite":
            with engine.begin() as c:
                c.exec_driver_sql("CREATE TABLE sick (x int)")
                c.exec_driver_sql("CREATE FUNCTION sick() RETURNS trigger AS $$ BEGIN "
                                  "IF EXISTS (SELECT 1 FROM sick) THEN RAISE EXCEPTION 'try again' "
                                  "USING ERRCODE = '40001'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql")
                for table in ("ami_events", "ami_listener_state"):
                    c.exec_driver_sql(f"CREATE TRIGGER sick BEFORE INSERT OR UPDATE ON {table} FOR EACH ROW "
                                      "EXECUTE FUNCTION sick()")

    def start(self):
        if self.engine.dialect.name == "sqlite":
            import sqlite3

            self.raw = sqlite3.connect(self.engine.url.database, isolation_level=None)
            self.raw.execute("BEGIN EXCLUSIVE")
        else:
            with self.engine.begin() as c:
                c.exec_driver_sql("INSERT INTO sick VALUES (1)")

    def stop(self):
        if self.raw is not None:
            self.raw.close()
            self.raw = None
        elif self.engine.dialect.name != "sqlite":
            with self.engine.begin() as c:
                c.exec_driver_sql("DELETE FROM sick")


def impatient_processor(db_url):
    """A processor on an engine that waits 0.2 s for a lock (the lock shows as an error fast)."""
    from calltracking.callstore.store import CallStore
    from calltracking.db import make_engine, make_sessionmaker
    from calltracking.callstore.ingest import Processor

    eng = make_engine(db_url, busy_timeout_ms=200)
    proc = Processor(CallStore(make_sessionmaker(eng), "pbx1"))
    proc.restore()
    return proc, eng


def test_database_trouble_is_retried_never_quarantined(tracked, db_url, engine, calls):
    """A database that cannot write at the moment (locked; a serialization failure) is not a
    poisoned event: the batch is kept and written once the database is back, nothing set aside."""
    from sqlalchemy.exc import OperationalError

    proc, eng = impatient_processor(db_url)
    sick = Sickness(engine)
    sick.start()
    try:
        with pytest.raises(OperationalError):
            proc.process(parsed(load(FIXTURES / f"{FIRST}.ami"), time.time()))
        assert proc.pending_events and proc.quarantined == {}
    finally:
        sick.stop()
    proc.flush()
    (rec,) = calls()
    exact(rec, EXPECTED[A])
    assert proc.quarantined == {}
    eng.dispose()


@pytest.mark.parametrize("at", [2, 4], ids=["before_the_search", "during_the_search"])
def test_database_trouble_while_searching_keeps_everything(at, tracked, db_url, engine, calls):
    """The database failing while the refused event is looked for (its first write, or one of
    the halves): nothing is set aside or lost; the next write searches again and finds it."""
    from sqlalchemy.exc import OperationalError

    reject_poison(engine)
    proc, eng = impatient_processor(db_url)
    sick = Sickness(engine)
    writes = []
    persist = proc.store.persist

    def falls_sick_at(*args, **kw):           # the database falls sick just before the at-th write
        writes.append(1)
        if len(writes) == at:
            sick.start()
        return persist(*args, **kw)

    proc.store.persist = falls_sick_at
    batch = parsed(load(FIXTURES / f"{FIRST}.ami") + [newchannel(name=b"POISON")] + load(FIXTURES / f"{SECOND}.ami"),
                   time.time())
    try:
        with pytest.raises(OperationalError):
            proc.process(batch)
        assert proc.quarantined == {} and proc.pending_events
    finally:
        sick.stop()
    proc.flush()
    got = {c["linkedid"]: c for c in calls()}
    assert set(got) == {A, B}
    exact(got[A], EXPECTED[A])
    exact(got[B], EXPECTED[B])
    assert proc.quarantined == {"write_failed": 1} and proc.pending_events == []
    eng.dispose()


def test_a_bad_timestamp_first_does_not_set_the_clock(tracked, asterisk, listener, calls):
    """The stream's clock is learnt from sane Timestamps only: a poisoned one before any other
    leaves the recorded call that follows exact."""
    frames = [hangup(b"1e309"), hangup(b"-5")] + load(FIXTURES / f"{FIRST}.ami")
    lst = listener()
    asterisk.add(frames)
    asterisk.emit()
    lst.wait_idle(event_count(frames), timeout=30)
    assert lst.stats["writer"].failures == 0
    assert lst.stats["processor"].quarantined == {"timestamp": 2}
    got = {c["linkedid"]: c for c in calls()}
    exact(got[A], EXPECTED[A])


def test_the_clock_follows_a_replayed_or_reset_clock():
    """Rules of the stream's clock: a jump of more than a day is believed once three events in a
    row agree on it (a recording replayed, a clock set right); one event alone is dated by the
    clock as it ran."""
    from calltracking.interpret.frames import StreamClock

    clock, recv = StreamClock(), 1_800_000_000.0
    assert clock.read("1700000000.5", recv) == (1700000000.5, True)          # first: learnt (a replay)
    assert clock.read("1700000001.0", recv + 0.5) == (1700000001.0, True)
    for bad in ("inf", "-inf", "nan", "1e309", "-1700000001", "0", "99999999999999", "12:00", ""):
        ts, ok = clock.read(bad, recv + 1)
        assert not ok and ts == pytest.approx(1700000001.5), bad
    assert clock.read("1700200000.0", recv + 2) == (pytest.approx(1700000002.0), False)   # one jump alone
    assert clock.read("1700000002.5", recv + 2.5) == (1700000002.5, True)
    assert clock.read("1800000003.0", recv + 3)[1] is False                 # the clock set right...
    assert clock.read("1800000003.5", recv + 3.5)[1] is False
    assert clock.read("1800000004.0", recv + 4) == (1800000004.0, True)    # ...believed at the third
    assert clock.read("1800000004.5", recv + 4.5) == (1800000004.5, True)
    assert clock.usable("1800000005.0", recv + 5) == 1800000005.0          # the reconnect's last event heard
    assert clock.usable("1700000005.0", recv + 5) is None and clock.usable("inf", recv + 5) is None
    fresh = StreamClock()
    assert fresh.read("1e309", recv) == (recv, False)                      # nothing learnt yet: our clock
    assert fresh.read(str(recv + 2 * 86400), recv) == (recv, False)        # ahead of ours by two days
    assert fresh.read("946684799.0", recv) == (recv, False)                # a PBX booted without a clock
