"""Dials (part of the EVENTTYPE_MAP handlers): legs the caller's side rings, and the graph of
every Dial() made by a channel of the call, answered or not, which leads from a leg to the phone
that talked (:meth:`~.state.CallState.talker`: a route dialling a phone, a phone forwarding).
"""
from __future__ import annotations

from calltracking.interpret.handlers import GRAPH_MAX, NAMES_MAX, _answer, _leg, _seen_context
from calltracking.interpret.state import DIAL_OUTCOME, CallState, interface_of


def _edge(call: CallState, src: str, dest: str, answered=None) -> bool:
    """Record a Dial() from ``src`` to ``dest`` (``answered`` True/False once known)."""
    if not dest:
        return False
    edges = call.graph.get(src)
    if edges is None:
        if len(call.graph) >= GRAPH_MAX:
            return False
        edges = call.graph[src] = {}
    if answered is None:
        edges.setdefault(dest, False)
    else:
        edges[dest] = answered
    return True


def on_dial_begin(it, ev: dict, ts: float):
    src = ev.get("Uniqueid")
    call = it.call_of(ev) if src else None
    if call is None:
        return None
    dest = ev.get("DestUniqueid", "")
    if dest and len(call.names) < NAMES_MAX:
        call.names[dest] = ev.get("DestChannel", "")
    chained = _edge(call, src, dest)
    if src not in call.caller_side:
        return call.linkedid if chained else None
    _seen_context(call, ev)
    if dest and dest not in call.dials and len(call.dials) < 32:
        call.dials[dest] = (ev.get("DialString", "")[:200], ev.get("DestCallerIDNum", "")[:40],
                            ev.get("Exten", "")[:40])
    if dest in call.legs or dest in call.caller_side:
        return call.linkedid
    dial, dest_name = ev.get("DialString", ""), ev.get("DestChannel", "")
    tech = dest_name.split("/", 1)[0] if "/" in dest_name else ""
    iface = f"{tech}/{dial}" if dial and tech and not dial.startswith(tech + "/") else (
        dial or interface_of(dest_name))
    kind = "queue" if call.in_queue else ("transfer" if call.answered_at is not None else "dial")
    _leg(it, call, dest, ev.get("DestChannel", ""), ts, kind, iface)
    return call.linkedid


def on_dial_end(it, ev: dict, ts: float):
    src = ev.get("Uniqueid")
    call = it.call_of(ev) if src else None
    if call is None:
        return None
    status = ev.get("DialStatus", "").upper()
    chained = src in call.graph and _edge(call, src, ev.get("DestUniqueid", ""), status == "ANSWER")
    if src not in call.caller_side:
        return call.linkedid if chained else None
    leg = call.legs.get(ev.get("DestUniqueid", ""))
    if leg is None:
        return None
    if status == "ANSWER":
        if leg.answered_at is None:
            leg.answered_at = ts
        leg.outcome = "answered"
        if not call.in_queue:
            _answer(it, call, leg, ts)
    else:
        if leg.outcome == "ringing":
            leg.outcome = DIAL_OUTCOME.get(status, "failed")
        if leg.ended_at is None:
            leg.ended_at = ts
        if not call.in_queue and status:
            call.dial_status = status
    return call.linkedid
