"""Live: operators reached through Local channels that Asterisk optimises away (members without
``/n``), a phone that forwards to another, an attended transfer through such a route, and a
click-to-dial originated on an operator's phone.

The operator is the phone that really talked (the registered operator of its interface), one leg
per operator who talked, no invented legs, and a click-to-dial is an outbound call, never an
inbound one.
"""
from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from support.live_verdict import check, near, ts
from support.polling import poll

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def local(world):
    w = world
    w.db_put(**{"ring/251": 1, "talk/251": 4,          # Tanya, through an optimising route
                "ring/253": 1, "talk/253": 4,          # Viktor answers Ursula's forwarded calls
                "ring/254": 1, "talk/254": 7,          # Walter, then an attended transfer to …
                "ring/255": 1, "talk/255": 8,          # … Xenia, through an optimising route
                "ring/256": 1, "talk/256": 20,         # Yuri's phone, for click-to-dial
                "ring/257": 1, "talk/257": 4})         # Zoya, a routing rule's Dial() of her route
    c = {}
    c["optimised"] = w.call("74950005001", "79160000501", tag="optimised", stay=30)
    c["forwarded"] = w.call("74950005002", "79160000502", tag="forwarded", stay=30)
    c["atxfer_local"] = w.call("74950005003", "79160000503", tag="atxfer_local", stay=30)
    c["dial_route"] = w.call("74950005004", "79160000504", tag="dial_route", stay=30)

    # Walter transfers 2 s into the conversation, from his phone (the channel bridged with the caller)
    w.driver.wait_event(lambda e: e.get("Event") == "BridgeEnter"
                        and e.get("Linkedid") == c["atxfer_local"].linkedid
                        and e.get("Channel", "").startswith("Local/254@phones-"), timeout=30)
    time.sleep(2)
    phone = w.operator_channel(c["atxfer_local"].linkedid, "254", prefix="Local/254@phones-")
    r = w.driver.action("Atxfer", Channel=phone, Context="routes", Exten="155")
    assert r.get("Response") == "Success", r

    # click-to-dial from Yuri's phone, presenting a tracked number as caller ID (as a CRM would)
    out = {}
    for tag, number in (("c2d_busy", "79990000001"), ("c2d_answered", "79990000002")):
        tid = f"{tag}-{time.monotonic_ns()}"
        r = w.driver.action("Originate", Channel="Local/256@phones/n", Context="to-customers", Exten=number,
                            Priority="1", CallerID='"Acme" <74950001001>', Timeout="20000", Async="true",
                            Variable=[f"LIVE_TEST_ID={tid}"])
        assert r.get("Response") == "Success", r
        ev = w.driver.wait_event(lambda e, tid=tid: e.get("Event") == "VarSet"
                                 and e.get("Variable") == "LIVE_TEST_ID" and e.get("Value") == tid, timeout=10)
        out[tag] = ev["Linkedid"]
        w.driver.wait_event(lambda e, lid=ev["Linkedid"]: e.get("Event") == "Hangup"
                            and e.get("Linkedid") == lid and e.get("Channel", "").endswith(";1")
                            and e["Channel"].startswith("Local/256@phones-"), timeout=40)
    w.wait_hungup(list(c.values()), timeout=90)
    return c, w.records(list(c.values())), out


EXPECT = {
    # Dial() of a route without /n: Asterisk moves the caller into the phone's bridge
    "dial_route": dict(status="answered", operator="Zoya", source="Website desk", legs=[("Zoya", 4)], talk=4,
                       wait=1),
    "optimised": dict(status="answered", operator="Tanya", queue="q_opt", legs=[("Tanya", 4)], talk=4),
    # queue_log names the member (Ursula); the phone that talked is Viktor's
    "forwarded": dict(status="answered", operator="Viktor", queue="q_fwd", legs=[("Viktor", 4)], talk=4,
                      queue_log_agent=False),
    # Walter talks 2 s (and the ~0.5 s the transfer key takes), consults Xenia (she answers 1 s
    # later) until his 7 s are over; then the caller talks with Xenia until her 8 s are over (~4 s)
    "atxfer_local": dict(status="answered", operator="Walter", queue="q_optx", legs=[("Walter", 2.5), ("Xenia", 4)],
                         talk=6.5, hold=4.5, queue_log_talk=False),
}


@pytest.mark.parametrize("tag", list(EXPECT))
def test_local_route_call_matches_asterisk(local, world, tag):
    calls, records, _ = local
    bad = check(world, calls[tag], records.get(calls[tag].linkedid), **EXPECT[tag])
    assert not bad, "\n".join(bad)


def test_click_to_dial_is_an_outbound_call(local, world):
    _, _, out = local
    from calltracking.db import make_engine, make_sessionmaker
    from calltracking.models import Call, OutboundCall

    eng = make_engine(world.db_url)
    try:
        sm = make_sessionmaker(eng)

        def rows():
            with sm() as s:
                got = {o.linkedid: o for o in s.scalars(select(OutboundCall).where(
                    OutboundCall.linkedid.in_(out.values())))}
                return got if len(got) == 2 and all(o.ended_at for o in got.values()) else None
        got = poll(rows, 30, "the two click-to-dial calls in outbound_calls")
        with sm() as s:
            inbound = s.scalars(select(Call.linkedid).where(Call.linkedid.in_(out.values()))).all()
    finally:
        eng.dispose()
    assert inbound == [], "a click-to-dial was recorded as an inbound call"
    busy, answered = got[out["c2d_busy"]], got[out["c2d_answered"]]
    assert busy.status == "missed" and busy.answered_at is None and not busy.talk_seconds, vars(busy)
    assert busy.operator_name == "Yuri" and busy.number.endswith("79990000001")
    assert answered.status == "answered" and answered.operator_name == "Yuri"
    assert answered.number.endswith("79990000002")
    # the customer talked 5 s: the operator picking up their own phone 1 s earlier is not the answer
    assert near(float(answered.talk_seconds), 5.0, 1.0), answered.talk_seconds
    hang = world.driver.find(lambda e: e.get("Event") == "Hangup" and e.get("Linkedid") == out["c2d_answered"]
                             and e.get("Channel", "").startswith("Local/79990000002@customers-"))
    assert hang
    if hang:
        assert abs(ts(answered.ended_at.isoformat()) - float(hang[0]["Timestamp"])) <= 1.0
