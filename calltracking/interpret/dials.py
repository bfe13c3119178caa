"""Dials (part of :data:`.handlers.EVENTTYPE_MAP`): legs the caller's side rings, and the graph of
every Dial() made by a channel of the call, answered or not, which leads from a leg to the phone
that talked (:meth:`~.state.CallState.talker`: a route dialling a phone, a phone forwarding).

The ``Dial()`` of a website callback request's first channel (``CT_CALLBACK_REQUEST``) dials the
visitor, not an operator: the visitor's channel joins the caller's side and opens no leg
(:mod:`calltracking.callbacks.link`).

A leg's interface is the ``DialString`` with the technology of the channel dialled
(``Local/102@operators/n`` dialled as ``102@operators/n``), else the channel's interface.
"""
from __future__ import annotations

from calltracking.enums import LegOutcome
from calltracking.interpret.legs import (
    DIAL_OUTCOME, add_dial, add_leg, answer, dialled_kind, leg_answered, name_channel, ring_ended, seen_context,
)
from calltracking.interpret.names import interface_of
from calltracking.interpret.outbound import CALLBACK_REQUEST_VAR

#: Dials remembered per call (what the caller's side dialled: outbound calls' numbers).
DIALS_MAX = 32


def on_dial_begin(it, ev: dict, ts: float):
    src = ev.get("Uniqueid")
    call = it.call_of(ev) if src else None
    if call is None:
        return None
    dest = ev.get("DestUniqueid", "")
    if dest:
        name_channel(call, dest, ev.get("DestChannel", ""))
    chained = add_dial(call, src, dest)
    if src not in call.caller_side:
        return call.linkedid if chained else None
    seen_context(call, ev)
    if dest and dest not in call.dials and len(call.dials) < DIALS_MAX:
        call.dials[dest] = (ev.get("DialString", "")[:200], ev.get("DestCallerIDNum", "")[:40],
                            ev.get("Exten", "")[:40])
    if dest in call.legs or dest in call.caller_side:
        return call.linkedid
    if src == call.linkedid and call.ct.get(CALLBACK_REQUEST_VAR) and dest:
        # a website callback dialling the visitor: the customer's side, never an operator's leg
        call.caller_side.add(dest)
        it.chan_call.setdefault(dest, call.linkedid)
        return call.linkedid
    dial, dest_name = ev.get("DialString", ""), ev.get("DestChannel", "")
    tech = dest_name.split("/", 1)[0] if "/" in dest_name else ""
    iface = f"{tech}/{dial}" if dial and tech and not dial.startswith(tech + "/") else (
        dial or interface_of(dest_name))
    add_leg(it, call, dest, ev.get("DestChannel", ""), ts, dialled_kind(call), iface)
    return call.linkedid


def on_dial_end(it, ev: dict, ts: float):
    src = ev.get("Uniqueid")
    call = it.call_of(ev) if src else None
    if call is None:
        return None
    status = ev.get("DialStatus", "").upper()
    chained = src in call.graph and add_dial(call, src, ev.get("DestUniqueid", ""), status == "ANSWER")
    if src not in call.caller_side:
        return call.linkedid if chained else None
    leg = call.legs.get(ev.get("DestUniqueid", ""))
    if leg is None:
        return None
    if status == "ANSWER":
        leg_answered(leg, ts)
        if not call.in_queue:
            answer(call, leg, ts)
    else:
        ring_ended(leg, DIAL_OUTCOME.get(status, LegOutcome.FAILED), ts)
        if not call.in_queue and status:
            call.dial_status = status
    return call.linkedid
