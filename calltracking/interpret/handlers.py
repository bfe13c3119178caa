"""One small function per AMI event type, dispatched through :data:`EVENTTYPE_MAP`.

Each handler gets the interpreter (the state), the event (a dict of AMI
headers) and its time (epoch float), and returns the Linkedid of the call it
changed (the event is then stored with that call), or None when the event
changed nothing worth keeping. Handlers never do I/O.
"""
from __future__ import annotations

from calltracking.interpret.state import CallState, Channel, Leg, interface_of, local_twin

UNKNOWN_IDS = ("", "<unknown>", "<Unknown>")
#: VarSet variables we read (besides every ``CT_*``).
VARS = frozenset({"MIXMONITOR_FILENAME", "QUEUESTATUS"})
#: Every event header the handlers read (a test checks the code against it): a stored event
#: keeps these, so replaying it (``ami rebuild``, a restart) decides exactly as the live run.
#: ``CTQueueEmpty`` is ours (written by :func:`on_queue_join`).
HEADERS = frozenset("""Event Timestamp Uniqueid Linkedid Channel Context Exten CallerIDNum CallerIDName
DestUniqueid DestChannel DestCallerIDNum Variable Value Queue MemberName Interface Location Name Status
Paused DialStatus DialString BridgeUniqueid SwapUniqueid ToBridgeUniqueid FromBridgeUniqueid
LocalOneUniqueid LocalTwoUniqueid SourceUniqueid Result TransfereeLinkedid TransfererLinkedid
OrigTransfererLinkedid TransferTargetUniqueid TransferTargetChannel TalkTime HoldTime RingTime Reason
Wait Duration BridgeId Extension UniqueID BillableSeconds Disposition CTQueueEmpty""".split())
#: A Local ``;2`` half is the inbound leg only when its extension reads as a phone number
#: (``Local/<DID>@from-trunk``); ``Local/201@phones`` originated for a click-to-dial is not.
DID_DIGITS = 7
#: Bounds of the per-call dial graph and channel names (a call has a handful of each).
GRAPH_MAX, NAMES_MAX = 64, 128


def _is_number(ext: str) -> bool:
    return ext.lstrip("+").isdigit()


def _caller_info(call: CallState, ev: dict, did: bool = True) -> None:
    """Caller ID of the inbound channel; its extension is the DID until the call is queued or
    dials (later extensions are where the dialplan sent it, e.g. the number an operator dialled).
    A channel that took the inbound channel's place (Local optimisation) keeps the caller's
    identity: its own caller ID is the far end's."""
    if ev.get("Uniqueid") in call.heirs:
        return
    num = ev.get("CallerIDNum", "")
    if num not in UNKNOWN_IDS:
        call.caller_number = num
        name = ev.get("CallerIDName", "")
        call.caller_name = "" if name in UNKNOWN_IDS else name
    if did and not _is_number(call.did) and not call.dials and call.queued_at is None:
        ext = ev.get("Exten", "")
        if ext and _is_number(ext):
            call.did = ext


def _seen_context(call: CallState, ev: dict) -> bool:
    """Remember the dialplan contexts the call's first channel runs in (outbound detection);
    True when one is new (the event must then be kept with the call)."""
    ctx = ev.get("Context", "")
    if ctx and ev.get("Uniqueid") == call.linkedid and len(call.contexts) < 16 and ctx[:80] not in call.contexts:
        call.contexts.add(ctx[:80])
        return True
    return False


def _answer(it, call: CallState, leg: Leg, ts: float) -> None:
    if call.answered_at is None:
        call.answered_at = ts
        call.answer_leg = leg.uniqueid
        call.operator = it.operator_name(leg)
        call.operator_interface = leg.interface
    call.in_queue = False


def _leg(it, call: CallState, uid: str, channel: str, ts: float, kind: str, interface: str = "",
         operator: str = "", queue: str = "") -> Leg:
    leg = call.legs.get(uid)
    if leg is None:
        leg = Leg(uniqueid=uid, channel=channel, kind=kind, interface=interface or interface_of(channel),
                  operator=operator, queue=queue, rung_at=ts, current=uid)
        call.legs[uid] = leg
        it.leg_of[uid] = (call.linkedid, uid)
    else:
        if operator and not leg.operator:
            leg.operator = operator
        if queue and not leg.queue:
            leg.queue = queue
    return leg


# ------------------------------------------------------------------ channels
def on_newchannel(it, ev: dict, ts: float):
    uid, lid, name = ev.get("Uniqueid", ""), ev.get("Linkedid", ""), ev.get("Channel", "")
    if not uid or not lid:
        return None
    it.channels[uid] = Channel(uid, name, lid, ts)
    call = it.calls.get(lid)
    if call is not None and len(call.names) < NAMES_MAX:
        call.names[uid] = name
    if call is None:
        if uid != lid:
            return None          # a channel of a call we never saw start
        call = it.new_call(lid)
        call.inbound, call.started_at = uid, ts
        call.caller_side.add(uid)
        call.did = ev.get("Exten", "") if _is_number(ev.get("Exten", "")) else ""
        call.first_channel, call.first_exten = name, ev.get("Exten", "")
        call.first_context = ev.get("Context", "")
        call.names[uid] = name
        _seen_context(call, ev)
    elif (call.inbound and not call.answered_at and local_twin(name)
          and local_twin(name) == it.channel_name(call.inbound) and name.endswith(";2")
          and _is_number(ev.get("Exten", "")) and len(ev.get("Exten", "").lstrip("+")) >= DID_DIGITS):
        # Local/<DID>@ctx;1 plays the caller; its ;2 half is the inbound leg.
        call.inbound, call.started_at = uid, ts
        call.caller_side.add(uid)
        call.did = ev.get("Exten", "") or call.did
    call.channels.add(uid)
    it.chan_call[uid] = lid
    if uid == call.inbound:
        _caller_info(call, ev)
    return lid


def on_callerid(it, ev: dict, ts: float):
    call = it.call_of(ev)
    if call is None:
        return None
    new_context = _seen_context(call, ev)
    if ev.get("Uniqueid") == call.inbound:
        _caller_info(call, ev)
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
            if leg.ended_at is None:
                leg.ended_at = ts
            if leg.outcome == "ringing":
                leg.outcome = "cancelled" if lcall.ended_at is not None else "no_answer"
            touched.add(lcall.linkedid)
    call = it.calls.get(lid)
    if call is not None:
        call.channels.discard(uid)
        if uid == call.inbound and call.ended_at is None:
            if ev.get("CallerIDNum"):
                _caller_info(call, ev, did=False)
            call.ended_at = ts
            call.in_queue = False
            if vanished:
                call.closed_reason = "vanished"
            it.sync(call, ts)
            if call.talk_since is not None:
                call.talk += ts - call.talk_since
                call.talk_since = None
        if not call.channels:
            call.done = True
        touched.add(call.linkedid)
    for t in touched:
        it.touch(t)
    return lid if call is not None else None


def on_channel_gone(it, ev: dict, ts: float):
    """Synthetic: a channel we knew is missing from CoreShowChannels after a reconnect."""
    return on_hangup(it, ev, ts, vanished=True)


# ------------------------------------------------------------------ variables
def on_varset(it, ev: dict, ts: float):
    var = ev.get("Variable", "")
    if not (var.startswith("CT_") or var in VARS):
        return None
    call = it.call_of(ev)
    if call is None:
        return None
    value = ev.get("Value", "")
    _seen_context(call, ev)
    if var == "MIXMONITOR_FILENAME":
        if value and not call.recording:
            call.recording = value
    elif var == "QUEUESTATUS":
        if ev.get("Uniqueid") in call.caller_side:
            call.queue_status = value.upper()
    else:
        call.ct[var] = value
    return call.linkedid


# ------------------------------------------------------------------ queues
def on_queue_join(it, ev: dict, ts: float):
    call = it.call_of(ev)
    if call is None:
        return None
    uid = ev.get("Uniqueid", "")
    if uid not in call.caller_side:
        # A Local channel between the caller and the queue: its halves are the caller's side.
        call.caller_side.add(uid)
        twin = local_twin(ev.get("Channel", ""))
        twin_uid = it.uid_of_name(twin) if twin else None
        if twin_uid:
            call.caller_side.add(twin_uid)
            it.drop_proxy_leg(call, twin_uid)
    queue = ev.get("Queue", "")
    if call.queued_at is None:
        call.queued_at = ts
    if not call.queue:
        call.queue = queue
    call.in_queue = True
    # Whether the queue had an available member is live knowledge (QueueMember events are not
    # kept with calls): it is written into the event, so a replay of the stored event decides alike.
    if "CTQueueEmpty" not in ev:
        ev["CTQueueEmpty"] = "1" if it.queue_is_empty(queue) else "0"
    call.queue_empty_at_join = ev["CTQueueEmpty"] == "1"
    if uid == call.inbound:
        _caller_info(call, ev)
    return call.linkedid


def on_queue_leave(it, ev: dict, ts: float):
    call = it.call_of(ev)
    if call is None:
        return None
    call.in_queue = False
    if call.answered_at is None and not call.abandoned:
        call.left_queue_unanswered = True
    return call.linkedid


def on_queue_abandon(it, ev: dict, ts: float):
    call = it.call_of(ev)
    if call is None:
        return None
    call.abandoned = True
    return call.linkedid


def on_agent_called(it, ev: dict, ts: float):
    call = it.call_of(ev)
    if call is None:
        return None
    call.agents_called += 1
    _leg(it, call, ev.get("DestUniqueid", ""), ev.get("DestChannel", ""), ts, "queue",
         ev.get("Interface", ""), ev.get("MemberName", ""), ev.get("Queue", ""))
    return call.linkedid


def on_agent_ring_no_answer(it, ev: dict, ts: float):
    call = it.call_of(ev)
    leg = call.legs.get(ev.get("DestUniqueid", "")) if call else None
    if leg is None:
        return None
    if leg.outcome == "ringing":
        leg.outcome = "no_answer"
    if leg.ended_at is None:
        leg.ended_at = ts
    return call.linkedid


def on_agent_connect(it, ev: dict, ts: float):
    call = it.call_of(ev)
    if call is None:
        return None
    leg = _leg(it, call, ev.get("DestUniqueid", ""), ev.get("DestChannel", ""), ts, "queue",
               ev.get("Interface", ""), ev.get("MemberName", ""), ev.get("Queue", ""))
    if leg.answered_at is None:
        leg.answered_at = ts
    leg.outcome = "answered"
    _answer(it, call, leg, ts)
    return call.linkedid


def on_agent_complete(it, ev: dict, ts: float):
    """Cross-check: queue_log's talktime is the time since the queue connected this member
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
            it.cross_check("queue_log talktime", leg, float(ev.get("TalkTime", "")), ts, call.linkedid,
                           got=end - leg.answered_at)
        except ValueError:
            pass
    return call.linkedid


def on_queue_member(it, ev: dict, ts: float):
    it.queue_member(ev, removed=ev.get("Event") == "QueueMemberRemoved")
    return None


def on_queue_entry(it, ev: dict, ts: float):
    """QueueStatus' QueueEntry: a caller waiting in a queue (reconciliation)."""
    call = it.call_of(ev)
    if call is None or call.queued_at is not None:
        return None
    try:
        wait = float(ev.get("Wait", "0") or 0)
    except ValueError:
        wait = 0.0
    call.queued_at = ts - wait
    call.queue = call.queue or ev.get("Queue", "")
    call.in_queue = True
    return call.linkedid


# ------------------------------------------------------------------ CDR, reconciliation
def on_cdr(it, ev: dict, ts: float):
    """Cross-check: an operator channel's own CDR billsec (whole seconds, truncated) against the
    talk time of that operator's leg. A mismatch is counted and logged, never applied.

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
            or any(leg.kind == "transfer" for leg in call.legs.values()):
        return None
    # a Local operator channel's CDR is on its ;2 half; the leg is the ;1 half the queue dialled
    names = {channel, channel[:-2] + ";1"} if channel.endswith(";2") else {channel}
    for leg in call.legs.values():
        if leg.channel in names and leg.answered_at is not None:
            # at the CDR the leg may still be bridged: talk counts up to now (ts)
            talk = leg.talk + (ts - leg.talk_since if leg.talk_since is not None else 0.0)
            span = (leg.ended_at if leg.ended_at is not None else ts) - leg.answered_at
            if span - talk > 1.0:
                continue      # the operator left the caller (consultation, hold): not comparable
            # billsec truncates: talk - billsec lies in [0, 1) when they agree
            it.cross_check("CDR billsec", leg, billsec + 0.5, ts, call.linkedid, got=talk)
    return None


def on_core_show_channel(it, ev: dict, ts: float):
    it.found_channel(ev, ts)
    return ev.get("Linkedid") if ev.get("Linkedid") in it.calls else None


from calltracking.interpret.bridges import (  # noqa: E402  (they use _leg/_answer from here)
    on_attended_transfer, on_blind_transfer, on_bridge_enter, on_bridge_leave, on_bridge_merge,
    on_local_optimization,
)
from calltracking.interpret.dials import on_dial_begin, on_dial_end  # noqa: E402

EVENTTYPE_MAP = {
    "Newchannel": on_newchannel,
    "Newstate": on_callerid,
    "NewCallerid": on_callerid,
    "HangupRequest": on_hangup_request,
    "Hangup": on_hangup,
    "VarSet": on_varset,
    "QueueCallerJoin": on_queue_join,
    "QueueCallerLeave": on_queue_leave,
    "QueueCallerAbandon": on_queue_abandon,
    "AgentCalled": on_agent_called,
    "AgentRingNoAnswer": on_agent_ring_no_answer,
    "AgentConnect": on_agent_connect,
    "AgentComplete": on_agent_complete,
    "DialBegin": on_dial_begin,
    "DialEnd": on_dial_end,
    "BridgeEnter": on_bridge_enter,
    "BridgeLeave": on_bridge_leave,
    "BridgeMerge": on_bridge_merge,
    "LocalOptimizationBegin": on_local_optimization,
    "BlindTransfer": on_blind_transfer,
    "AttendedTransfer": on_attended_transfer,
    "Cdr": on_cdr,
    "QueueMember": on_queue_member,
    "QueueMemberAdded": on_queue_member,
    "QueueMemberRemoved": on_queue_member,
    "QueueMemberStatus": on_queue_member,
    "QueueMemberPause": on_queue_member,
    "QueueEntry": on_queue_entry,
    "CoreShowChannel": on_core_show_channel,
    "CTChannelGone": on_channel_gone,
}

#: Events we know and deliberately skip (not counted as unknown).
IGNORED = frozenset({
    "CEL", "Newexten", "DeviceStateChange", "NewConnectedLine", "LocalBridge", "DialState",
    "SoftHangupRequest", "FullyBooted", "SuccessfulAuth", "OriginateResponse", "AGIExecStart",
    "AGIExecEnd", "BridgeCreate", "BridgeDestroy", "BridgeInfoChannel", "BridgeInfoComplete",
    "LocalOptimizationEnd", "MusicOnHoldStart", "MusicOnHoldStop", "Hold", "Unhold",
    "QueueParams", "QueueStatusComplete", "CoreShowChannelsComplete", "NewAccountCode",
    "ChallengeSent", "RTCPSent", "RTCPReceived", "PeerStatus", "ContactStatus", "Registry",
    "DTMFBegin", "DTMFEnd", "MixMonitorStart", "MixMonitorStop", "UserEvent", "Reload",
    "ChanSpyStart", "ChanSpyStop", "HangupHandlerPush", "HangupHandlerRun", "HangupHandlerPop",
    "InvalidAccountID", "InvalidPassword", "ChallengeResponseFailed", "SessionTimeout",
    "AsyncAGIStart", "AsyncAGIExec", "AsyncAGIEnd", "DeviceStateListComplete", "Status",
    "StatusComplete", "QueueSummary", "QueueSummaryComplete", "AgentLogin", "AgentLogoff",
    "AgentDump", "QueueCallerStatus", "QueueMemberPenalty", "QueueMemberRinginuse",
    "VoicemailPasswordChange", "MessageWaiting", "Shutdown", "LoadAverageLimit", "MemoryLimit",
})
