"""Live: the everyday calls, placed together on a real Asterisk, each compared with queue_log,
CDR and the AMI stream (see support/live_verdict.py).

The scenarios run at the same time (each has its own DID, queue and operators), so the whole
batch takes as long as its longest call, ~25 s.
"""
from __future__ import annotations

import time

import pytest

from support.live_verdict import check

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def batch(world):
    w = world
    w.db_put(**{
        "ring/101": 1, "talk/101": 4,            # answered
        "ring/103": 1, "talk/103": 4,            # second member (after Ghost3 197 rings 3 s)
        "ring/104": 1, "talk/104": 20,           # the caller hangs up first
        "ring/102": 1, "talk/102": 3,            # Dial() target
        "ring/105": 1, "talk/105": 3,            # promo
        "ring/106": 1, "talk/106": 3,            # default queue
        "ring/107": 1, "talk/107": 2,            # repeat caller
        "ring/108": 1, "talk/108": 20,           # blind transfer from Igor …
        "ring/109": 1, "talk/109": 3,            # … to Julia
        "ring/110": 1, "talk/110": 6,            # attended transfer from Kira …
        "ring/111": 1, "talk/111": 8,            # … to Luka
        "qtimeout/74950002003": 5,
    })
    c = {}
    c["answered"] = w.call("74950001001", "79160000101", tag="answered", stay=30)
    c["abandoned"] = w.call("74950001002", "79160000102", tag="abandoned", patience=4)
    c["timeout"] = w.call("74950002003", "79160000103", tag="timeout", context="from-trunk-own", stay=30)
    c["second"] = w.call("74950001004", "79160000104", tag="second", stay=30)
    c["caller_hangup"] = w.call("74950001005", "79160000105", tag="caller_hangup", stay=3)
    c["dial_target"] = w.call("74950001006", "79160000106", tag="dial_target", stay=30)
    c["promo"] = w.call("74950002007", "79160000107", tag="promo", context="from-trunk-ivr",
                        dtmf="4242", stay=30)
    c["unknown_did"] = w.call("74959999999", "79160000108", tag="unknown_did", stay=30)
    c["repeat_1"] = w.call("74950001008", "79160000109", tag="repeat_1", stay=30)
    c["blind"] = w.call("74950001009", "79160000110", tag="blind", stay=30)
    c["attended"] = w.call("74950001010", "79160000111", tag="attended", stay=30)

    # Transfers, as the operators' phones would do them, 2 s into each conversation.
    w.wait_answered_by(c["blind"].linkedid, "108")
    w.wait_answered_by(c["attended"].linkedid, "110")
    time.sleep(2)
    r = w.driver.action("BlindTransfer", Channel=w.operator_channel(c["blind"].linkedid, "108"),
                        Context="xfer", Exten="109")
    assert r.get("Response") == "Success", r
    r = w.driver.action("Atxfer", Channel=w.operator_channel(c["attended"].linkedid, "110"),
                        Context="operators", Exten="111")
    assert r.get("Response") == "Success", r

    # The same caller again once the first call ended: a repeat call.
    w.wait_hungup([c["repeat_1"]], timeout=30)
    c["repeat_2"] = w.call("74950001008", "79160000109", tag="repeat_2", stay=30)

    w.wait_hungup(list(c.values()), timeout=90)
    return c, w.records(list(c.values()))


EXPECT = {
    "answered": dict(status="answered", operator="Anna", queue="q_answer", source="Google Ads",
                     attribution="static", legs=[("Anna", 4)], talk=4, wait=1),
    "abandoned": dict(status="missed", missed_reason="abandoned", queue="q_ghost", source="Google Ads",
                      wait=4),
    "timeout": dict(status="missed", missed_reason="timeout", queue="q_timeout", source="Billboard",
                    attribution="static", context="from-trunk-own", wait=5),
    "second": dict(status="answered", operator="Vera", queue="q_second", legs=[("Vera", 4)], talk=4, wait=4),
    "caller_hangup": dict(status="answered", operator="Dmitri", queue="q_hup", legs=[("Dmitri", 3)],
                          talk=3),
    "dial_target": dict(status="answered", operator="Boris", source="Direct desk", legs=[("Boris", 3)],
                        talk=3, wait=1),
    "promo": dict(status="answered", operator="Elena", queue="q_promo", source="Newspaper",
                  attribution="promo", tags=["ivr-sales"], context="from-trunk-ivr", legs=[("Elena", 3)]),
    "unknown_did": dict(status="answered", operator="Fedor", queue="sales", attribution="none",
                        source=None, legs=[("Fedor", 3)]),
    "repeat_1": dict(status="answered", operator="Galina", queue="q_repeat", legs=[("Galina", 2)]),
    "repeat_2": dict(status="answered", operator="Galina", queue="q_repeat", legs=[("Galina", 2)]),
    # Igor talks 2 s, the caller rings Julia ~1 s (hold), then talks with Julia 3 s.
    "blind": dict(status="answered", operator="Igor", queue="q_blind", legs=[("Igor", 2), ("Julia", 3)],
                  talk=5, hold=1, queue_log_talk=False),
    # Kira talks 2 s, puts the caller on hold while she consults Luka (answers 1 s later) until
    # her hang-up at 6 s; then the caller talks with Luka until his 8 s are over (~5 s).
    "attended": dict(status="answered", operator="Kira", queue="q_atx", legs=[("Kira", 2), ("Luka", 5)],
                     talk=7, hold=4, queue_log_talk=False),
}


@pytest.mark.parametrize("tag", list(EXPECT))
def test_call_matches_asterisk(batch, world, tag):
    calls, records = batch
    expect = dict(EXPECT[tag])
    bad = check(world, calls[tag], records.get(calls[tag].linkedid), **expect)
    assert not bad, "\n".join(bad)


def test_repeat_caller_is_not_a_first_call(batch):
    calls, records = batch
    assert records[calls["repeat_1"].linkedid]["first_call"] is True
    assert records[calls["repeat_2"].linkedid]["first_call"] is False


def test_service_log_is_clean(batch, world):
    """No lost write, no crash, and no cross-check warning: on a live run Asterisk's CDR and
    queue_log agree with the records, so a warning would be a false alarm."""
    log = world.run_log()
    assert "database is locked" not in log
    assert "Traceback" not in log, log[-4000:]
    noisy = [line for line in log.splitlines() if "CDR billsec says" in line or "talktime says" in line]
    assert not noisy, "\n".join(noisy)
    # the parser this run uses ([ami] parser_process, see World.parser_process) and it never died
    assert ("AMI frames are parsed in a helper process" in log) == (world.parser_process == "yes")
    assert "AMI parser process ended" not in log and "could not start" not in log
