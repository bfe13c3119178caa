"""In-memory state of live calls, channels and bridges, and the call record they give.

Everything here is pure: no I/O, no clock. Times are UTC epoch floats taken
from the AMI ``Timestamp`` header (or the receive time when it is missing).

Definitions (DESIGN.md, "Call record contract"):

- ``started_at``  the inbound channel was created;
- ``queued_at``   the caller joined the first queue;
- ``answered_at`` the first operator answered (AgentConnect, a direct Dial's
  DialEnd ANSWER, or the first bridge with an operator);
- ``ended_at``    the inbound channel hung up;
- talk = time the caller side was bridged with at least one other party,
  summed (continues across transfers); hold = ``ended - answered - talk``.

A leg is named by the phone that really talked: the deepest channel that answered
along the leg's chain of dials (a queue member's Local route dialling the phone, the
phone forwarding to another) or the channel that took the leg's place when a Local
channel optimised away (:meth:`CallState.talker`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

#: QUEUESTATUS values meaning nobody could take the call.
NO_OPERATOR_STATUSES = frozenset({"JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL", "LEAVEUNAVAIL"})
#: QueueMemberStatus / QueueMember ``Status`` values of a member who cannot take calls.
MEMBER_GONE = frozenset({"4", "5"})   # AST_DEVICE_INVALID, AST_DEVICE_UNAVAILABLE
DIAL_OUTCOME = {"ANSWER": "answered", "NOANSWER": "no_answer", "BUSY": "busy", "CANCEL": "cancelled",
                "CHANUNAVAIL": "failed", "CONGESTION": "failed", "DONTCALL": "failed",
                "TORTURE": "failed", "INVALIDARGS": "failed"}


def r3(x: Optional[float]) -> Optional[float]:
    return None if x is None else round(x + 0.0, 3)


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
    kind: str = "queue"           # queue | dial | transfer | pickup
    interface: str = ""
    operator: str = ""            # member name / operator name shown
    queue: str = ""
    rung_at: Optional[float] = None
    answered_at: Optional[float] = None
    ended_at: Optional[float] = None
    outcome: str = "ringing"
    talk: float = 0.0
    talk_since: Optional[float] = None
    current: str = ""             # uniqueid of the channel carrying the leg now (Local optimisation)

    def record(self, phone: str = "") -> dict:
        """``phone``: the channel that talked (:meth:`CallState.talker`); its interface is the
        leg's ``interface``, the route rung (queue member, Dial() interface) is ``route``."""
        ring_end = self.answered_at if self.answered_at is not None else self.ended_at
        iface = self.interface if not phone or phone == self.channel else interface_of(phone)
        return {
            "uniqueid": self.uniqueid, "channel": self.channel[:200], "kind": self.kind,
            "interface": iface[:200], "route": self.interface[:200], "phone": (phone or self.channel)[:200],
            "operator_name": (self.operator or name_of_interface(self.interface))[:200],
            "queue": self.queue[:80], "rung_at": self.rung_at, "answered_at": self.answered_at,
            "ended_at": self.ended_at,
            "ring_seconds": r3(ring_end - self.rung_at) if ring_end is not None and self.rung_at is not None else None,
            "talk_seconds": r3(self.talk) if self.answered_at is not None or self.talk else None,
            "outcome": self.outcome,
        }


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

    # ------------------------------------------------------------------ record
    @property
    def finished(self) -> bool:
        return self.ended_at is not None

    def status(self) -> str:
        if self.ended_at is None:
            return "in_progress"
        return "answered" if self.answered_at is not None else "missed"

    def missed_reason(self) -> Optional[str]:
        if self.ended_at is None or self.answered_at is not None:
            return None
        if self.closed_reason == "vanished":
            return None
        qs = self.queue_status
        if qs in NO_OPERATOR_STATUSES:
            return "no_operators"
        if self.queued_at is not None and self.agents_called == 0 and self.queue_empty_at_join:
            return "no_operators"
        if qs == "TIMEOUT":
            # Queue()'s own timeout: Asterisk 22 sends QueueCallerAbandon here too (queue_log
            # says EXITWITHTIMEOUT); QUEUESTATUS, set when Queue() returns, tells them apart.
            return "timeout"
        if self.abandoned:
            return "abandoned"
        if self.left_queue_unanswered:
            return "timeout"
        ds = self.dial_status
        if ds == "BUSY":
            return "busy"
        if ds in ("CHANUNAVAIL", "CONGESTION"):
            return "failed"
        if ds == "NOANSWER":
            return "timeout"
        if ds == "CANCEL" or self.queued_at is not None:
            return "abandoned"
        return "abandoned" if self.caller_hung_up else "failed"

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

    def talk_total(self, at: Optional[float] = None) -> float:
        t = self.talk
        if self.talk_since is not None and at is not None:
            t += max(0.0, at - self.talk_since)
        return t

    def record(self) -> dict:
        """The call-record fields (times as epoch floats, durations rounded to ms)."""
        answered, ended, started = self.answered_at, self.ended_at, self.started_at
        wait = None
        if started is not None:
            if answered is not None:
                wait = r3(answered - started)
            elif ended is not None:
                wait = r3(ended - started)
        talk = hold = None
        if ended is not None:
            if answered is not None:
                talk = r3(self.talk_total(ended))
                # Rounded parts that add up exactly: talk + hold = ended - answered.
                hold = max(0.0, r3(r3(ended - answered) - talk))
            else:
                talk, hold = 0.0, 0.0
        elif answered is not None:
            talk = r3(self.talk)
        legs = [leg.record(self.talker(leg)) for leg in self.legs.values()]
        first = next((r for r in legs if r["uniqueid"] == self.answer_leg), None)
        return {
            "linkedid": self.linkedid, "did": self.did, "caller_number": self.caller_number,
            "caller_name": self.caller_name, "queue": self.queue,
            "started_at": started, "queued_at": self.queued_at, "answered_at": answered,
            "ended_at": ended, "wait_seconds": wait,
            "queue_wait_seconds": r3(answered - self.queued_at)
            if answered is not None and self.queued_at is not None and answered >= self.queued_at else None,
            "talk_seconds": talk, "hold_seconds": hold, "status": self.status(),
            "missed_reason": self.missed_reason(),
            "operator_name": first["operator_name"] if first else self.operator,
            "operator_interface": first["interface"] if first else self.operator_interface,
            "operator_route": first["route"] if first else self.operator_interface,
            "recording_file": self.recording,
            "record": self.ct.get("CT_RECORD", "").lower() in ("yes", "1", "true") or bool(self.recording),
            "ct": dict(self.ct), "closed_reason": self.closed_reason, "target": self.ct.get("CT_TARGET", ""),
            "legs": legs,
        }


@dataclass
class QueueMember:
    interface: str
    name: str
    status: str = "1"
    paused: bool = False

    @property
    def available(self) -> bool:
        return self.status not in MEMBER_GONE and not self.paused


def local_twin(name: str) -> Optional[str]:
    """``Local/x@ctx-0001;1`` -> ``Local/x@ctx-0001;2`` and back; None for other channels."""
    if name.startswith("Local/") and name[-2:] in (";1", ";2"):
        return name[:-1] + ("2" if name[-1] == "1" else "1")
    return None


def interface_of(channel: str) -> str:
    """``PJSIP/101-0000002a`` -> ``PJSIP/101``; ``Local/101@operators-00000001;1`` -> ``Local/101@operators``."""
    base = channel
    if base.endswith((";1", ";2")):
        base = base[:-2]
    head, sep, tail = base.rpartition("-")
    if sep and tail and all(c in "0123456789abcdef" for c in tail.lower()) and "/" in head:
        return head
    return base


def base_interface(interface: str) -> str:
    """An interface as operators are matched: channel options dropped (``Local/102@operators/n``
    or ``/nj`` -> ``Local/102@operators``, ``PJSIP/101/n`` -> ``PJSIP/101``), blanks trimmed."""
    iface = interface.strip()
    tech, sep, rest = iface.partition("/")
    head, sep2, opts = rest.partition("/")
    if sep and sep2 and opts.isalpha():
        return f"{tech}/{head}"
    return iface


def name_of_interface(interface: str) -> str:
    """``Local/102@operators/n`` or ``PJSIP/102`` -> ``102``."""
    res = interface.split("/", 1)[1] if "/" in interface else interface
    return res.split("@", 1)[0].split("/", 1)[0]
