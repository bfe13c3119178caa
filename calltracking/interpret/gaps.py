"""A gap and what stays estimated after it. Pure (no I/O).

A *gap* is a time the listener did not hear Asterisk (see :mod:`.reconcile` for how the calls
are brought in line afterwards). What it could not see is placed inside a :class:`Window` of
time that evidence narrows; the time applied is the window's middle, so the error is at most
half its width: 0.5 s for a window of whole seconds. What stays estimated is kept per call
(:class:`Gap`, carried by the synthetic ``CTGap`` event so a replay rebuilds it) until later
events narrow it further (:func:`before`):

- ``AgentComplete`` (``TalkTime``, ``HoldTime``: whole seconds since the connect second)
  moves the answer and the queue join;
- the operator's own ``Cdr`` (``BillableSeconds`` up to its hang-up) moves the answer.

Moving the answer moves the talk clocks and the leg's answer with it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from calltracking.interpret.names import base_interface, interface_of, local_twin, name_of_interface

#: Tolerance on clock reads and whole-second boundaries (seconds).
EPS = 0.05
#: Sentinel of :func:`before`: drop the event.
SKIP = object()


def stamp(x: float) -> str:
    """A time as an event's ``Timestamp`` (microseconds, as Asterisk writes it)."""
    return f"{x:.6f}"


def as_read(x: float) -> float:
    """A time as it reads back from an event's ``Timestamp`` (so equality tests hold)."""
    return float(stamp(x))


def number(text) -> Optional[float]:
    """A header's value as a number, or None."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def hms(text) -> Optional[float]:
    """CoreShowChannel's ``Duration`` (``HH:MM:SS``, whole seconds) in seconds, or None."""
    try:
        h, m, s = (int(x) for x in str(text).split(":"))
        return float(h * 3600 + m * 60 + s)
    except ValueError:
        return None


@dataclass
class Window:
    """Where an unseen moment lies: [lo, hi]."""
    lo: float
    hi: float

    def narrow(self, lo: float, hi: float) -> bool:
        """Intersect with [lo, hi]; an interval that does not meet this one is ignored (False)."""
        nlo, nhi = max(self.lo, lo), min(self.hi, hi)
        if nlo > nhi:
            return False
        self.lo, self.hi = nlo, nhi
        return True

    @property
    def mid(self) -> float:
        return as_read((self.lo + self.hi) / 2)


def second(at: float) -> tuple[float, float]:
    """The window of a moment logged as whole second ``at`` (time(NULL))."""
    return at - EPS, at + 1 + EPS


@dataclass
class Gap:
    """What is still estimated about one live call after a gap (interpreter state)."""
    lost: float
    back: float
    strangers: set = field(default_factory=set)   # bridged parties that are no leg
    answer: Optional[Window] = None
    answer_at: Optional[float] = None               # the answer time applied
    leg: str = ""                                   # the leg whose answer it is
    call_talk: bool = False                         # the call's talk clock started at answer_at
    leg_talk: bool = False
    queued: Optional[Window] = None
    queued_at: Optional[float] = None
    ended: dict = field(default_factory=dict)       # uniqueid -> its Hangup time (a Cdr's end)


# ------------------------------------------------------------------ registered operators
@dataclass
class Operator:
    interface: str                  # as registered (a queue member's ``Local/101@ops/n``)
    name: str
    queues: set = field(default_factory=set)


class Registry:
    """Operators known to Asterisk (queue members) or to us (active operators' interfaces), by
    interface as operators are matched (:func:`.names.base_interface`) and by name."""

    def __init__(self, queues: dict, operators: Optional[dict] = None):
        self.by_key: dict[str, Operator] = {}
        for queue, members in queues.items():
            for iface, m in members.items():
                op = self.by_key.setdefault(base_interface(iface), Operator(iface, m.name or name_of_interface(iface)))
                op.queues.add(queue)
        for iface, name in (operators or {}).items():
            self.by_key.setdefault(base_interface(iface), Operator(iface, name or name_of_interface(iface)))
        self.by_name = {op.name: op for op in self.by_key.values()}

    def of_channel(self, channel: str) -> Optional[Operator]:
        return self.by_key.get(base_interface(interface_of(channel))) if channel else None


@dataclass
class Away:
    """A gap being reconciled: the interpreter, the last moment the calls' state was known
    (``lost``), Asterisk's clock at the snapshot (``back``) and the operators known (``reg``)."""
    it: object
    lost: float
    back: float
    reg: Registry


# ------------------------------------------------------------------ the synthetic events
class Timeline:
    """Synthetic events of one call: adopted channels first (in Uniqueid order), then the rest in
    time order; events at the same time in the order of their ``stage`` (1 queue join, 2 ring,
    3 ring end or queue exit, 4 bridge leave, 5 answer, 6 bridge enter, 7-10 hang-ups), then
    as added."""

    def __init__(self):
        self.channels: list[dict] = []
        self.items: list = []

    def add(self, at: float, stage: int, ev: dict) -> None:
        ev["Timestamp"] = stamp(at)
        if stage == 0:
            self.channels.append(ev)
        else:
            self.items.append((as_read(at), stage, len(self.items), ev))

    def events(self) -> list[dict]:
        return [ev for *_, ev in sorted(self.items, key=lambda x: x[:3])]


# ------------------------------------------------------------------ handlers of our events
def on_gap(it, ev: dict, ts: float):
    """CTGap: a call reconciled after a gap; what stays estimated (see :func:`.reconcile.plan`)."""
    lid = ev.get("Linkedid", "")
    call = it.calls.get(lid)
    if call is None:
        return None
    values = dict(p.partition("=")[::2] for p in ev.get("Value", "").split(";") if p)
    gap = it.gaps.get(lid)
    if gap is None:
        gap = it.gaps[lid] = Gap(number(values.get("lost")) or ts, ts)
    gap.back = ts
    if "lost" in values:
        gap.lost = number(values["lost"]) or gap.lost
    if values.get("strangers"):
        gap.strangers.update(values["strangers"].split(","))
    if "answer" in values:
        lo, hi, at, leg_uid = (values["answer"].split(",") + ["", "", "", ""])[:4]
        gap.answer, gap.answer_at, gap.leg = Window(float(lo), float(hi)), float(at), leg_uid
        gap.call_talk = call.talk_since == gap.answer_at
        leg = call.legs.get(leg_uid)
        gap.leg_talk = leg is not None and leg.talk_since == gap.answer_at
    if "queued" in values:
        lo, hi, at = values["queued"].split(",")[:3]
        gap.queued, gap.queued_at = Window(float(lo), float(hi)), float(at)
    return lid


def on_answer(it, ev: dict, ts: float):
    """CTAnswer: the caller was found bridged with a party that is no known operator."""
    call = it.calls.get(ev.get("Linkedid", ""))
    if call is None:
        return None
    if call.answered_at is None:
        call.answered_at = ts
    call.in_queue = False
    return call.linkedid


HANDLERS = {"CTGap": on_gap, "CTAnswer": on_answer}


# ------------------------------------------------------------------ later evidence
def no_leg(it, call, uid: str) -> bool:
    """True for a party bridged with the caller that reconciliation found no operator for."""
    gap = it.gaps.get(call.linkedid)
    return gap is not None and uid in gap.strangers


def before(it, name: str, ev: dict, ts: float):
    """Evidence in events after a gap (runs before the event's own handler while gaps exist).

    Returns :data:`SKIP` to drop the event, the Linkedid when the event narrowed an estimate
    (the event is then kept with the call), else None.
    """
    if name == "Newchannel":
        return SKIP if ev.get("Uniqueid") in it.channels else None
    if name == "Hangup":
        uid = ev.get("Uniqueid", "")
        gap = it.gaps.get(it.chan_call.get(uid, ""))
        if gap is not None:
            gap.ended[uid] = ts
        return None
    if name == "AgentComplete":
        call = it.call_of(ev)
        gap = it.gaps.get(call.linkedid) if call is not None else None
        talk, hold = number(ev.get("TalkTime")), number(ev.get("HoldTime"))
        if gap is None or talk is None:
            return None
        used = False
        connect = math.floor(ts) - talk
        if gap.answer is not None and ev.get("DestUniqueid", "") in (gap.leg, *gap.strangers):
            used |= move_answer(it, call, gap, *second(connect))
        if gap.queued is not None and hold is not None:
            used |= move_queued(it, call, gap, *second(connect - hold))
        return call.linkedid if used else None
    if name == "Cdr":
        uid = ev.get("UniqueID", "")
        lid = it.chan_call.get(uid) or next((k for k, g in it.gaps.items() if uid in g.ended), "")
        gap, call = it.gaps.get(lid), it.calls.get(lid)
        billsec = number(ev.get("BillableSeconds"))
        if gap is None or call is None or gap.answer is None or billsec is None \
                or ev.get("Disposition") != "ANSWERED":
            return None
        leg = call.legs.get(gap.leg)
        channel = ev.get("Channel", "")
        if leg is None or channel not in (leg.channel, local_twin(leg.channel)):
            return None
        end = gap.ended.get(uid, ts)
        return lid if move_answer(it, call, gap, end - billsec - 1 - EPS, end - billsec + EPS) else None
    return None


def move_answer(it, call, gap: Gap, lo: float, hi: float) -> bool:
    """Narrow the answer's window; move the answer, the talk clocks and the leg to its middle."""
    if not gap.answer.narrow(lo, hi):
        return False
    new, old = gap.answer.mid, gap.answer_at
    d = new - old
    if d:
        if call.answered_at == old:
            call.answered_at = new
        leg = call.legs.get(gap.leg)
        if leg is not None and leg.answered_at == old:
            leg.answered_at = new
        if gap.call_talk:
            if call.talk_since == old:
                call.talk_since = new
            else:
                call.talk -= d
        if gap.leg_talk and leg is not None:
            if leg.talk_since == old:
                leg.talk_since = new
            else:
                leg.talk -= d
        gap.answer_at = new
        it.touch(call.linkedid)
    return True


def move_queued(it, call, gap: Gap, lo: float, hi: float) -> bool:
    if not gap.queued.narrow(lo, hi):
        return False
    new = gap.queued.mid
    if call.queued_at == gap.queued_at and new != gap.queued_at:
        call.queued_at = new
        it.touch(call.linkedid)
    gap.queued_at = new
    return True
