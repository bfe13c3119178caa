"""Legs and the answer: which operator channels were rung, how each ring ended, who answered.

A *leg* is one operator channel the caller's side rang or met (:class:`~.state.Leg`). Its kind:

- ``queue``: rung by ``Queue()`` (``AgentCalled``), or by a ``Dial()`` while the caller waits
  in a queue;
- ``dial``: rung by a ``Dial()`` of the caller's side outside a queue, before the answer;
- ``transfer``: dialled after the answer, an attended transfer's target, or a party that joined
  the answered caller's bridge without being dialled by the caller's side;
- ``pickup``: a party that joined the caller's bridge before any answer without being dialled
  (call pickup).

Its outcome is ``ringing`` until the ring ends: ``answered`` (``AgentConnect``, ``DialEnd
ANSWER``, bridged as a transfer target or pickup), else the first end seen: ``no_answer``
(``AgentRingNoAnswer``, ``DialEnd NOANSWER``, or its channel hung up while the call went on),
``cancelled`` (hung up ringing after the caller's end, or ``DialEnd CANCEL``), ``busy``,
``failed`` (:data:`DIAL_OUTCOME`).

The call is answered (:func:`answer`) by the first leg answered by ``AgentConnect``; outside a
queue also by a ``DialEnd ANSWER`` or the first party bridged with the caller.

Every ``Dial()`` made by a channel of the call is kept in the call's dial graph (:func:`add_dial`),
which leads from a leg to the phone that really talked (:meth:`~.state.CallState.talker`).
"""
from __future__ import annotations

from calltracking.enums import LegKind, LegOutcome
from calltracking.interpret.names import interface_of
from calltracking.interpret.record import operator_name
from calltracking.interpret.state import CallState, Leg

#: Bounds of the per-call dial graph and channel names (a call has a handful of each).
GRAPH_MAX, NAMES_MAX = 64, 128
#: Dialplan contexts remembered per call (outbound detection), and their length.
CONTEXTS_MAX, CONTEXT_CHARS = 16, 80
#: A leg's outcome by ``DialEnd``'s ``DialStatus`` (anything else not answered is ``failed``).
DIAL_OUTCOME = {"ANSWER": LegOutcome.ANSWERED, "NOANSWER": LegOutcome.NO_ANSWER, "BUSY": LegOutcome.BUSY,
                "CANCEL": LegOutcome.CANCELLED, "CHANUNAVAIL": LegOutcome.FAILED,
                "CONGESTION": LegOutcome.FAILED, "DONTCALL": LegOutcome.FAILED,
                "TORTURE": LegOutcome.FAILED, "INVALIDARGS": LegOutcome.FAILED}


def add_leg(it, call: CallState, uid: str, channel: str, ts: float, kind: str, interface: str = "",
            operator: str = "", queue: str = "") -> Leg:
    """The leg of channel ``uid``, rung at ``ts``: created the first time (its interface read from
    the channel's name when none is given), else the existing one, given the operator's and the
    queue's name when it had none."""
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


def dialled_kind(call: CallState) -> LegKind:
    """The kind of a leg the caller's side dials now."""
    if call.in_queue:
        return LegKind.QUEUE
    return LegKind.TRANSFER if call.answered_at is not None else LegKind.DIAL


def bridged_kind(call: CallState) -> LegKind:
    """The kind of a party nobody saw being dialled that joins the caller's bridge now."""
    return LegKind.TRANSFER if call.answered_at is not None else LegKind.PICKUP


def leg_answered(leg: Leg, ts: float) -> None:
    """The leg's channel answered at ``ts`` (the first answer counts)."""
    if leg.answered_at is None:
        leg.answered_at = ts
    leg.outcome = LegOutcome.ANSWERED


def ring_ended(leg: Leg, outcome: str, ts: float) -> None:
    """The leg stopped at ``ts``: a leg still ringing takes ``outcome``; the first end counts."""
    if leg.outcome == LegOutcome.RINGING:
        leg.outcome = outcome
    if leg.ended_at is None:
        leg.ended_at = ts


def hung_up_outcome(call: CallState) -> LegOutcome:
    """The outcome of a leg whose channel hung up while ringing: ``cancelled`` once the call has
    ended (the caller gave up), else ``no_answer`` (the queue or the dialplan moved on)."""
    return LegOutcome.CANCELLED if call.ended_at is not None else LegOutcome.NO_ANSWER


def answer(call: CallState, leg: Leg, ts: float) -> None:
    """``leg`` answered the call at ``ts``: the first answer sets the call's answer time, its
    answering leg and operator; any answer ends the caller's wait in the queue."""
    if call.answered_at is None:
        call.answered_at = ts
        call.answer_leg = leg.uniqueid
        call.operator = operator_name(leg)
        call.operator_interface = leg.interface
    call.in_queue = False


def add_dial(call: CallState, src: str, dest: str, answered=None) -> bool:
    """Record a ``Dial()`` from ``src`` to ``dest`` in the call's dial graph (``answered``
    True/False once known); False when there is no ``dest`` or the graph is full."""
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


def name_channel(call: CallState, uid: str, name: str) -> None:
    """Remember a channel's name with the call (the dial graph's nodes), up to :data:`NAMES_MAX`."""
    if len(call.names) < NAMES_MAX:
        call.names[uid] = name


def seen_context(call: CallState, ev: dict) -> bool:
    """Remember the dialplan contexts the call's first channel runs in (outbound detection);
    True when one is new (the event must then be kept with the call)."""
    ctx = ev.get("Context", "")
    if ctx and ev.get("Uniqueid") == call.linkedid and len(call.contexts) < CONTEXTS_MAX \
            and ctx[:CONTEXT_CHARS] not in call.contexts:
        call.contexts.add(ctx[:CONTEXT_CHARS])
        return True
    return False
