"""Every recorded Asterisk 22 stream through a real AMI server and the real listener.

The records are read back with `calltracking calls list --format json` and
compared with expected_calls.json (times from the recordings' Timestamp headers).
"""
import datetime as dt
import json

import pytest
from support.ami_server import event_count, load
from support.fixtures import FIXTURES, as_registered

EXPECTED = [as_registered(e) for e in json.loads((FIXTURES / "expected_calls.json").read_text())]
SCENARIOS = sorted({e["scenario"] for e in EXPECTED})


def epoch(iso):
    return dt.datetime.fromisoformat(iso).timestamp() if iso else None


def digits(x):
    return (x or "").lstrip("+")


def check(rec, exp):
    assert digits(rec["did"]) == exp["did"]
    assert digits(rec["caller"]) == exp["caller"]
    assert rec["status"] == exp["status"]
    assert rec["missed_reason"] == exp.get("missed_reason")
    assert rec["queue"] == exp.get("queue")
    assert rec["operator"] == exp.get("operator")
    for k in ("started_at", "queued_at", "answered_at", "ended_at"):
        if k in exp:
            assert epoch(rec[k]) == pytest.approx(exp[k], abs=1e-6), k
        else:
            assert rec[k] is None, k
    for k in ("wait_seconds", "talk_seconds", "hold_seconds"):
        assert rec[k] == pytest.approx(exp[k], abs=0.0011), k
    if "queue_holdtime" in exp:
        assert abs(rec["queue_wait_seconds"] - exp["queue_holdtime"]) < 1.0
    if rec["status"] == "answered":
        assert rec["talk_seconds"] + rec["hold_seconds"] == pytest.approx(
            epoch(rec["ended_at"]) - epoch(rec["answered_at"]), abs=0.0011)
    assert rec["attribution"] == "static" and rec["source"] == "Recorded" and rec["project"] == "acme"
    assert rec["first_call"] is True


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_recorded_scenario(scenario, tracked, asterisk, listener, calls):
    frames = load(FIXTURES / f"{scenario}.ami")
    asterisk.add(frames)
    lst = listener()
    asterisk.emit()
    lst.wait_idle(event_count(frames))
    got = {c["linkedid"]: c for c in calls()}
    want = [e for e in EXPECTED if e["scenario"] == scenario]
    assert set(got) == {e["linkedid"] for e in want}
    for exp in want:
        check(got[exp["linkedid"]], exp)


def test_all_recordings_in_one_session_with_legs(tracked, asterisk, listener, calls, session_factory):
    total = 0
    for scenario in SCENARIOS:
        frames = load(FIXTURES / f"{scenario}.ami")
        asterisk.add(frames)
        total += event_count(frames)
    lst = listener()
    asterisk.emit()
    lst.wait_idle(total)
    got = {c["linkedid"]: c for c in calls()}
    for exp in EXPECTED:
        check(got[exp["linkedid"]], exp)
    rna = got["1795391991.8"]["legs"]
    assert [(l["operator"], l["outcome"]) for l in rna] == [("Ghost", "no_answer"), ("Vera", "answered")]
    assert rna[0]["ring_seconds"] == pytest.approx(3.001, abs=0.0011)     # queue_log RINGNOANSWER 3000 ms
    assert rna[1]["talk_seconds"] == pytest.approx(4.015, abs=0.0011)
    direct = got["1795392043.28"]["legs"]
    # Dial(Local/102@operators/n): named by the registered operator of that interface
    assert [(l["operator"], l["kind"], l["outcome"]) for l in direct] == [("Boris", "dial", "answered")]
    abandoned = got["1795391983.4"]["legs"]
    assert [(l["operator"], l["outcome"]) for l in abandoned] == [("Ghost", "cancelled")]
    # Operators discovered from QueueStatus, mapped by interface.
    from sqlalchemy import select
    from calltracking.models import Call, Operator
    with session_factory() as s:
        ops = {o.interface: o for o in s.scalars(select(Operator))}
        assert {o.name for o in ops.values()} >= {"Anna", "Boris", "Ghost", "Vera"}
        assert set(ops["Local/199@operators/n"].queues.split(",")) == {"support", "nightshift"}
        anna = s.scalars(select(Call).where(Call.linkedid == "1795391970.0")).one()
        assert anna.operator_id == ops["Local/101@operators/n"].id
