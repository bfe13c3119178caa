"""Streams recorded from the live suite's real Asterisk 22.10.1, replayed through the interpreter
(no socket, no database): what a live run showed and the earlier recordings did not."""
from support.ami_server import load
from support.fixtures import OWN
from support.replay import interpret, replay


def test_queue_timeout_is_timeout_not_abandoned():
    """Queue()'s own timeout (queue_log: ``EXITWITHTIMEOUT|1|1|5``): Asterisk sends
    QueueCallerAbandon here as well, then sets QUEUESTATUS=TIMEOUT when Queue() returns."""
    frames = load(OWN / "queue_timeout_live.ami")
    assert any(b"Event: QueueCallerAbandon" in f for f in frames)      # what makes this a trap
    (rec,) = [r for r in replay(OWN / "queue_timeout_live.ami") if r["linkedid"] == "1796306600.4"]
    assert rec["status"] == "missed"
    assert rec["missed_reason"] == "timeout"
    assert abs(rec["ended_at"] - rec["queued_at"] - 5.0) < 0.2       # the 5 s queue timeout


def test_attended_transfer_between_queue_members_gives_each_their_talk():
    """Kira, a queue member, talks 2.5 s with the caller, consults Luka (``111``) while the caller
    holds, and hands over; Luka talks 5.5 s (the live scenario's timings). A leg each, the call's
    talk is theirs summed, the consultation is hold; queue_log's talktime (``AgentComplete``:
    connect to transfer, consultation included) agrees with Kira's part."""
    it = interpret(OWN / "attended_members_live.ami")
    (rec,) = [c.record() for c in it.calls.values()]
    legs = [(l["operator_name"], l["kind"], l["outcome"]) for l in rec["legs"]]
    assert legs == [("Kira", "queue", "answered"), ("111", "transfer", "answered")]
    kira, luka = (l["talk_seconds"] for l in rec["legs"])
    assert abs(kira - 2.5) < 0.1 and abs(luka - 5.5) < 0.1
    assert abs(rec["talk_seconds"] - (kira + luka)) < 0.0011
    assert rec["hold_seconds"] > 1.0
    assert it.stats["cross_check_mismatch"] == 0, it.mismatches
