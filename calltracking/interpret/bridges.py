"""Bridges, transfers and Local channel optimisation (part of :data:`.handlers.EVENTTYPE_MAP`).

Talk time is measured from bridge membership: :meth:`Interpreter.sync` runs
after every BridgeEnter/BridgeLeave. A transfer needs no special arithmetic:
the caller leaves one bridge and enters another, and talk continues.

Local channel optimisation: a Local pair ``;1``/``;2`` bridged on both sides goes away and
the parties on either side meet directly. Asterisk moves one of them into the other's
bridge, either way round (a ``BridgeEnter`` with ``SwapUniqueid`` = the Local half it
replaces). Whichever way, what ``;1`` stood for (a leg, the caller's side) passes to the
party that was in ``;2``'s bridge, and what ``;2`` stood for to the party in ``;1``'s bridge
(:func:`hand_over`, applied when the move happens). A ``SwapUniqueid`` without a Local
optimisation announced (a transfer completed by swapping the target in) is a new party.
"""
from __future__ import annotations

from calltracking.enums import LegKind
from calltracking.interpret.legs import add_leg, leg_answered
from calltracking.interpret.names import is_party


def _peer(it, uid: str) -> str:
    """The other party in ``uid``'s bridge (a party, not an announcer), or ""."""
    ch = it.channels.get(uid)
    for m in sorted(it.bridges.get(ch.bridge, ()) if ch is not None and ch.bridge else ()):
        if m != uid and is_party(it.channel_name(m)):
            return m
    return ""


def hand_over(it, old: str, new: str) -> set:
    """``new`` takes the roles of ``old``: the leg it carries, its place on the caller's side."""
    if not old or not new or old == new:
        return set()
    touched = set()
    it.alias_leg(old, new)
    ref = it.leg_of.get(old)
    if ref is not None:
        touched.add(ref[0])
    for lid in {it.chan_call.get(old), ref[0] if ref is not None else None}:
        call = it.calls.get(lid) if lid else None
        if call is not None and old in call.caller_side and new not in call.caller_side:
            call.caller_side.add(new)
            if call.inbound == old:
                call.inbound = new
                call.heirs.add(new)
            it.chan_call.setdefault(new, call.linkedid)
            if new in it.channels:
                call.names.setdefault(new, it.channel_name(new))
            touched.add(call.linkedid)
    return touched


# ------------------------------------------------------------------ bridges
def on_bridge_enter(it, ev: dict, ts: float):
    uid, bid = ev.get("Uniqueid", ""), ev.get("BridgeUniqueid", "")
    if not uid or not bid:
        return None
    swap = ev.get("SwapUniqueid", "")
    plan = it.optimising.get(swap) if swap else None
    if plan is not None:
        one, two, p, q = plan
        it.optimising.pop(one, None)
        it.optimising.pop(two, None)
        for t in hand_over(it, one, p) | hand_over(it, two, q):
            it.touch(t)
    touched = it.enter_bridge(uid, bid, ts, ev.get("Channel", ""))
    for t in touched:
        it.touch(t)
    return it.chan_call.get(uid) or ev.get("Linkedid")


def on_bridge_leave(it, ev: dict, ts: float):
    uid, bid = ev.get("Uniqueid", ""), ev.get("BridgeUniqueid", "")
    ch = it.channels.get(uid)
    if ch is not None and ch.bridge == bid:
        ch.bridge = None
    for t in it.leave_bridge(uid, bid, ts):
        it.touch(t)
    return it.chan_call.get(uid) or ev.get("Linkedid")


def on_bridge_merge(it, ev: dict, ts: float):
    to, frm = ev.get("ToBridgeUniqueid", ""), ev.get("FromBridgeUniqueid", "")
    members = list(it.bridges.get(frm, ()))
    touched = set()
    for uid in members:
        touched |= it.leave_bridge(uid, frm, ts)
        touched |= it.enter_bridge(uid, to, ts, it.channel_name(uid))
    for t in touched:
        it.touch(t)
    return next(iter(touched), None)


def on_local_optimization(it, ev: dict, ts: float):
    """LocalOptimizationBegin: remember who is on either side of the pair; the roles pass
    when the move happens (:func:`on_bridge_enter`), or now for a merge (no ``Source``)."""
    one, two = ev.get("LocalOneUniqueid", ""), ev.get("LocalTwoUniqueid", "")
    lid = it.chan_call.get(one) or it.chan_call.get(two)
    if not one or not two or lid not in it.calls:
        return None
    plan = (one, two, _peer(it, two), _peer(it, one))
    if not ev.get("SourceUniqueid"):
        for t in hand_over(it, one, plan[2]) | hand_over(it, two, plan[3]):
            it.touch(t)
        return lid
    it.optimising[one] = it.optimising[two] = plan
    return lid


# ------------------------------------------------------------------ transfers
def on_blind_transfer(it, ev: dict, ts: float):
    if ev.get("Result", "Success") != "Success":
        return None
    call = it.calls.get(ev.get("TransfereeLinkedid", "")) or it.calls.get(ev.get("TransfererLinkedid", ""))
    if call is None:
        return None
    _count_transfer(call)
    return call.linkedid


def on_attended_transfer(it, ev: dict, ts: float):
    if ev.get("Result", "Success") != "Success":
        return None
    call = (it.calls.get(ev.get("TransfereeLinkedid", ""))
            or it.calls.get(ev.get("OrigTransfererLinkedid", "")))
    if call is None:
        return None
    target = ev.get("TransferTargetUniqueid", "")
    if target and target not in call.legs and target not in it.leg_of:
        leg = add_leg(it, call, target, ev.get("TransferTargetChannel", ""), ts, LegKind.TRANSFER)
        leg_answered(leg, ts)
        it.chan_call.setdefault(target, call.linkedid)
    _count_transfer(call)
    return call.linkedid


def _count_transfer(call) -> None:
    """Transfers are counted with the call's variables (``_transfers``)."""
    call.ct["_transfers"] = str(int(call.ct.get("_transfers", "0")) + 1)
