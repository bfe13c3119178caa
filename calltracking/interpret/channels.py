"""Channel events (part of :data:`.handlers.EVENTTYPE_MAP`): a call starts, learns its caller and
DID, keeps its variables, and ends.

- A call starts with the channel whose ``Uniqueid`` is its ``Linkedid`` (the inbound channel);
  a ``Local/<DID>@...;2`` half whose ``;1`` half is that channel is the inbound leg instead (the
  ``;1`` half plays the caller).
- The DID is the inbound channel's extension when it is a number, until the call is queued or
  dials (later extensions are where the dialplan sent it).
- The call ends when the inbound channel (or the channel that took its place) hangs up.
"""
from __future__ import annotations

from calltracking.interpret.gaps import hms
from calltracking.interpret.legs import hung_up_outcome, name_channel, ring_ended, seen_context
from calltracking.interpret.names import caller_id_text, is_number, is_outside_number, local_twin
from calltracking.interpret.record import VANISHED, run_talk_clock
from calltracking.interpret.state import CallState, Channel

#: Caller ID values meaning "not known".
UNKNOWN_IDS = ("", "<unknown>", "<Unknown>")
#: VarSet variables we read (besides every ``CT_*``).
VARS = frozenset({"MIXMONITOR_FILENAME", "QUEUESTATUS"})
#: The same as the frame prefixes the reader keeps (every other ``VarSet`` is dropped unread).
VARSET_PREFIXES = (b"\r\nVariable: CT_",) + tuple(b"\r\nVariable: " + v.encode() for v in sorted(VARS))


def caller_info(call: CallState, ev: dict, did: bool = True) -> None:
    """Caller ID of the inbound channel; its extension is the DID until the call is queued or
    dials (later extensions are where the dialplan sent it, e.g. the number an operator dialled).
    A channel that took the inbound channel's place (Local optimisation) keeps the caller's
    identity: its own caller ID is the far end's."""
    if ev.get("Uniqueid") in call.heirs:
        return
    num = ev.get("CallerIDNum", "")
    if num not in UNKNOWN_IDS:
        call.caller_number = num
        name = caller_id_text(ev.get("CallerIDName", ""))
        call.caller_name = "" if name in UNKNOWN_IDS else name
    if did and not is_number(call.did) and not call.dials and call.queued_at is None:
        ext = ev.get("Exten", "")
        if ext and is_number(ext):
            call.did = ext


def on_newchannel(it, ev: dict, ts: float):
    uid, lid, name = ev.get("Uniqueid", ""), ev.get("Linkedid", ""), ev.get("Channel", "")
    if not uid or not lid:
        return None
    it.channels[uid] = Channel(uid, name, lid, ts)
    call = it.calls.get(lid)
    if call is not None:
        name_channel(call, uid, name)
    if call is None:
        if uid != lid:
            return None          # a channel of a call we never saw start
        call = it.new_call(lid)
        call.inbound, call.started_at = uid, ts
        call.caller_side.add(uid)
        call.did = ev.get("Exten", "") if is_number(ev.get("Exten", "")) else ""
        call.first_channel, call.first_exten = name, ev.get("Exten", "")
        call.first_context = ev.get("Context", "")
        call.names[uid] = name
        seen_context(call, ev)
    elif (call.inbound and not call.answered_at and local_twin(name)
          and local_twin(name) == it.channel_name(call.inbound) and name.endswith(";2")
          and is_outside_number(ev.get("Exten", ""))):
        # Local/<DID>@ctx;1 plays the caller; its ;2 half is the inbound leg. A ;2 half whose
        # extension is no outside number (Local/201@phones originated for a click-to-dial) is not.
        call.inbound, call.started_at = uid, ts
        call.caller_side.add(uid)
        call.did = ev.get("Exten", "") or call.did
    call.channels.add(uid)
    it.chan_call[uid] = lid
    if uid == call.inbound:
        caller_info(call, ev)
    return lid


def on_callerid(it, ev: dict, ts: float):
    call = it.call_of(ev)
    if call is None:
        return None
    new_context = seen_context(call, ev)
    if ev.get("Uniqueid") == call.inbound:
        caller_info(call, ev)
        return call.linkedid
    return call.linkedid if new_context else None


def on_hangup_request(it, ev: dict, ts: float):
    call = it.call_of(ev)
    if call is None or ev.get("Uniqueid") != call.inbound:
        return None
    call.caller_hung_up = True
    return call.linkedid


def on_hangup(it, ev: dict, ts: float, vanished: bool = False):
    uid = ev.get("Uniqueid", "")
    ch = it.channels.pop(uid, None)
    touched = set()
    if ch is not None and ch.bridge:
        touched |= it.leave_bridge(uid, ch.bridge, ts)
    lid = it.chan_call.pop(uid, None) or ev.get("Linkedid", "")
    it.optimising.pop(uid, None)
    ref = it.leg_of.pop(uid, None)
    if ref is not None:
        lcall = it.calls.get(ref[0])
        leg = lcall.legs.get(ref[1]) if lcall else None
        if leg is not None and leg.current == uid:
            ring_ended(leg, hung_up_outcome(lcall), ts)
            touched.add(lcall.linkedid)
    call = it.calls.get(lid)
    if call is not None:
        call.channels.discard(uid)
        if uid == call.inbound and call.ended_at is None:
            if ev.get("CallerIDNum"):
                caller_info(call, ev, did=False)
            call.ended_at = ts
            call.in_queue = False
            if vanished:
                call.closed_reason = VANISHED
            it.sync(call, ts)
            run_talk_clock(call, False, ts)
        if not call.channels:
            call.done = True
        touched.add(call.linkedid)
    for t in touched:
        it.touch(t)
    return lid if call is not None else None


def on_channel_gone(it, ev: dict, ts: float):
    """Synthetic ``CTChannelGone``: a channel we knew is missing from CoreShowChannels after a
    reconnect, and nothing says when it went (:mod:`.reconcile`): the call is ``vanished``."""
    return on_hangup(it, ev, ts, vanished=True)


def on_varset(it, ev: dict, ts: float):
    var = ev.get("Variable", "")
    if not (var.startswith("CT_") or var in VARS):
        return None
    call = it.call_of(ev)
    if call is None:
        return None
    value = ev.get("Value", "")
    seen_context(call, ev)
    if var == "MIXMONITOR_FILENAME":
        if value and not call.recording:
            call.recording = value
    elif var == "QUEUESTATUS":
        if ev.get("Uniqueid") in call.caller_side:
            call.queue_status = value.upper()
    else:
        call.ct[var] = value
    return call.linkedid


def on_core_show_channel(it, ev: dict, ts: float):
    """A stored ``CoreShowChannel`` event: the channel is adopted as created ``Duration`` before
    ``ts`` (and entered in its bridge) unless it is known or its call is finished."""
    uid, lid = ev.get("Uniqueid", ""), ev.get("Linkedid", "")
    if uid and uid not in it.channels and lid not in it.finished:
        started = ts - (hms(ev.get("Duration", "")) or 0.0)
        fake = dict(ev, Event="Newchannel", Exten=ev.get("Extension", ev.get("Exten", "")))
        on_newchannel(it, fake, started)
        bid = ev.get("BridgeId", "")
        if bid and uid in it.channels:
            it.enter_bridge(uid, bid, ts, ev.get("Channel", ""))
        if lid in it.calls:
            it.dirty.add(lid)
    return lid if lid in it.calls else None
