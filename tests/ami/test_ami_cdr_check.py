"""Cdr events cross-check the operator legs' talk time (counted and logged, never applied)."""
import re

import pytest

from support.ami_server import headers, load
from support.fixtures import FIXTURES, OWN, RECORDED


def _mismatches(lst):
    return lst.stats["processor"].it.stats["cross_check_mismatch"], list(lst.stats["processor"].it.mismatches)


ALL = sorted(FIXTURES.glob("*.ami")) + sorted(OWN.glob("*.ami")) + sorted(RECORDED.glob("*.ami"))


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_every_fixture_cdr_agrees_with_leg_talk(path):
    """Asterisk's own CDRs agree with the legs' talk time in every recording and own fixture."""

    from calltracking.interpret import Interpreter

    it = Interpreter()
    for f in load(path):
        if f.startswith(b"Event: "):
            ev = headers(f)
            it.feed(ev, float(ev.get("Timestamp") or 0))
    assert it.stats["cross_check_mismatch"] == 0, it.mismatches
    assert it.stats["handled"] > 0


def test_recorded_cdrs_agree_through_the_listener(tracked, asterisk, listener):
    asterisk.add(load(FIXTURES / "ring_no_answer_then_answered.ami"))
    lst = listener()
    asterisk.emit()
    lst.wait_idle(0)
    count, msgs = _mismatches(lst)
    assert count == 0, msgs


def test_a_cdr_that_disagrees_is_counted(tracked, asterisk, listener, calls):
    frames = load(FIXTURES / "answered_queue.ami")
    # the operator channel's own CDR (Local/101@operators-...;2) says 50 s instead of 5 s
    tampered = [re.sub(rb"BillableSeconds: 5\r\n", b"BillableSeconds: 50\r\n", f)
                if f.startswith(b"Event: Cdr") and b"Channel: Local/101@operators" in f else f
                for f in frames]
    assert tampered != frames
    asterisk.add(tampered)
    lst = listener()
    asterisk.emit()
    lst.wait_idle(0)
    count, msgs = _mismatches(lst)
    assert count == 1 and "CDR billsec" in msgs[0]
    (rec,) = calls()
    assert rec["talk_seconds"] == pytest.approx(5.015, abs=0.0011)     # the record keeps its own time
