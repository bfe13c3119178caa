"""The interpreter's rules for who talked, pure (no I/O), on real and built streams.

The recorded streams (tests/ami/fixtures/recorded/) show Local routes optimised away both ways
round; the stream built here is the one shape that cannot be recorded without SIP phones: an
attended transfer completed by a REFER, where Asterisk swaps the target into the caller's bridge
in place of the transferer (``bridge_swap_attended_transfer`` in main/bridge.c: ``BridgeEnter``
with ``SwapUniqueid``, no Local optimisation announced).
"""
import re

import pytest

from calltracking.interpret.names import base_interface
from support.ami_server import load
from support.ami_streams import Chan, Gen, bridge_block
from support.fixtures import RECORDED as REC
from support.replay import interpret


def only_call(it):
    (call,) = it.calls.values()
    return call.record()


def refer_transfer() -> tuple[list, dict]:
    """Dmitry (PJSIP/104) answers, talks 3 s, holds the caller (who stays in the bridge) and calls
    Elena (PJSIP/105) from a second line: a call of its own. After 3 s his phone sends REFER:
    Elena's channel is swapped into the caller's bridge in place of Dmitry's; she talks 4 s."""
    g = Gen(1796500000, 0)
    one, two = g.caller("74950001031", "79161110031", "Caller 0031")
    g.t += 0.02
    g.join(two, "support")
    d = Chan(g, "PJSIP/104-00000001", one.uid, "from-internal", "", "79161110031", "Caller 0031")
    g.ev("Newchannel", "call,all", d.block())
    g.agent_called(two, d, "support", "PJSIP/104", "Dmitry")
    g.dial_begin(two, d, "104")
    g.t += 1.0
    g.up(d)
    g.dial_end(two, d, "ANSWER")
    g.leave(two, "support")
    g.agent_connect(two, d, "support", "PJSIP/104", "Dmitry", 1, 1)
    answered = g.t
    b1 = g.bridge_create()
    g.enter(b1, d)
    g.enter(b1, two)
    g.t += 3.0
    g.ev("Hold", "call,all", d.block() + [("MusicClass", "default")])
    d2 = Chan(g, "PJSIP/104-00000002", None, "from-internal", "105", "104", "Dmitry")
    g.ev("Newchannel", "call,all", d2.block())
    e = Chan(g, "PJSIP/105-00000003", d2.uid, "from-internal", "", "104", "Dmitry")
    g.ev("Newchannel", "call,all", e.block())
    g.dial_begin(d2, e, "105")
    g.t += 1.0
    g.up(e)
    g.dial_end(d2, e, "ANSWER")
    b2 = g.bridge_create()
    g.enter(b2, d2)
    g.enter(b2, e)
    g.t += 3.0
    swap_at = g.t
    g.leave_bridge(b2, e)
    g.enter(b1, e, swap=d)                     # Elena takes Dmitry's place next to the caller
    g.leave_bridge(b1, d)
    g.leave_bridge(b2, d2)
    g.ev("AttendedTransfer", "call,all", [("Result", "Success")] + d.block("OrigTransferer")
         + bridge_block(b1, 2, "OrigBridge") + d2.block("SecondTransferer") + bridge_block(b2, 0, "SecondBridge")
         + [("DestType", "Bridge"), ("DestBridgeUniqueid", b1)] + two.block("Transferee")
         + e.block("TransferTarget") + [("IsExternal", "Yes")])
    g.hangup(d)
    g.hangup(d2)
    g.t += 4.0
    g.leave_bridge(b1, e)
    g.hangup(e, request="HangupRequest")
    g.leave_bridge(b1, two)
    g.hangup(two)
    g.hangup(one)
    return g.frames, {"linkedid": one.uid, "answered": answered, "swap_at": swap_at}


def test_a_target_swapped_in_by_a_transfer_gets_its_own_leg():
    frames, info = refer_transfer()
    it = interpret(b"".join(frames))
    rec = it.calls[info["linkedid"]].record()
    legs = [(l["operator_name"], l["kind"], l["outcome"], l["talk_seconds"]) for l in rec["legs"]]
    # Dmitry: 3 s of talk + 4 s holding the caller in the bridge; Elena her own 4 s
    assert legs == [("Dmitry", "queue", "answered", pytest.approx(7.0, abs=0.001)),
                    ("105", "transfer", "answered", pytest.approx(4.0, abs=0.001))]
    assert rec["legs"][1]["answered_at"] == pytest.approx(info["swap_at"], abs=1e-4)
    assert rec["talk_seconds"] == pytest.approx(11.0, abs=0.001) and rec["operator_name"] == "Dmitry"


def test_queue_log_talktime_is_compared_with_the_members_whole_part():
    """AgentComplete's TalkTime runs from the connect to the transfer (consultation included):
    the recorded attended transfer agrees; a TalkTime that really disagrees is counted."""
    frames = load(REC / "attended.ami")
    assert interpret(b"".join(frames)).stats["cross_check_mismatch"] == 0
    tampered = [re.sub(rb"TalkTime: 8\r\n", b"TalkTime: 3\r\n", f) if f.startswith(b"Event: AgentComplete") else f
                for f in frames]
    it = interpret(b"".join(tampered))
    assert it.stats["cross_check_mismatch"] == 1 and "queue_log talktime says 3s" in it.mismatches[0]


def test_click_to_dial_the_operators_phone_answering_is_not_the_answer():
    """Originate of the operator's route: its ;2 half rings the phone; the call's side is the ;1
    half that dials the customer (busy here): missed, no operator, no talk."""
    rec = only_call(interpret(REC / "click_busy.ami"))
    assert (rec["status"], rec["missed_reason"], rec["answered_at"], rec["talk_seconds"]) == (
        "missed", "busy", None, 0.0)
    assert [(l["route"], l["outcome"]) for l in rec["legs"]] == [("Local/89161234567@customers", "busy")]
    assert rec["did"] == "101"        # the route's extension, never the number dialled or the caller ID


def test_the_did_is_the_inbound_extension_until_the_call_is_queued_or_dials():
    g = Gen(1796510000, 0)
    op = Chan(g, "PJSIP/101-00000001", context="from-internal", exten="s", cid="101", cname="Olga")
    g.ev("Newchannel", "call,all", op.block())
    tr = Chan(g, "PJSIP/trunk-00000002", op.uid, "from-trunk", "s", "89161234567", "<unknown>")
    g.ev("Newchannel", "call,all", tr.block())
    op.context, op.exten = "from-internal", "89161234567"
    g.dial_begin(op, tr, "89161234567@trunk")
    g.dial_end(op, tr, "BUSY")
    g.ev("Newstate", "call,all", op.block())
    g.hangup(tr)
    g.hangup(op)
    rec = only_call(interpret(b"".join(g.frames)))
    assert rec["did"] == ""           # nothing numeric before it dialled; the dialled number is not a DID


@pytest.mark.parametrize("iface,base", [
    ("Local/102@operators/n", "Local/102@operators"), ("Local/102@operators/nj", "Local/102@operators"),
    ("Local/102@operators", "Local/102@operators"), ("PJSIP/101/n", "PJSIP/101"),
    ("PJSIP/trunk/sip:+79161234567@sip.example.net", "PJSIP/trunk/sip:+79161234567@sip.example.net"),
    (" PJSIP/101 ", "PJSIP/101")])
def test_interfaces_are_compared_without_channel_options(iface, base):
    assert base_interface(iface) == base
