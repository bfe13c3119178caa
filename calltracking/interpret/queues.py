"""Queue events (part of :data:`.handlers.EVENTTYPE_MAP`): the caller joins and leaves a queue,
its members are rung and one connects; the queues' members as Asterisk reports them.

- ``queued_at`` is the first ``QueueCallerJoin`` (after a reconnect, ``QueueEntry``'s ``Wait``);
- whether the queue had an available member at the join is written into the event
  (``CTQueueEmpty``), so a replay of the stored event decides alike (``no_operators``, see
  :func:`.record.missed_reason`);
- every ``AgentCalled`` opens a ``queue`` leg; ``AgentConnect`` answers the leg and the call
  (:func:`.legs.answer`).
"""
from __future__ import annotations

from calltracking.enums import LegKind, LegOutcome
from calltracking.interpret.channels import caller_info
from calltracking.interpret.legs import add_leg, answer, leg_answered, ring_ended
from calltracking.interpret.names import local_twin


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
        caller_info(call, ev)
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
    add_leg(it, call, ev.get("DestUniqueid", ""), ev.get("DestChannel", ""), ts, LegKind.QUEUE,
            ev.get("Interface", ""), ev.get("MemberName", ""), ev.get("Queue", ""))
    return call.linkedid


def on_agent_ring_no_answer(it, ev: dict, ts: float):
    call = it.call_of(ev)
    leg = call.legs.get(ev.get("DestUniqueid", "")) if call else None
    if leg is None:
        return None
    ring_ended(leg, LegOutcome.NO_ANSWER, ts)
    return call.linkedid


def on_agent_connect(it, ev: dict, ts: float):
    call = it.call_of(ev)
    if call is None:
        return None
    leg = add_leg(it, call, ev.get("DestUniqueid", ""), ev.get("DestChannel", ""), ts, LegKind.QUEUE,
                  ev.get("Interface", ""), ev.get("MemberName", ""), ev.get("Queue", ""))
    leg_answered(leg, ts)
    answer(call, leg, ts)
    return call.linkedid


def on_queue_member(it, ev: dict, ts: float):
    it.queue_member(ev, removed=ev.get("Event") == "QueueMemberRemoved")
    return None


def on_queue_entry(it, ev: dict, ts: float):
    """QueueStatus' QueueEntry: a caller waiting in a queue (reconciliation): queued ``Wait``
    seconds before ``ts``."""
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
