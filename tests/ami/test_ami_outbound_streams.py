"""AMI streams of calls an operator places (their phone dialling out, our click-to-call), built in
the recordings' raw format with support.ami_streams, and the pure detection run on them.

What Asterisk 22 sends for ``PJSIP/101`` dialling ``89161234567`` through ``Dial(PJSIP/${EXTEN}@trunk)``:
the phone's channel is created first (Uniqueid == Linkedid, Context = the endpoint's context,
Exten = the number dialled), the trunk channel gets the same Linkedid and, as ``Dial`` does, the
dialled extension as its caller ID; DialBegin/DialEnd carry the caller's snapshot then the
``Dest`` one; both channels enter one bridge; Cdr and Hangup close it. A click-to-call Originate
first creates the operator's channel alone (``CT_CALLBACK_FOR`` VarSet from the Originate's
``Variable``, a Dial without caller snapshot), then its dialplan dials the number.
"""
from __future__ import annotations

import pytest

from calltracking.interpret import Interpreter
from calltracking.interpret import outbound as ob
from calltracking.phone import try_normalize
from support.ami_server import headers, load
from support.ami_streams import Chan, Gen
from support.fixtures import FIXTURES


def _trunk(g, op, number, trunk="trunk"):
    tr = Chan(g, f"PJSIP/{trunk}-{g.seq:08x}", op.uid, "from-trunk", "s", number, "<unknown>")
    g.ev("Newchannel", "call,all", tr.block())
    return tr


def _talk_and_hangup(g, op, tr, talk, billsec_dest, number, callee_hangs_up=True):
    bid = g.bridge_create()
    g.enter(bid, op)
    g.enter(bid, tr)
    g.t += talk
    first, second = (tr, op) if callee_hangs_up else (op, tr)
    g.ev("HangupRequest", "call,all", first.block() + [("Cause", "16")])
    g.leave_bridge(bid, first)
    g.leave_bridge(bid, second)
    g.destroy(bid)
    _cdr(g, op, tr, number, "ANSWERED", billsec_dest)
    g.hangup(first)
    g.hangup(second)


def _cdr(g, op, tr, number, disposition, billsec):
    g.ev("Cdr", "cdr,all", [
        ("AccountCode", ""), ("Source", op.cid), ("Destination", number), ("DestinationContext", op.context),
        ("CallerID", f'"{op.cname}" <{op.cid}>'), ("Channel", op.name), ("DestinationChannel", tr.name),
        ("LastApplication", "Dial"), ("LastData", f"PJSIP/{number}@trunk,60"), ("StartTime", ""),
        ("AnswerTime", ""), ("EndTime", ""), ("Duration", str(int(billsec) + 3)),
        ("BillableSeconds", str(int(billsec))), ("Disposition", disposition),
        ("AMAFlags", "DOCUMENTATION"), ("UniqueID", op.uid), ("UserField", "")])


def operator_dials(g: Gen, number: str, ext: str = "101", name: str = "Olga", answer: bool = True,
                   ring: float = 3.0, talk: float = 20.0, context: str = "from-internal",
                   dialstring: str | None = None, status: str = "NOANSWER") -> dict:
    """The operator's phone dials ``number``; returns the times the listener should derive."""
    op = Chan(g, f"PJSIP/{ext}-{g.seq:08x}", context=context, exten=number, cid=ext, cname=name)
    op.state = 4
    g.ev("Newchannel", "call,all", op.block(), dt=0.5)
    started = g.t
    op.prio = 2
    tr = _trunk(g, op, number)
    g.dial_begin(op, tr, dialstring or f"{number}@trunk")
    g.ringing(tr)
    if not answer:
        g.t += ring
        g.dial_end(op, tr, status)
        g.hangup(tr, "19" if status == "NOANSWER" else "16")
        _cdr(g, op, tr, number, "NO ANSWER", 0)
        g.hangup(op)
        return {"linkedid": op.uid, "started_at": started, "answered_at": None, "ended_at": g.t}
    g.t += ring
    g.up(tr)
    g.dial_end(op, tr, "ANSWER")
    answered = g.t
    g.up(op)
    _talk_and_hangup(g, op, tr, talk, talk, number)
    return {"linkedid": op.uid, "started_at": started, "answered_at": answered, "ended_at": g.t,
            "talk": talk}


def click_to_call(g: Gen, number: str, missed_id: int, ext: str = "101", did: str = "74950001002",
                  answer: bool = True, talk: float = 15.0) -> dict:
    """Our Originate (Channel PJSIP/101, Context calltracking-callback, Exten = the missed number,
    Variable CT_CALLBACK_FOR): the operator's phone rings first, then the number is dialled."""
    op = Chan(g, f"PJSIP/{ext}-{g.seq:08x}", context="from-internal", exten="s", cid=did, cname="Callback")
    g.ev("Newchannel", "call,all", op.block(), dt=0.5)
    started = g.t
    g.varset(op, "CT_CALLBACK_FOR", str(missed_id))
    g.ev("DialBegin", "call,all", op.block("Dest") + [("DialString", ext)])
    g.ringing(op)
    g.up(op, dt=2.0)
    g.ev("DialEnd", "call,all", op.block("Dest") + [("DialStatus", "ANSWER")])
    g.ev("OriginateResponse", "call,all", [("Response", "Success"), ("Channel", f"PJSIP/{ext}"),
                                           ("Context", "calltracking-callback"), ("Exten", number),
                                           ("Application", ""), ("Data", ""), ("Reason", "4"),
                                           ("Uniqueid", op.uid), ("CallerIDNum", did),
                                           ("CallerIDName", "Callback")])
    op.context, op.exten = "calltracking-callback", number
    g.ev("Newexten", "dialplan,all", op.block() + [("Extension", number), ("Application", "NoOp"),
                                                   ("AppData", f"calltracking: callback to {number}")])
    op.context, op.prio = "from-internal", 1
    tr = _trunk(g, op, number)
    g.dial_begin(op, tr, f"{number}@trunk")
    g.ringing(tr)
    g.t += 4.0
    if not answer:
        g.dial_end(op, tr, "NOANSWER")
        g.hangup(tr, "19")
        g.hangup(op)
        return {"linkedid": op.uid, "started_at": started, "answered_at": None, "ended_at": g.t}
    g.up(tr)
    g.dial_end(op, tr, "ANSWER")
    answered = g.t
    _talk_and_hangup(g, op, tr, talk, talk, number, callee_hangs_up=False)
    return {"linkedid": op.uid, "started_at": started, "answered_at": answered, "ended_at": g.t,
            "talk": talk}


def operator_calls_operator(g: Gen) -> dict:
    """PJSIP/101 dials extension 102 (an internal call, not an outside number)."""
    op = Chan(g, f"PJSIP/101-{g.seq:08x}", context="from-internal", exten="102", cid="101", cname="Olga")
    op.state = 4
    g.ev("Newchannel", "call,all", op.block(), dt=0.5)
    dest = Chan(g, f"PJSIP/102-{g.seq:08x}", op.uid, "from-internal", "s", "102", "<unknown>")
    g.ev("Newchannel", "call,all", dest.block())
    g.dial_begin(op, dest, "102")
    g.t += 2
    g.up(dest)
    g.dial_end(op, dest, "ANSWER")
    _talk_and_hangup(g, op, dest, 5.0, 5.0, "102")
    return {"linkedid": op.uid}


def frames_of(build, *args, epoch=1795392600, seq=0, **kw):
    g = Gen(epoch, seq)
    info = build(g, *args, **kw)
    return g.frames, info


# ------------------------------------------------------------------ pure detection on these streams
def _interpret(frames):
    it = Interpreter()
    for f in frames:
        it.feed(headers(f), 0.0)
    return it


def test_operator_phone_dialling_out_is_outbound_with_callee_number():
    frames, info = frames_of(operator_dials, "89161234567")
    it = _interpret(frames)
    call = it.calls[info["linkedid"]]
    assert ob.detect(call, {"PJSIP/101"}) == "operator"
    assert ob.detect(call, {"PJSIP/102"}) is None                 # not an operator's device
    assert ob.detect(call, set(), ("from-internal",)) == "context"
    assert ob.detect(call, set(), ("other",)) is None
    assert not ob.originated_by_us(call)
    num = ob.pick_number(ob.callee_candidates(call), lambda r: try_normalize(r, "RU"))
    assert num == "+79161234567"
    rec = call.record()
    assert rec["status"] == "answered"
    assert rec["answered_at"] == pytest.approx(info["answered_at"], abs=2e-6)
    assert rec["talk_seconds"] == pytest.approx(info["talk"], abs=0.0011)


def test_click_to_call_detected_without_any_operator_list():
    frames, info = frames_of(click_to_call, "+74953000000", 42)
    it = _interpret(frames)
    call = it.calls[info["linkedid"]]
    assert ob.detect(call, set(), ()) == "callback"
    assert ob.originated_by_us(call) and ob.callback_for(call) == 42
    assert ob.pick_number(ob.callee_candidates(call), lambda r: try_normalize(r, "RU")) == "+74953000000"
    # the operator answering their own phone (the Originate's Dial) is not the callee answering
    assert call.record()["answered_at"] == pytest.approx(info["answered_at"], abs=2e-6)


def test_unanswered_and_internal_calls():
    frames, info = frames_of(operator_dials, "89161234567", answer=False, ring=25.0)
    call = _interpret(frames).calls[info["linkedid"]]
    assert call.record()["status"] == "missed" and call.record()["answered_at"] is None
    frames, info = frames_of(operator_calls_operator)
    call = _interpret(frames).calls[info["linkedid"]]
    assert ob.detect(call, {"PJSIP/101"}) == "operator"
    assert ob.callee_candidates(call) == []                     # 102 is an extension: nothing to store


def test_dial_strings_and_prefixed_extension():
    assert ob.dialed_number("89161234567@trunk") == "89161234567"
    assert ob.dialed_number("trunk/sip:+79161234567@sip.example.net") == "+79161234567"
    assert ob.dialed_number("trunk/89161234567") == "89161234567"
    assert ob.dialed_number("102@operators/n") == "102"
    assert ob.dialed_number("trunk") == ""
    # "9" for an outside line: the phone's extension is 989..., the trunk is dialled 89...
    frames, info = frames_of(operator_dials, "989161234567", dialstring="89161234567@trunk")
    call = _interpret(frames).calls[info["linkedid"]]
    assert ob.pick_number(ob.callee_candidates(call), lambda r: try_normalize(r, "RU")) == "+79161234567"


def test_inbound_recording_is_not_outbound():
    it = _interpret(load(FIXTURES / "direct_dial_no_queue.ami"))
    calls = list(it.calls.values())
    assert calls
    for call in calls:
        assert ob.detect(call, {"PJSIP/101", "Local/102@operators"}, ("from-internal",)) is None


def test_outbound_contexts_setting():
    from calltracking.config import ConfigError, load_config

    def load(value=None):
        over = {} if value is None else {"asterisk.outbound_contexts": value}
        return load_config("/nonexistent/calltracking.ini", env={}, overrides=over, require_file=False)

    assert load().asterisk.outbound_contexts == ()
    cfg = load(" from-internal , desks-out,from-internal,")
    assert cfg.asterisk.outbound_contexts == ("from-internal", "desks-out")
    assert cfg.as_dict()["asterisk"]["outbound_contexts"] == "from-internal, desks-out"
    with pytest.raises(ConfigError, match=r"\[asterisk\] outbound_contexts: not a dialplan context name"):
        load("from internal")
