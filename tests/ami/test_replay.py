"""Every recorded AMI stream replayed straight through the interpreter (:mod:`support.replay`:
no socket, no database) and checked against the expected values the fixtures carry: the
checks the listener's path passes through a real AMI server and the database
(test_ami_recorded, test_ami_phones, test_ami_scenarios), so the two agree. What the database
adds is left out: a plain ``Dial()`` leg keeps the extension of its interface (the store names
it by the registered operator), a phone is named here by the expected file's own list.

- ``tests/fixtures/asterisk-22/*.ami`` against ``expected_calls.json``;
- ``tests/ami/fixtures/recorded/*.ami`` against ``expected.json`` and Asterisk's own figures
  (queue_log, CDR) within 1 s; the click-to-dial calls as outbound calls;
- ``tests/ami/fixtures/*.ami`` (built by make_fixtures.py) against ``expected.json``.
"""
from __future__ import annotations

import json

import pytest
from support.ami_server import load
from support.fixtures import FIXTURES, OWN, RECORDED, queue_members, registered_names
from support.replay import frames, interpret, replay

from calltracking.interpret import outbound as ob
from calltracking.phone import try_normalize

EXPECTED_22 = json.loads((FIXTURES / "expected_calls.json").read_text())
SCENARIOS_22 = sorted({e["scenario"] for e in EXPECTED_22})
EXPECTED_REC = {k: v for k, v in json.loads((RECORDED / "expected.json").read_text()).items()
                if not k.startswith("_")}
INBOUND = sorted(k for k, v in EXPECTED_REC.items() if not v.get("outbound"))
OUTBOUND = sorted(k for k, v in EXPECTED_REC.items() if v.get("outbound"))
#: The operators expected.json names (its "_about"): the phones registered by hand, the routes
#: as queues.conf names them.
OPERATORS = {"Local/201@phones": "Anna Petrova", "Local/202@phones": "Boris Ivanov",
             "Local/101@operators": "Anna", "Local/102@operators": "Boris"}
EXPECTED_OWN = json.loads((OWN / "expected.json").read_text())


def by_linkedid(records: list[dict]) -> dict:
    return {r["linkedid"]: r for r in records}


def digits(x):
    return (x or "").lstrip("+")


def check_times(rec: dict, exp: dict, abs_=1e-6) -> None:
    for k in ("started_at", "queued_at", "answered_at", "ended_at"):
        if exp.get(k) is not None:
            assert rec[k] == pytest.approx(exp[k], abs=abs_), k
        else:
            assert rec[k] is None, k
    if rec["status"] == "answered":
        assert rec["wait_seconds"] == pytest.approx(exp["answered_at"] - exp["started_at"], abs=0.0011)
        assert rec["talk_seconds"] + rec["hold_seconds"] == pytest.approx(
            rec["ended_at"] - rec["answered_at"], abs=0.0011)


# ------------------------------------------------------------------ asterisk-22
def check_22(rec: dict, exp: dict) -> None:
    assert digits(rec["did"]) == exp["did"] and digits(rec["caller_number"]) == exp["caller"]
    assert (rec["status"], rec["missed_reason"]) == (exp["status"], exp.get("missed_reason"))
    assert (rec["queue"] or None) == exp.get("queue")
    assert (rec["operator_name"] or None) == exp.get("operator")
    check_times(rec, exp)
    for k in ("wait_seconds", "talk_seconds", "hold_seconds"):
        assert rec[k] == pytest.approx(exp[k], abs=0.0011), k
    if "queue_holdtime" in exp:
        assert abs(rec["queue_wait_seconds"] - exp["queue_holdtime"]) < 1.0


@pytest.mark.parametrize("scenario", SCENARIOS_22)
def test_asterisk_22_recording(scenario):
    got = by_linkedid(replay(FIXTURES / f"{scenario}.ami", queue_members()))
    want = [e for e in EXPECTED_22 if e["scenario"] == scenario]
    assert set(got) == {e["linkedid"] for e in want}
    for exp in want:
        check_22(got[exp["linkedid"]], exp)


def test_asterisk_22_recordings_in_one_stream_with_legs():
    """All recordings one after the other in one stream give the same records as each alone."""
    stream = b"".join(f for scenario in SCENARIOS_22 for f in load(FIXTURES / f"{scenario}.ami"))
    got = by_linkedid(replay(stream, queue_members()))
    alone = {}
    for scenario in SCENARIOS_22:
        alone.update(by_linkedid(replay(FIXTURES / f"{scenario}.ami", queue_members())))
    assert got == alone and len(got) == len(EXPECTED_22)
    rna = got["1795391991.8"]["legs"]
    assert [(l["operator_name"], l["outcome"]) for l in rna] == [("Ghost", "no_answer"), ("Vera", "answered")]
    assert rna[0]["ring_seconds"] == pytest.approx(3.001, abs=0.0011)     # queue_log RINGNOANSWER 3000 ms
    assert rna[1]["talk_seconds"] == pytest.approx(4.015, abs=0.0011)
    direct = got["1795392043.28"]["legs"]
    assert [(l["operator_name"], l["route"], l["kind"], l["outcome"]) for l in direct] == [
        ("102", "Local/102@operators/n", "dial", "answered")]
    abandoned = got["1795391983.4"]["legs"]
    assert [(l["operator_name"], l["outcome"]) for l in abandoned] == [("Ghost", "cancelled")]


# ------------------------------------------------------------------ recorded/
def named(interface: str, name: str) -> str:
    return OPERATORS.get(interface, name)


def queue_log(stream: str, linkedid: str) -> dict:
    """queue_log figures of the call (its channels' uniqueids from the stream): {verb: fields}."""
    uids = {ev.get("Uniqueid") for ev in frames(RECORDED / f"{stream}.ami") if ev.get("Linkedid") == linkedid}
    out = {}
    for line in (RECORDED / "queue_log").read_text().splitlines():
        f = line.split("|")
        if f[1] in uids:
            out[f[4]] = f[5:]
    return out


@pytest.mark.parametrize("name", INBOUND)
def test_recorded_inbound_call_named_by_the_phone_that_talked(name):
    exp = EXPECTED_REC[name]
    it = interpret(RECORDED / f"{name}.ami")
    (rec,) = [c.record() for c in it.calls.values()]
    assert rec["linkedid"] == exp["linkedid"]
    assert (rec["status"], rec["missed_reason"], rec["queue"] or None) == (
        exp["status"], exp["missed_reason"], exp["queue"])
    assert rec["did"] == exp["did"] and rec["caller_number"] == exp["caller"]
    assert named(rec["operator_interface"], rec["operator_name"]) == exp["operator"]
    check_times(rec, exp, abs_=2e-6)
    assert rec["talk_seconds"] == pytest.approx(exp["talk_seconds"], abs=0.0011)
    legs = [[named(l["interface"], l["operator_name"]), l["kind"], l["outcome"], l["interface"], l["talk_seconds"]]
            for l in rec["legs"]]
    assert [l[:4] for l in legs] == [l[:4] for l in exp["legs"]]
    for got, want in zip(legs, exp["legs"]):
        assert got[4] == pytest.approx(want[4], abs=0.0011)
    # Asterisk's own figures agree within 1 s; the interpreter's own cross-checks found nothing
    a, qlog = exp["asterisk"], queue_log(name, exp["linkedid"])
    assert abs(rec["ended_at"] - rec["started_at"] - a["call_seconds"]) < 1.0
    if exp["queue"]:
        assert int(qlog["CONNECT"][0]) == a["queue_holdtime"]
        assert abs(rec["queue_wait_seconds"] - a["queue_holdtime"]) < 1.0
        first = rec["legs"][0]
        assert abs(first["ended_at"] - first["answered_at"] - a["queue_talktime"]) < 1.0
    for i, billsec in a.get("leg_billsec", {}).items():
        assert abs(rec["legs"][int(i)]["talk_seconds"] - billsec) < 1.0, i
    for i, billsec in a.get("leg_span_billsec", {}).items():
        leg = rec["legs"][int(i)]
        assert abs(leg["ended_at"] - leg["answered_at"] - billsec) < 1.0, i
    assert it.stats["cross_check_mismatch"] == 0, it.mismatches


@pytest.mark.parametrize("name", OUTBOUND)
def test_recorded_click_to_dial_is_an_outbound_call_answered_by_the_callee(name):
    exp = EXPECTED_REC[name]
    (call,) = interpret(RECORDED / f"{name}.ami").calls.values()
    rec = call.record()
    assert call.linkedid == exp["linkedid"]
    assert ob.detect(call, operator_interfaces=set(OPERATORS)) == ("callback" if exp["originated_by_us"]
                                                                   else "operator")
    assert ob.originated_by_us(call) is exp["originated_by_us"]
    assert ob.first_interface(call) == exp["interface"]
    assert ob.pick_number(ob.callee_candidates(call), lambda raw: try_normalize(raw, "RU")) == exp["number"]
    assert next(OPERATORS[i] for i in ob.operator_side(call) if i in OPERATORS) == exp["operator"]
    assert rec["status"] == exp["status"]
    check_times(rec, exp, abs_=2e-6)       # the operator picking up is not the answer
    assert rec["talk_seconds"] == pytest.approx(exp["talk_seconds"], abs=0.0011)
    a = exp["asterisk"]
    assert abs(rec["ended_at"] - rec["started_at"] - a["call_seconds"]) < 1.0
    if "callee_billsec" in a:
        assert abs(rec["talk_seconds"] - a["callee_billsec"]) < 1.0


# ------------------------------------------------------------------ our own streams
def test_no_operators_logged_in():
    got = by_linkedid(replay(OWN / "no_operators.ami", queue_members()))
    assert len(got) == 2
    for exp in EXPECTED_OWN["no_operators"]:
        rec = got[exp["linkedid"]]
        assert (rec["status"], rec["missed_reason"], rec["queue"] or None) == ("missed", "no_operators", exp["queue"])
        assert rec["wait_seconds"] == pytest.approx(exp["wait_seconds"], abs=0.0011)
        assert rec["operator_name"] == "" and rec["legs"] == []
        check_times(rec, exp, abs_=2e-6)


@pytest.mark.parametrize("name", ["blind_transfer", "attended_transfer"])
def test_transfer_talk_continues_and_a_leg_per_operator(name):
    (rec,) = replay(OWN / f"{name}.ami", queue_members())
    (exp,) = EXPECTED_OWN[name]
    registered = registered_names()          # a Dial()ed route's extension -> its queue member's name
    assert (rec["status"], rec["operator_name"], rec["queue"]) == ("answered", exp["operator"], exp["queue"])
    check_times(rec, exp, abs_=2e-6)
    assert rec["talk_seconds"] == pytest.approx(exp["talk_seconds"], abs=0.0011)
    assert rec["hold_seconds"] > 1.9          # the transfer's ringing (and consultation) is hold time
    legs = [[registered.get(l["operator_name"], l["operator_name"]), l["kind"], l["outcome"], l["talk_seconds"]]
            for l in rec["legs"]]
    assert [l[:3] for l in legs] == [l[:3] for l in exp["legs"]]
    for got, want in zip(legs, exp["legs"]):
        assert got[3] == pytest.approx(want[3], abs=0.0011)


def test_a_call_that_never_passed_agi():
    (rec,) = replay(OWN / "no_agi.ami", queue_members())
    assert (rec["did"], rec["caller_number"], rec["status"]) == ("74950001001", "79161110001", "answered")
    assert rec["talk_seconds"] == pytest.approx(5.015, abs=0.0011)
