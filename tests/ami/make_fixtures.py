"""Writes tests/ami/fixtures/*.ami and their expected records (run: PYTHONPATH=tests python tests/ami/make_fixtures.py)."""
from __future__ import annotations

import json

from support.ami_server import BANNER, load
from support.ami_streams import Chan, Gen, bridge_block
from support.fixtures import FIXTURES, OWN


def no_operators() -> tuple[Gen, list]:
    """Nobody logged in to 'nightshift': one caller is refused (joinempty), one waits and hangs up."""
    g = Gen(1795393000, 100)
    g.member_removed("nightshift", "Local/199@operators/n", "Ghost")
    exp = []
    # A: Queue() refuses to join an empty queue (joinempty=no): QUEUESTATUS=JOINEMPTY, dialplan hangs up.
    one, two = g.caller("74950001005", "79161110005", "Caller 0005")
    start_a = two.created
    g.varset(two, "QUEUESTATUS", "JOINEMPTY")
    g.t += 0.5
    g.hangup(two, request="SoftHangupRequest")
    end_a = g.t
    g.hangup(one, request="HangupRequest")
    exp.append({"linkedid": one.uid, "status": "missed", "missed_reason": "no_operators", "queue": None,
                "started_at": start_a, "ended_at": end_a, "wait_seconds": round(end_a - start_a, 3)})
    # B: joins the empty queue (joinempty=yes), nobody is rung, the caller gives up after 5 s.
    one, two = g.caller("74950001006", "79161110006", "Caller 0006")
    start_b = two.created
    g.t += 0.02
    g.join(two, "nightshift")
    queued_b = g.t
    g.t += 5.0
    g.hangup(one, request="SoftHangupRequest")
    g.ev("QueueCallerAbandon", "agent,all", two.block() + [("Queue", "nightshift"), ("Position", "1"),
                                                           ("OriginalPosition", "1"), ("HoldTime", "5")])
    g.leave(two, "nightshift")
    g.hangup(two, request="HangupRequest")
    end_b = g.t
    exp.append({"linkedid": one.uid, "status": "missed", "missed_reason": "no_operators", "queue": "nightshift",
                "started_at": start_b, "queued_at": queued_b, "ended_at": end_b,
                "wait_seconds": round(end_b - start_b, 3)})
    return g, exp


def blind_transfer() -> tuple[Gen, list]:
    """Anna answers from 'sales', talks 3 s, blind-transfers (#1) to 102; Boris's phone answers
    through a Local channel that optimises away; he talks 4 s and hangs up."""
    g = Gen(1795393100, 200)
    one, two = g.caller("74950001008", "79161110008", "Caller 0008")
    start = two.created
    g.t += 0.02
    g.join(two, "sales")
    queued = g.t
    a1, a2 = g.operator_local("101", one.uid, "79161110008", "Caller 0008")
    g.agent_called(two, a1, "sales", "Local/101@operators/n", "Anna")
    g.dial_begin(two, a1, "101@operators/n")
    g.ringing(a1)
    g.t += 2.0
    g.up(a2)
    g.up(a1)
    g.dial_end(two, a1, "ANSWER")
    g.leave(two, "sales")
    g.agent_connect(two, a1, "sales", "Local/101@operators/n", "Anna", 2, 2)
    answered = g.t
    b1 = g.bridge_create()
    g.enter(b1, a1)
    g.enter(b1, two)
    talk1_start = g.t
    g.t += 3.0
    # Anna presses #1 and dials 102: Asterisk moves the caller out of the bridge to [xfer] 102.
    g.ev("BlindTransfer", "call,all", [("Result", "Success")] + a2.block("Transferer") + two.block("Transferee")
         + bridge_block(b1, 2)
         + [("IsExternal", "No"), ("Context", "xfer"), ("Extension", "102")])
    g.leave_bridge(b1, two)
    talk1_end = g.t
    g.agent_complete(two, a1, "sales", "Local/101@operators/n", "Anna", 2, 3, "transfer")
    g.leave_bridge(b1, a1)
    g.destroy(b1)
    g.hangup(a1)
    g.hangup(a2)
    two.context, two.exten, two.prio = "xfer", "102", 1
    l1, l2 = g.operator_local("102", one.uid, "79161110008", "Caller 0008")
    g.dial_begin(two, l1, "102@operators")
    g.ringing(l1)
    phone = Chan(g, "PJSIP/102-0000002a", one.uid, "from-internal", "", "79161110008", "Caller 0008")
    g.ev("Newchannel", "call,all", phone.block())
    g.dial_begin(l2, phone, "102")
    g.t += 2.0
    g.up(phone)
    g.dial_end(l2, phone, "ANSWER")
    g.up(l1)
    g.dial_end(two, l1, "ANSWER")
    b2 = g.bridge_create()
    g.enter(b2, l1)
    g.enter(b2, two)
    talk2_start = g.t
    b3 = g.bridge_create()
    g.enter(b3, l2)
    g.enter(b3, phone)
    g.t += 0.5
    # Local channel optimisation: PJSIP/102 takes the place of Local;1 next to the caller.
    g.ev("LocalOptimizationBegin", "call,all", l1.block("LocalOne") + l2.block("LocalTwo")
         + phone.block("Source") + [("DestUniqueId", two.uid), ("Id", "0")])
    g.leave_bridge(b3, phone)
    g.enter(b2, phone, swap=l1)
    g.leave_bridge(b2, l1)
    g.ev("LocalOptimizationEnd", "call,all", l1.block("LocalOne") + l2.block("LocalTwo")
         + [("Success", "Yes"), ("Id", "0")])
    g.leave_bridge(b3, l2)
    g.destroy(b3)
    g.hangup(l1)
    g.hangup(l2)
    g.t += 3.5
    g.leave_bridge(b2, phone)
    talk2_end = g.t
    g.hangup(phone, request="HangupRequest")
    g.leave_bridge(b2, two)
    g.destroy(b2)
    g.hangup(two, request="SoftHangupRequest")
    end = g.t
    g.hangup(one, request="HangupRequest")
    talk = (talk1_end - talk1_start) + (talk2_end - talk2_start)
    return g, [{"linkedid": one.uid, "status": "answered", "queue": "sales", "operator": "Anna",
                "started_at": start, "queued_at": queued, "answered_at": answered, "ended_at": end,
                "talk_seconds": round(talk, 3), "legs": [["Anna", "queue", "answered", 3.0],
                                                          # Local/102@operators is Boris's route
                                                          ["Boris", "transfer", "answered", 4.0]]}]


def attended_transfer() -> tuple[Gen, list]:
    """Dmitry (PJSIP/104, dynamic member) answers, talks 3 s, attended-transfers (*2) to 105:
    the caller waits alone (hold) while Elena rings 2 s and consults 3 s, then talks 4 s."""
    g = Gen(1795393200, 300)
    g.member_added("support", "PJSIP/104", "Dmitry")
    one, two = g.caller("74950001012", "79161110012", "Caller 0012")
    start = two.created
    g.t += 0.02
    g.join(two, "support")
    queued = g.t
    d = Chan(g, "PJSIP/104-00000031", one.uid, "from-internal", "", "79161110012", "Caller 0012")
    g.ev("Newchannel", "call,all", d.block())
    g.agent_called(two, d, "support", "PJSIP/104", "Dmitry")
    g.dial_begin(two, d, "104")
    g.ringing(d)
    g.t += 1.0
    g.up(d)
    g.dial_end(two, d, "ANSWER")
    g.leave(two, "support")
    g.agent_connect(two, d, "support", "PJSIP/104", "Dmitry", 1, 1)
    answered = g.t
    b1 = g.bridge_create()
    g.enter(b1, d)
    g.enter(b1, two)
    t1 = g.t
    g.t += 3.0
    g.leave_bridge(b1, d)                     # Dmitry leaves to consult; the caller hears hold music
    t1_end = g.t
    g.ev("MusicOnHoldStart", "call,all", two.block() + [("Class", "default")])
    e = Chan(g, "PJSIP/105-00000032", one.uid, "from-internal", "105", "104", "Dmitry")
    g.ev("Newchannel", "call,all", e.block())
    g.ringing(e)
    g.t += 2.0
    g.up(e)
    b2 = g.bridge_create()
    g.enter(b2, d)
    g.enter(b2, e)
    g.t += 3.0
    # Dmitry hangs up: the transfer completes into the caller's bridge.
    g.ev("AttendedTransfer", "call,all", [("Result", "Success")] + d.block("OrigTransferer")
         + bridge_block(b1, 1, "OrigBridge") + d.block("SecondTransferer") + bridge_block(b2, 2, "SecondBridge")
         + [("DestType", "Bridge"), ("DestBridgeUniqueid", b1)] + two.block("Transferee")
         + e.block("TransferTarget") + [("IsExternal", "No")])
    g.leave_bridge(b2, e)
    g.enter(b1, e)
    t2 = g.t
    g.ev("MusicOnHoldStop", "call,all", two.block())
    g.leave_bridge(b2, d)
    g.destroy(b2)
    # queue_log's talktime runs from the connect to the transfer, consultation included
    # (a live Asterisk 22 logs ATTENDEDTRANSFER with 8 s for 3 s talk + 5 s consulting)
    g.agent_complete(two, d, "support", "PJSIP/104", "Dmitry", 1, 8, "transfer")
    g.hangup(d, request="SoftHangupRequest")
    g.t += 4.0
    g.leave_bridge(b1, e)
    t2_end = g.t
    g.hangup(e, request="HangupRequest")
    g.leave_bridge(b1, two)
    g.destroy(b1)
    g.hangup(two, request="SoftHangupRequest")
    end = g.t
    g.hangup(one, request="HangupRequest")
    talk = (t1_end - t1) + (t2_end - t2)
    return g, [{"linkedid": one.uid, "status": "answered", "queue": "support", "operator": "Dmitry",
                "started_at": start, "queued_at": queued, "answered_at": answered, "ended_at": end,
                "talk_seconds": round(talk, 3), "legs": [["Dmitry", "queue", "answered", 3.0],
                                                          ["105", "transfer", "answered", 4.0]]}]


def no_agi() -> bytes:
    """answered_queue.ami with the dialplan's AGI step removed (a dialplan without the hook)."""
    keep = [f for f in load(FIXTURES / "answered_queue.ami")
            if b"AGI" not in f and b"Variable: CT_" not in f and b"Variable: Q\r" not in f]
    return BANNER + b"".join(keep)


def main():
    OWN.mkdir(exist_ok=True)
    expected = {}
    for name, fn in (("no_operators", no_operators), ("blind_transfer", blind_transfer),
                     ("attended_transfer", attended_transfer)):
        g, exp = fn()
        g.write(OWN / f"{name}.ami")
        expected[name] = exp
    (OWN / "no_agi.ami").write_bytes(no_agi())
    (OWN / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main()
