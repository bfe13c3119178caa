"""Cross-checks against Asterisk's own figures (part of :data:`.handlers.EVENTTYPE_MAP`).

Our talk times come from bridge membership (:mod:`.record`). Asterisk measures some of them
itself: queue_log's talktime (``AgentComplete``) and each channel's CDR billsec (``Cdr``). Where
both measure the same span, a difference over 1 s is counted (``cross_check_mismatch``) and
logged, never applied: our figure stays.
"""
from __future__ import annotations

import logging
from typing import Optional

from calltracking.enums import LegKind
from calltracking.interpret.record import talk_until

log = logging.getLogger(__name__)

#: Largest difference between Asterisk's figure and ours that counts as agreement (seconds).
TOLERANCE = 1.0


def compare(it, what: str, leg, expected: float, ts: float, linkedid: str = "",
            got: Optional[float] = None) -> None:
    """Count and log a difference over :data:`TOLERANCE` between Asterisk's figure
    (``expected``) and ours (``got``; by default the leg's talk up to ``ts``)."""
    if got is None:
        got = talk_until(leg, ts)
    if abs(got - expected) > TOLERANCE + 1e-6:
        it.stats["cross_check_mismatch"] += 1
        msg = f"leg {leg.uniqueid}: {got:.3f}s but {what} says {expected:.0f}s"
        it.mismatches.append(msg)
        log.warning(msg, extra={"linkedid": linkedid or None})


def on_agent_complete(it, ev: dict, ts: float):
    """queue_log's talktime (``TalkTime``) is the time since the queue connected this member
    (``AgentConnect``) until the member's part ended (hang-up or transfer), hold included:
    compared with the same span of the leg, not with the leg's own talk."""
    call = it.call_of(ev)
    if call is None:
        return None
    dest = ev.get("DestUniqueid", "")
    leg = call.legs.get(dest) or next((l for l in call.legs.values() if l.current == dest), None)
    if leg is not None and leg.answered_at is not None:
        end = leg.ended_at if leg.ended_at is not None else ts
        try:
            compare(it, "queue_log talktime", leg, float(ev.get("TalkTime", "")), ts, call.linkedid,
                    got=end - leg.answered_at)
        except ValueError:
            pass
    return call.linkedid


def on_cdr(it, ev: dict, ts: float):
    """An operator channel's own CDR billsec (whole seconds, truncated) against the talk time of
    that operator's leg.

    Only where the two measure the same thing: a transferred call, and a leg whose operator
    left the caller for a while, are left out. There the operators' channels were answered
    while the caller held (consultation) and Asterisk splits their CDRs at every bridge change
    (measured live on an attended transfer: Kira 2.5 s with the caller, CDR rows of 4 and 6 s;
    Luka 5.5 s, billsec 8)."""
    lid = it.chan_call.get(ev.get("UniqueID", ""))
    call = it.calls.get(lid) if lid else None
    if call is None:
        return None
    channel = ev.get("Channel", "")
    try:
        billsec = float(ev.get("BillableSeconds", ""))
    except ValueError:
        return None
    call.cdr_billsec[channel] = billsec
    if ev.get("Disposition") != "ANSWERED":
        return None
    if sum(1 for leg in call.legs.values() if leg.answered_at is not None) > 1 \
            or any(leg.kind == LegKind.TRANSFER for leg in call.legs.values()):
        return None
    # a Local operator channel's CDR is on its ;2 half; the leg is the ;1 half the queue dialled
    names = {channel, channel[:-2] + ";1"} if channel.endswith(";2") else {channel}
    for leg in call.legs.values():
        if leg.channel in names and leg.answered_at is not None:
            # at the CDR the leg may still be bridged: talk counts up to now (ts)
            talk = talk_until(leg, ts)
            span = (leg.ended_at if leg.ended_at is not None else ts) - leg.answered_at
            if span - talk > TOLERANCE:
                continue      # the operator left the caller (consultation, hold): not comparable
            # billsec truncates: talk - billsec lies in [0, 1) when they agree
            compare(it, "CDR billsec", leg, billsec + 0.5, ts, call.linkedid, got=talk)
    return None
