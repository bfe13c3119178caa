"""Bridges, transfers and Local channel optimisation (part of the EVENTTYPE_MAP handlers).

Talk time is measured from bridge membership: :meth:`Interpreter.sync` runs
after every BridgeEnter/BridgeLeave. A transfer needs no special arithmetic:
the caller leaves one bridge and enters another, and talk continues.
"""
from __future__ import annotations

from .handlers import _leg


# ------------------------------------------------------------------ bridges
def on_bridge_enter(it, ev: dict, ts: float):
    uid, bid = ev.get("Uniqueid", ""), ev.get("BridgeUniqueid", "")
    if not uid or not bid:
        return None
    swap = ev.get("SwapUniqueid", "")
    if swap:
        it.alias_leg(swap, uid)
    elif uid in it.opt_alias:
        it.alias_leg(it.opt_alias.pop(uid), uid)
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
    """LocalOptimizationBegin: the channel moved in takes over the Local channel's leg."""
    source = ev.get("SourceUniqueid", "")
    for key in ("LocalOneUniqueid", "LocalTwoUniqueid"):
        local = ev.get(key, "")
        if local in it.leg_of and source and source not in it.leg_of:
            it.opt_alias[source] = local
            return it.leg_of[local][0]
    return None


# ------------------------------------------------------------------ transfers
def on_blind_transfer(it, ev: dict, ts: float):
    if ev.get("Result", "Success") != "Success":
        return None
    call = it.calls.get(ev.get("TransfereeLinkedid", "")) or it.calls.get(ev.get("TransfererLinkedid", ""))
    if call is None:
        return None
    call.ct.setdefault("_transfers", "0")
    call.ct["_transfers"] = str(int(call.ct["_transfers"]) + 1)
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
        leg = _leg(it, call, target, ev.get("TransferTargetChannel", ""), ts, "transfer")
        leg.answered_at, leg.outcome = ts, "answered"
        it.chan_call.setdefault(target, call.linkedid)
    call.ct.setdefault("_transfers", "0")
    call.ct["_transfers"] = str(int(call.ct["_transfers"]) + 1)
    return call.linkedid
