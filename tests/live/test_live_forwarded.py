"""Live: forwarded calls on a real Asterisk 22 (docs/dialplan.md, docs/call-record.md).

The caller's Local channel sets ``REDIRECTING(from-num)`` (as a trunk delivers a forwarded call)
before it reaches the tracking number through the include's ``calltracking-inbound``: the
``route`` hook reads ``agi_rdnis``, a routing rule on the forwarding number sends the call to its
queue, and the record keeps the number after the AMI listener has written the rest of the call. A
call forwarded from the project's own static number (Billboard) is attributed by that number.
A call dialled directly, and forwarding numbers that are garbage or very long, go to the
project's default queue; none of them fails.
"""
from __future__ import annotations

import time

import pytest

from support.live_verdict import check

pytestmark = pytest.mark.live

OWN = "+74957770000"
CALLS = {   # tag: (caller, the forwarding number Asterisk gets, or None: dialled directly)
    "own": ("79160000801", "84957770000"),
    "direct": ("79160000802", None),
    "other": ("79160000803", "+74951112233"),
    "garbage": ("79160000804", "<b>x</b>"),
    "long": ("79160000805", "9" * 120),
    "published": ("79160000806", "84950008002"),      # the project's own static number (Billboard)
}
EXPECT = {"own": (OWN, "q_answer", "Anna"), "direct": (None, "sales", "Fedor"),
          "other": ("+74951112233", "sales", "Fedor"), "garbage": (None, "sales", "Fedor"),
          "long": ("9" * 32, "sales", "Fedor"), "published": ("+74950008002", "sales", "Fedor")}
SOURCE = {"published": "Billboard"}     # attributed by the forwarding number; the others by the DID


def _seed(world) -> None:
    from calltracking import entities as svc

    with world.session() as s:
        p = svc.add_project(s, "forwarded", timezone="Europe/Moscow", default_queue="sales")
        src = svc.add_source(s, p, "Own site", channel="referral")
        svc.add_number(s, p, "74950008001", source=src, record=False)
        svc.add_number(s, p, "74950008002", source=svc.add_source(s, p, "Billboard", channel="offline"),
                       record=False)
        svc.add_rule(s, p, "our published number", priority=1, forwarded_from=OWN, queue="q_answer")


@pytest.fixture(scope="module")
def forwarded(world):
    w = world
    _seed(w)
    time.sleep(3)           # the FastAGI catalogue notices a change within its 2 s check
    w.db_put(**{f"fwd/{caller}": rdnis for caller, rdnis in CALLS.values() if rdnis is not None},
             **{"ring/101": 1, "talk/101": 3, "ring/106": 1, "talk/106": 3})
    c = {}
    for tag, (caller, rdnis) in CALLS.items():
        c[tag] = w.call("74950008001", caller, tag=tag, stay=20,
                        context="from-trunk-forwarded" if rdnis is not None else "from-trunk")
        w.wait_hungup([c[tag]], timeout=40)      # one at a time: two operators take them
    return c, w.records(list(c.values()))


@pytest.mark.parametrize("tag", list(CALLS))
def test_forwarded_call_record(world, forwarded, tag):
    calls, records = forwarded
    rec = records.get(calls[tag].linkedid)
    fwd, queue, operator = EXPECT[tag]
    bad = check(world, calls[tag], rec, status="answered", operator=operator, queue=queue,
                source=SOURCE.get(tag, "Own site"),
                attribution="static",
                context="from-trunk-forwarded" if CALLS[tag][1] is not None else "from-trunk")
    assert not bad, "\n".join(bad)
    assert rec["forwarded_from"] == fwd


def test_asterisk_was_told_the_rules_queue(world, forwarded):
    """The witness in the AMI stream: the ``CT_QUEUE`` Asterisk set on the caller's channel."""
    calls, _ = forwarded
    for tag in ("own", "other"):
        ev = [e for e in world.events(calls[tag].linkedid, "VarSet") if e.get("Variable") == "CT_QUEUE"]
        assert EXPECT[tag][1] in {e["Value"] for e in ev}, (tag, ev)
