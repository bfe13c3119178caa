"""Streams recorded from the live suite's real Asterisk 22.10.1, replayed through the interpreter
(no socket, no database): what a live run showed and the earlier recordings did not."""
from amipaths import OWN
from amiserver import headers, load

from calltracking.interpret import Interpreter


def replay(path) -> Interpreter:
    it = Interpreter()
    for f in load(path):
        if f.startswith(b"Event: "):
            ev = headers(f)
            it.feed(ev, float(ev.get("Timestamp") or 0))
    return it


def test_queue_timeout_is_timeout_not_abandoned():
    """Queue()'s own timeout (queue_log: ``EXITWITHTIMEOUT|1|1|5``): Asterisk sends
    QueueCallerAbandon here as well, then sets QUEUESTATUS=TIMEOUT when Queue() returns."""
    frames = load(OWN / "queue_timeout_live.ami")
    assert any(b"Event: QueueCallerAbandon" in f for f in frames)      # what makes this a trap
    rec = replay(OWN / "queue_timeout_live.ami").calls["1796306600.4"].record()
    assert rec["status"] == "missed"
    assert rec["missed_reason"] == "timeout"
    assert abs(rec["ended_at"] - rec["queued_at"] - 5.0) < 0.2       # the 5 s queue timeout
