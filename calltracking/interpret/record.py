"""The call record: every figure derived from a call, each defined once, here. Pure (no I/O).

The interpreter (:mod:`.interpreter` and its handlers) measures moments and clocks from the AMI
events; everything the record shows is derived from them by the functions below. Times are UTC
epoch floats from the events' ``Timestamp`` (datetimes work too: :mod:`calltracking.demo` uses
these rules on its made-up calls); durations are seconds rounded to the millisecond (:func:`r3`).

The moments (fields of :class:`~.state.CallState`):

- ``started_at``  the inbound channel was created (the call's first channel, or the ``;2`` half
  of a ``Local/<DID>@...`` pair whose ``;1`` half plays the caller);
- ``queued_at``   the caller joined its first queue (``QueueCallerJoin``);
- ``answered_at`` the first operator answered (:func:`.legs.answer`: ``AgentConnect``, outside
  a queue a ``DialEnd ANSWER`` or the first bridge with a party nobody saw being dialled);
- ``ended_at``    the inbound channel (or the channel that took its place) hung up.

After a reconnect, moments nobody saw are estimated from evidence (:mod:`.reconcile`,
:mod:`.gaps`) and then derived from here alike.

The talk clocks (``talk``, ``talk_since``, :func:`run_talk_clock`): the call's runs while the
caller's side (the inbound channel, Local halves in front of it, channels that took its place)
is in a bridge with at least one party (:func:`.names.is_party`: not an announcer, recorder or
spy); a leg's runs while the leg's channel is one of those parties. The interpreter starts and
stops them after every bridge change (``Interpreter.sync``).
"""
from __future__ import annotations

import datetime as dt
from typing import Optional

from calltracking.enums import CallStatus, MissedReason
from calltracking.interpret.names import interface_of, name_of_interface

#: ``QUEUESTATUS`` values meaning nobody could take the call.
NO_OPERATOR_STATUSES = frozenset({"JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL", "LEAVEUNAVAIL"})
#: ``closed_reason`` of a call whose end was not seen (its channel was gone after a reconnect).
VANISHED = "vanished"
#: ``CT_RECORD`` values asking for the call to be recorded.
RECORD_YES = ("yes", "1", "true")


def r3(x) -> Optional[float]:
    """A duration in seconds rounded to the millisecond (a ``timedelta`` counts as its seconds)."""
    if x is None:
        return None
    if isinstance(x, dt.timedelta):
        x = x.total_seconds()
    return round(x + 0.0, 3)


# ------------------------------------------------------------------ the talk clock
def run_talk_clock(holder, talking: bool, ts: float) -> None:
    """Start (``talking``) or stop the talk clock of a call or a leg at ``ts``: a stop adds the
    stretch since the start to ``holder.talk``; starting a running clock, or stopping a stopped
    one, changes nothing."""
    if talking and holder.talk_since is None:
        holder.talk_since = ts
    elif not talking and holder.talk_since is not None:
        holder.talk += ts - holder.talk_since
        holder.talk_since = None


def talk_until(holder, at: Optional[float]) -> float:
    """The talk clock read at ``at``: the stretches summed, plus the running one up to ``at``
    (never negative); without ``at``, the stretches already closed."""
    t = holder.talk
    if holder.talk_since is not None and at is not None:
        t += max(0.0, at - holder.talk_since)
    return t


# ------------------------------------------------------------------ the call's figures
def status(answered_at, ended_at) -> CallStatus:
    """``in_progress`` until the inbound channel hangs up; then ``answered`` when an operator
    answered (``answered_at`` set), else ``missed``."""
    if ended_at is None:
        return CallStatus.IN_PROGRESS
    return CallStatus.ANSWERED if answered_at is not None else CallStatus.MISSED


def wait_seconds(started_at, answered_at, ended_at) -> Optional[float]:
    """Wait: from the inbound channel's creation (``started_at``) until the answer; for a call
    nobody answered, until it ended. Counts the IVR, the queue and every ring. None while the
    call is neither answered nor ended, or when its start is unknown."""
    if started_at is None:
        return None
    if answered_at is not None:
        return r3(answered_at - started_at)
    if ended_at is not None:
        return r3(ended_at - started_at)
    return None


def queue_wait_seconds(queued_at, answered_at) -> Optional[float]:
    """Queue wait: from joining the first queue (``queued_at``) until the answer. None when the
    call never queued, was not answered, or was answered before it queued (a ``Dial()`` first)."""
    if answered_at is None or queued_at is None or answered_at < queued_at:
        return None
    return r3(answered_at - queued_at)


def talk_seconds(talk: float, answered_at, ended_at) -> Optional[float]:
    """Talk: the time the caller's side spent in a bridge with at least one party, summed over
    every stretch; it goes on across transfers (the caller leaves one bridge and enters
    another) and stops while the caller is alone (a consultation, music on hold outside a
    bridge). ``talk``: the call's talk clock read at the end (:func:`talk_until`), or so far
    for a call in progress. None until answered; 0 for a call that ended unanswered."""
    if answered_at is None:
        return 0.0 if ended_at is not None else None
    return r3(talk)


def hold_seconds(answered_at, ended_at, talk: Optional[float]) -> Optional[float]:
    """Hold: the rest of the answered part, ``ended - answered - talk`` (``talk`` as given by
    :func:`talk_seconds`): the caller alone while the operator consults or transfers. Rounded
    so that talk + hold = ended - answered exactly, never negative. None until the call ends;
    0 for a call that ended unanswered."""
    if ended_at is None:
        return None
    if answered_at is None:
        return 0.0
    return max(0.0, r3(r3(ended_at - answered_at) - talk))


def missed_reason(call) -> Optional[MissedReason]:
    """Why an ended, unanswered call was missed; None for a call answered or in progress, and
    for a call closed ``vanished`` (its end was not seen, so nothing is known of why). The
    first rule that applies:

    1. ``no_operators``: ``Queue()`` returned ``JOINEMPTY``, ``LEAVEEMPTY``, ``JOINUNAVAIL`` or
       ``LEAVEUNAVAIL`` (``QUEUESTATUS``), or the caller joined a queue without an available
       member (``CTQueueEmpty``, see :func:`.queues.on_queue_join`) and no member was rung;
    2. ``timeout``: ``QUEUESTATUS=TIMEOUT``, ``Queue()``'s own timeout (Asterisk 22 sends
       ``QueueCallerAbandon`` there too; queue_log says ``EXITWITHTIMEOUT``);
    3. ``abandoned``: the caller hung up while queued (``QueueCallerAbandon``);
    4. ``timeout``: the caller left the queue unanswered (``QueueCallerLeave``);
    5. the last ``Dial()`` of the caller's side outside a queue: ``BUSY`` is ``busy``,
       ``CHANUNAVAIL`` or ``CONGESTION`` ``failed``, ``NOANSWER`` ``timeout``;
    6. ``abandoned``: that ``Dial()`` was cancelled (``CANCEL``: the caller hung up while it
       rang), or the call had queued;
    7. ``abandoned`` when the caller hung up (``HangupRequest`` on the inbound channel: the far
       end asked), else ``failed`` (Asterisk ended the call).
    """
    if call.ended_at is None or call.answered_at is not None or call.closed_reason == VANISHED:
        return None
    qs = call.queue_status
    if qs in NO_OPERATOR_STATUSES:
        return MissedReason.NO_OPERATORS
    if call.queued_at is not None and call.agents_called == 0 and call.queue_empty_at_join:
        return MissedReason.NO_OPERATORS
    if qs == "TIMEOUT":
        return MissedReason.TIMEOUT
    if call.abandoned:
        return MissedReason.ABANDONED
    if call.left_queue_unanswered:
        return MissedReason.TIMEOUT
    ds = call.dial_status
    if ds == "BUSY":
        return MissedReason.BUSY
    if ds in ("CHANUNAVAIL", "CONGESTION"):
        return MissedReason.FAILED
    if ds == "NOANSWER":
        return MissedReason.TIMEOUT
    if ds == "CANCEL" or call.queued_at is not None:
        return MissedReason.ABANDONED
    return MissedReason.ABANDONED if call.caller_hung_up else MissedReason.FAILED


def recorded(ct: dict, recording_file: str) -> bool:
    """Whether the call is recorded: the dialplan asked (``CT_RECORD`` yes/1/true) or
    ``MixMonitor`` named a file (``MIXMONITOR_FILENAME``)."""
    return ct.get("CT_RECORD", "").lower() in RECORD_YES or bool(recording_file)


# ------------------------------------------------------------------ a leg's figures
def operator_name(leg) -> str:
    """The operator a leg names before registered operators are looked up: the queue member's
    name, else the extension of the interface rung (``Local/102@operators/n`` -> ``102``)."""
    return leg.operator or name_of_interface(leg.interface)


def ring_seconds(rung_at, answered_at, ended_at) -> Optional[float]:
    """Ring time of a leg: from the ring's start until it was answered, else until the ring
    ended (no answer, busy, cancelled). None while it still rings."""
    end = answered_at if answered_at is not None else ended_at
    if end is None or rung_at is None:
        return None
    return r3(end - rung_at)


def leg_talk_seconds(talk: float, answered_at) -> Optional[float]:
    """Talk of a leg: the time the leg's channel (or the one that took its place) was in a bridge
    with the caller's side; ``talk``: the leg's talk clock (stretches closed so far). None for
    a leg never answered that never talked."""
    return r3(talk) if answered_at is not None or talk else None


def leg_record(leg, phone: str = "") -> dict:
    """A leg as stored (``call_legs``). ``phone``: the channel that talked for the leg
    (:meth:`~.state.CallState.talker`); its interface is the leg's ``interface``, the route rung
    (queue member, ``Dial()`` interface) is ``route``."""
    iface = leg.interface if not phone or phone == leg.channel else interface_of(phone)
    return {
        "uniqueid": leg.uniqueid, "channel": leg.channel[:200], "kind": leg.kind,
        "interface": iface[:200], "route": leg.interface[:200], "phone": (phone or leg.channel)[:200],
        "operator_name": operator_name(leg)[:200],
        "queue": leg.queue[:80], "rung_at": leg.rung_at, "answered_at": leg.answered_at,
        "ended_at": leg.ended_at,
        "ring_seconds": ring_seconds(leg.rung_at, leg.answered_at, leg.ended_at),
        "talk_seconds": leg_talk_seconds(leg.talk, leg.answered_at),
        "outcome": leg.outcome,
    }


# ------------------------------------------------------------------ the whole record
def call_record(call) -> dict:
    """The call record (``calls`` row fields and the legs) of a :class:`~.state.CallState`.

    The operator who answered is the one of the leg that answered first (``answer_leg``): the
    phone that talked for it names the operator's interface, the route rung is
    ``operator_route``; without such a leg (a party bridged after a reconnect), the operator
    noted at the answer."""
    answered, ended, started = call.answered_at, call.ended_at, call.started_at
    talk = talk_seconds(talk_until(call, ended), answered, ended)
    legs = [leg_record(leg, call.talker(leg)) for leg in call.legs.values()]
    first = next((r for r in legs if r["uniqueid"] == call.answer_leg), None)
    return {
        "linkedid": call.linkedid, "did": call.did, "caller_number": call.caller_number,
        "caller_name": call.caller_name, "queue": call.queue,
        "started_at": started, "queued_at": call.queued_at, "answered_at": answered, "ended_at": ended,
        "wait_seconds": wait_seconds(started, answered, ended),
        "queue_wait_seconds": queue_wait_seconds(call.queued_at, answered),
        "talk_seconds": talk, "hold_seconds": hold_seconds(answered, ended, talk),
        "status": status(answered, ended), "missed_reason": missed_reason(call),
        "operator_name": first["operator_name"] if first else call.operator,
        "operator_interface": first["interface"] if first else call.operator_interface,
        "operator_route": first["route"] if first else call.operator_interface,
        "recording_file": call.recording, "record": recorded(call.ct, call.recording),
        "ct": dict(call.ct), "closed_reason": call.closed_reason, "target": call.ct.get("CT_TARGET", ""),
        "legs": legs,
    }
