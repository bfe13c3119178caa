"""In-memory state of live calls, channels and bridges. Pure: no I/O, no clock.

:class:`CallState` holds what the events said about one call (keyed by its ``Linkedid``), a
:class:`Leg` one operator channel the caller's side rang, a :class:`Channel` one live channel.
What the record shows is derived from them in :mod:`.record` (the definitions: wait, talk,
hold, status, missed reason ...); how legs are opened and the call answered is :mod:`.legs`.

A leg is named by the phone that really talked: the deepest channel that answered along the
leg's chain of dials (a queue member's Local route dialling the phone, the phone forwarding to
another) or the channel that took the leg's place when a Local channel optimised away
(:meth:`CallState.talker`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from calltracking.enums import LegKind, LegOutcome
from calltracking.interpret.names import local_twin
from calltracking.interpret.record import call_record, leg_record

#: QueueMemberStatus / QueueMember ``Status`` values of a member who cannot take calls.
MEMBER_GONE = frozenset({"4", "5"})   # AST_DEVICE_INVALID, AST_DEVICE_UNAVAILABLE


@dataclass
class Channel:
    uniqueid: str
    name: str
    linkedid: str
    created_at: Optional[float] = None
    bridge: Optional[str] = None
    hungup: bool = False


@dataclass
class Leg:
    uniqueid: str                 # the uniqueid of the operator channel first rung
    channel: str                  # its name
    kind: str = LegKind.QUEUE     # how it was rung (see :mod:`.legs`)
    interface: str = ""
    operator: str = ""            # member name / operator name shown
    queue: str = ""
    rung_at: Optional[float] = None
    answered_at: Optional[float] = None
    ended_at: Optional[float] = None
    outcome: str = LegOutcome.RINGING
    talk: float = 0.0
    talk_since: Optional[float] = None
    current: str = ""             # uniqueid of the channel carrying the leg now (Local optimisation)

    def record(self, phone: str = "") -> dict:
        """The leg as stored (:func:`.record.leg_record`)."""
        return leg_record(self, phone)


@dataclass
class CallState:
    linkedid: str
    inbound: str = ""                     # uniqueid of the inbound (caller) channel
    caller_side: set = field(default_factory=set)
    heirs: set = field(default_factory=set)             # channels that took the inbound one's place
    channels: set = field(default_factory=set)          # live uniqueids of this linkedid
    did: str = ""
    caller_number: str = ""
    caller_name: str = ""
    started_at: Optional[float] = None
    queued_at: Optional[float] = None
    answered_at: Optional[float] = None
    ended_at: Optional[float] = None
    last_event_at: Optional[float] = None
    queue: str = ""
    in_queue: bool = False
    queue_empty_at_join: bool = False
    left_queue_unanswered: bool = False
    abandoned: bool = False
    agents_called: int = 0
    queue_status: str = ""
    dial_status: str = ""
    caller_hung_up: bool = False          # HangupRequest on the inbound channel: the far end hung up
    answer_leg: str = ""                  # leg uniqueid that answered first
    operator: str = ""
    operator_interface: str = ""
    talk: float = 0.0
    talk_since: Optional[float] = None
    legs: dict = field(default_factory=dict)            # uniqueid -> Leg
    ct: dict = field(default_factory=dict)              # CT_* variables
    recording: str = ""
    closed_reason: str = ""
    done: bool = False
    seen: set = field(default_factory=set)              # dedupe keys of events applied
    cdr_billsec: dict = field(default_factory=dict)     # uniqueid -> CDR billable seconds
    # The channel that created the call (Uniqueid == Linkedid), for telling outbound calls
    # apart (see :mod:`.outbound`): its name, dialplan context and extension when created,
    # every context it was seen in, and what the caller side dialled.
    first_channel: str = ""
    first_context: str = ""
    first_exten: str = ""
    contexts: set = field(default_factory=set)
    dials: dict = field(default_factory=dict)           # dest uniqueid -> (DialString, DestCallerIDNum, Exten)
    # Every Dial() made by a channel of the call (src uniqueid -> {dest uniqueid: answered}) and
    # the channels' names: the chains that lead from a leg to the phone that talked.
    graph: dict = field(default_factory=dict)
    names: dict = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.ended_at is not None

    def record(self) -> dict:
        """The call record (:func:`.record.call_record`: the definitions of every figure)."""
        return call_record(self)

    def deepest_answer(self, start: str, skip: frozenset = frozenset()) -> tuple[str, int]:
        """(uniqueid, depth) of the deepest channel answered along the dials from ``start``
        (a Local channel's ``;2`` half continues its ``;1``), not walking through ``skip``;
        ``(start, 0)`` when none answered."""
        by_name = {name: uid for uid, name in self.names.items()}
        best, depth = start, 0
        seen = {start} | set(skip)
        todo = [(start, 0)]
        while todo:
            uid, d = todo.pop()
            twin = by_name.get(local_twin(self.names.get(uid, "")) or "")
            for src in (uid, twin if twin not in skip else None):
                for dest, answered in self.graph.get(src, {}).items() if src else ():
                    if answered and dest not in seen:
                        seen.add(dest)
                        todo.append((dest, d + 1))
                        if d + 1 > depth and dest in self.names:
                            best, depth = dest, d + 1
        return best, depth

    def talker(self, leg: Leg) -> str:
        """Name of the channel that talked for ``leg``: the deepest answered dial along its chain,
        else the channel that took the leg's place (Local optimisation), else the leg's channel."""
        uid, depth = self.deepest_answer(leg.uniqueid)
        if depth:
            return self.names[uid]
        if leg.current and leg.current != leg.uniqueid and leg.current in self.names:
            return self.names[leg.current]
        return leg.channel


@dataclass
class QueueMember:
    interface: str
    name: str
    status: str = "1"
    paused: bool = False

    @property
    def available(self) -> bool:
        return self.status not in MEMBER_GONE and not self.paused
