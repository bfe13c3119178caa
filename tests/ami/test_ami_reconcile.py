"""The reconciliation's rules one by one (calltracking.interpret.reconcile, pure) and its inputs
(the sync's order on the wire, the queue_log reader)."""
from __future__ import annotations

import logging
import time

import pytest

from ami_listener.queuelog import QueueLog
from calltracking.interpret import Interpreter
from calltracking.interpret.reconcile import clock, created

T0 = 1796300000.0          # a call's first channel: created at T0 + 0.3
LID, INB = f"{T0:.0f}.0", f"{T0:.0f}.1"


def frame(uid, channel, duration, bridge="", app="Queue", lid=LID, exten="74950001001"):
    return {"Event": "CoreShowChannel", "Uniqueid": uid, "Linkedid": lid, "Channel": channel, "Exten": exten,
            "Duration": duration, "BridgeId": bridge, "Application": app, "CallerIDNum": "79161110001"}


def queued_call(it: Interpreter) -> None:
    """A caller (Local trunk) waiting in 'support', whose members are Ghost and Vera."""
    for name, iface in (("Ghost", "Local/199@operators/n"), ("Vera", "Local/103@operators/n")):
        it.feed({"Event": "QueueMember", "Queue": "support", "Name": name, "Location": iface, "Status": "1"}, T0)
    for uid, ch in ((LID, "Local/74950001001@trunk-00000000;1"), (INB, "Local/74950001001@trunk-00000000;2")):
        it.feed({"Event": "Newchannel", "Uniqueid": uid, "Linkedid": LID, "Channel": ch, "Exten": "74950001001",
                 "Timestamp": f"{T0 + 0.3:.6f}"}, 0)
    it.feed({"Event": "QueueCallerJoin", "Uniqueid": INB, "Linkedid": LID, "Queue": "support",
             "Channel": "Local/74950001001@trunk-00000000;2", "Timestamp": f"{T0 + 0.35:.6f}"}, 0)


def reconcile(it, snapshot, lost, ping):
    for ev in it.reconcile([{"Event": "CTSync", "Timestamp": f"{ping:.6f}"}, *snapshot], lost, lost):
        it.feed(ev, 0)
    return it.calls[LID]


def test_clock_is_the_ping_unless_the_durations_disagree():
    it = Interpreter()
    queued_call(it)
    chans = [frame(LID, "Local/74950001001@trunk-00000000;1", "00:00:09"),
             frame(INB, "Local/74950001001@trunk-00000000;2", "00:00:09")]
    assert clock(it, {"Timestamp": f"{T0 + 9.8:.6f}"}, chans, 0) == pytest.approx(T0 + 9.8)
    # a Ping answer 10 days off the events' clock: the channels' creation + Duration win
    assert clock(it, {"Timestamp": f"{T0 + 864000:.6f}"}, chans, 0) == pytest.approx(T0 + 9.8, abs=0.6)
    assert clock(it, {}, [], T0 + 5) == T0 + 5


def test_creation_from_duration_and_the_uniqueid_epoch():
    # created at T0 + 0.7, listed at T0 + 5.2: Duration 4 s (truncated), epoch second T0
    w = created({"Uniqueid": f"{T0:.0f}.17", "Duration": "00:00:04"}, T0 + 5.2)
    assert (w.lo, w.hi) == pytest.approx((T0 + 0.2, T0 + 1.0))
    assert abs(w.mid - (T0 + 0.7)) <= 0.5
    # a Uniqueid set by Originate (ChannelId): the Duration alone
    w = created({"Uniqueid": "my-own-id", "Duration": "00:01:00"}, T0 + 100.5)
    assert (w.lo, w.hi) == pytest.approx((T0 + 39.5, T0 + 40.5))


def test_an_unregistered_party_bridged_with_the_caller_is_no_leg():
    """Found bridged with the caller after a gap, a channel of no registered operator answers the
    call and counts for talk, but no leg (and no operator) is made up for it."""
    it = Interpreter()
    queued_call(it)
    lost = T0 + 0.4
    call = reconcile(it, [
        frame(LID, "Local/74950001001@trunk-00000000;1", "00:00:06", app="Wait"),
        frame(INB, "Local/74950001001@trunk-00000000;2", "00:00:06", bridge="b1"),
        frame(f"{T0 + 3:.0f}.5", "PJSIP/desk-00000005", "00:00:03", bridge="b1", app="AppDial", exten="s"),
    ], lost, T0 + 6.5)
    assert call.legs == {} and call.operator == ""
    assert lost <= call.answered_at <= T0 + 6.5 and call.talk_since == call.answered_at
    assert call.record()["status"] == "in_progress"


def test_a_registered_member_found_ringing_and_answering_is_a_queue_leg():
    it = Interpreter()
    queued_call(it)
    vera = f"{T0 + 4:.0f}.4"
    call = reconcile(it, [
        frame(LID, "Local/74950001001@trunk-00000000;1", "00:00:07", app="Wait"),
        frame(INB, "Local/74950001001@trunk-00000000;2", "00:00:07", bridge="b1"),
        frame(vera, "Local/103@operators-00000002;1", "00:00:03", bridge="b1", app="AppQueue"),
        frame(f"{T0 + 4:.0f}.5", "Local/103@operators-00000002;2", "00:00:03", app="Wait", exten="103"),
    ], T0 + 0.4, T0 + 7.5)
    (leg,) = call.legs.values()
    assert (leg.uniqueid, leg.operator, leg.kind, leg.queue, leg.outcome) == (vera, "Vera", "queue", "support",
                                                                             "answered")
    assert T0 + 4 <= leg.rung_at <= T0 + 5 and leg.rung_at <= call.answered_at <= T0 + 7.5
    assert call.operator == "Vera" and not call.in_queue


def test_later_evidence_narrows_the_answer_and_moves_the_talk_with_it():
    """AgentComplete's TalkTime (whole seconds since the connect second) narrows an answer
    estimated inside a gap; answer, leg and talk move together."""
    it = Interpreter()
    queued_call(it)
    vera = f"{T0 + 4:.0f}.4"
    chans = [frame(LID, "Local/74950001001@trunk-00000000;1", "00:00:09", app="Wait"),
             frame(INB, "Local/74950001001@trunk-00000000;2", "00:00:09", bridge="b1"),
             frame(vera, "Local/103@operators-00000002;1", "00:00:05", bridge="b1", app="AppQueue")]
    call = reconcile(it, chans, T0 + 0.4, T0 + 9.5)
    estimate = call.answered_at
    # really answered at T0 + 6.2; the operator hangs up at T0 + 12.9: TalkTime 12 - 6 = 6
    it.feed({"Event": "AgentComplete", "Uniqueid": INB, "Linkedid": LID, "DestUniqueid": vera, "TalkTime": "6",
             "HoldTime": "6", "MemberName": "Vera", "Timestamp": f"{T0 + 12.9:.6f}"}, 0)
    assert T0 + 5.95 <= call.answered_at <= T0 + 7.05 and call.answered_at != estimate
    for uid in (vera, INB):
        it.feed({"Event": "BridgeLeave", "Uniqueid": uid, "Linkedid": LID, "BridgeUniqueid": "b1",
                 "Timestamp": f"{T0 + 12.9:.6f}"}, 0)
    assert call.talk == pytest.approx(T0 + 12.9 - call.answered_at)
    assert call.legs[vera].answered_at == call.answered_at
    assert call.legs[vera].talk == pytest.approx(call.talk)


def test_the_gap_begins_at_the_last_event_heard_before_the_connection():
    """Events of other calls heard between the login and the snapshot move the writer's last
    event time, not where the gap began: the answer is looked for from there."""
    it = Interpreter()
    queued_call(it)
    vera = f"{T0 + 2:.0f}.4"
    chans = [frame(LID, "Local/74950001001@trunk-00000000;1", "00:00:09", app="Wait"),
             frame(INB, "Local/74950001001@trunk-00000000;2", "00:00:09", bridge="b1"),
             frame(vera, "Local/103@operators-00000002;1", "00:00:07", bridge="b1", app="AppQueue")]
    sync = {"Event": "CTSync", "Timestamp": f"{T0 + 9.5:.6f}", "_lost": f"{T0 + 0.4:.6f}"}
    for ev in it.reconcile([sync, *chans], T0 + 9.4, T0 + 9.4):
        it.feed(ev, 0)
    gap = it.gaps[LID]
    assert gap.lost == pytest.approx(T0 + 0.4) and gap.answer.lo < T0 + 3 < it.calls[LID].answered_at < T0 + 9.5


def test_a_ring_known_only_from_queue_log_is_a_leg():
    """Ghost rang and gave up while the listener was away: queue_log's RINGNOANSWER is the
    evidence of that leg (ended at the line's second, rung its ring time before)."""
    it = Interpreter()
    queued_call(it)
    lines = [f"{T0 + 3:.0f}|{INB}|support|Ghost|RINGNOANSWER|3000"]
    chans = [frame(LID, "Local/74950001001@trunk-00000000;1", "00:00:05", app="Wait"),
             frame(INB, "Local/74950001001@trunk-00000000;2", "00:00:05")]
    sync = {"Event": "CTSync", "Timestamp": f"{T0 + 5.5:.6f}", "_queue_log": lambda since: lines}
    for ev in it.reconcile([sync, *chans], T0 + 0.4, 0):
        it.feed(ev, 0)
    (leg,) = it.calls[LID].legs.values()
    assert (leg.operator, leg.kind, leg.outcome) == ("Ghost", "queue", "no_answer")
    assert leg.ended_at == pytest.approx(T0 + 3.5) and leg.rung_at == pytest.approx(T0 + 0.5)


def test_the_sync_asks_the_clock_and_the_queues_before_the_channels(asterisk, listener):
    """...and the connection remembers the last event time it heard (where a gap would begin)."""
    from support.ami_server import load
    from support.fixtures import FIXTURES

    from ami_listener.connection import SKIP
    from calltracking.interpret.channels import VARSET_PREFIXES
    from calltracking.interpret import FrameParser

    lst = listener()
    assert asterisk.actions[:4] == ["login", "ping", "queuestatus", "coreshowchannels"]
    assert lst.stats["connections"] == 1
    frames = load(FIXTURES / "answered_queue.ami")
    asterisk.add(frames)
    asterisk.emit()
    lst.wait_idle(0)
    # the last event read (the reader drops CEL and the like unread)
    parsed = FrameParser(skip=SKIP, keep_vars=VARSET_PREFIXES).feed(b"".join(frames))
    last = [f["Timestamp"] for f in parsed if "Event" in f and "Timestamp" in f][-1]
    assert lst.stats["connection"].protocol.heard == last


def test_queue_log_tail(tmp_path, caplog):
    path = tmp_path / "queue_log"
    lines = [f"{1000 + i}|1000.{i}|sales|NONE|ENTERQUEUE||7916|1" for i in range(20000)]
    path.write_text("\n".join(lines) + "\n" + "30000|1000.x|sales|Anna|CONN")     # the last line is being written
    got = QueueLog(str(path))(20990)
    assert got == lines[-10:]
    assert QueueLog(str(path))(0) == lines
    with caplog.at_level(logging.WARNING, "calltracking.ami"):
        missing = QueueLog(str(tmp_path / "nope"))
        assert missing(0) == [] and missing(0) == []
    assert sum("cannot read queue_log" in r.message for r in caplog.records) == 1
    assert QueueLog("")(time.time()) == []
