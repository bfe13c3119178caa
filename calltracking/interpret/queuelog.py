"""What queue_log says about a gap. Pure (no I/O: the listener passes a reader of the file).

Asterisk writes ``queue_log`` while nobody listens to the AMI; its lines are whole seconds
(``epoch|callid|queue|agent|event|data...``, :func:`parse_queue_log`). After a gap they close
what the snapshot alone cannot (:mod:`.reconcile` decides when to ask):

- a channel gone in the gap is closed when queue_log says: ``RINGNOANSWER``/``RINGCANCELED``
  for an operator (the ring time in ms added to its ring start), ``COMPLETE*``, ``ABANDON``,
  ``EXIT*`` for the caller, which also give the outcome: answered by whom (``CONNECT``),
  abandoned, timed out (:func:`gone`); without such a line it is closed at the last moment it
  was known alive, with ``closed_reason = vanished``;
- operators rung and given up in the gap each get a leg (:func:`rung_meanwhile`);
- a call that began and ended while we were away (known only from the FastAGI hook's row) is
  rebuilt from the lines of the caller that joined the row's queue with the row's caller number
  right after the hook ran (:class:`Lines`, :func:`orphan`).

A moment logged in whole second ``s`` is taken as ``s + 0.5`` (the middle of its window).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from calltracking.interpret.gaps import EPS, Away, Timeline, as_read, number
from calltracking.interpret.names import local_twin

#: queue_log events that end the caller's stay in a queue.
QUEUE_END = ("COMPLETEAGENT", "COMPLETECALLER", "ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY",
             "EXITWITHKEY", "TRANSFER", "ATTENDEDTRANSFER", "BLINDTRANSFER")
#: queue_log events that end an operator's ring without an answer.
RING_ENDS = ("RINGNOANSWER", "RINGCANCELED")


@dataclass
class QLine:
    """One queue_log line: its whole second, callid (the caller's Uniqueid), queue, agent
    (the member's name), event and the event's fields."""
    at: int
    callid: str
    queue: str
    agent: str
    event: str
    data: tuple
    used: bool = False              # matched with a leg by the reconciliation

    def arg(self, i: int) -> str:
        return self.data[i] if len(self.data) > i else ""


def parse_queue_log(line: str) -> Optional[QLine]:
    """``epoch|callid|queue|agent|event|data...`` -> QLine (None when it does not read as one)."""
    parts = line.rstrip("\r\n").split("|")
    if len(parts) < 5 or not parts[0].isdigit():
        return None
    return QLine(int(parts[0]), parts[1], parts[2], parts[3], parts[4], tuple(parts[5:]))


class Lines:
    """The queue_log lines written since a gap began, by callid (the file is read once)."""

    def __init__(self, reader: Optional[Callable[[float], Iterable]]):
        self._reader = reader
        self._by_callid: Optional[dict[str, list[QLine]]] = None
        self._claimed: set = set()          # callids given to an orphan call

    def load(self, since: float) -> None:
        """Read the lines since epoch ``since`` (the first call only)."""
        if self._by_callid is not None:
            return
        self._by_callid = {}
        if self._reader is not None:
            for raw in self._reader(since):
                q = raw if isinstance(raw, QLine) else parse_queue_log(raw)
                if q is not None:
                    self._by_callid.setdefault(q.callid, []).append(q)

    def of(self, callids: Iterable[str]) -> list[QLine]:
        """The lines of these channels (queue_log's callid is the caller's Uniqueid), in time order."""
        out = [q for cid in set(callids) for q in (self._by_callid or {}).get(cid, ())]
        return sorted(out, key=lambda q: q.at)

    def of_orphan(self, row: dict, started: float, back: float, taken: set) -> list[QLine]:
        """The lines of the FastAGI hook's ``row``: the earliest caller not ``taken`` (by a known
        channel) that entered the row's queue between the hook's second and ``back`` with the
        same caller number (last 10 digits); claimed, so no other row gets them."""
        digits = "".join(c for c in row.get("caller", "") if c.isdigit())[-10:]
        taken = taken | self._claimed
        best = None
        for callid, lines in (self._by_callid or {}).items():
            enter = next((q for q in lines if q.event == "ENTERQUEUE"), None)
            if enter is None or callid in taken or not (math.floor(started) - 1 <= enter.at <= back):
                continue
            if row.get("queue") and enter.queue != row["queue"]:
                continue
            theirs = "".join(c for c in enter.arg(1) if c.isdigit())[-10:]
            if not digits or not theirs or theirs != digits:
                continue
            if best is None or enter.at < best[0]:
                best = (enter.at, callid)
        if best is None:
            return []
        self._claimed.add(best[1])
        return sorted(self._by_callid[best[1]], key=lambda q: q.at)


def talked(away: Away, tl: Timeline, lid: str, inbound: str, names: dict, connect: QLine, at: float,
           end_at: float, leg) -> str:
    """queue_log CONNECT .. COMPLETE* in the gap: the member rung (unless known), answered at
    ``at``, bridged with the caller until ``end_at``; returns the member channel's uniqueid."""
    member = connect.arg(1) or f"ql-{connect.callid}-{connect.at}-{connect.agent}"[:64]
    op = away.reg.by_name.get(connect.agent)
    if leg is None:
        ring = number(connect.arg(2))
        tl.add(at - ring if ring is not None else at, 2,
               {"Event": "AgentCalled", "Uniqueid": inbound, "Linkedid": lid, "Channel": names.get(inbound, ""),
                "DestUniqueid": member, "DestChannel": "", "Interface": op.interface if op else "",
                "MemberName": connect.agent, "Queue": connect.queue})
    tl.add(at, 5, {"Event": "AgentConnect", "Uniqueid": inbound, "Linkedid": lid,
                   "Channel": names.get(inbound, ""), "DestUniqueid": member,
                   "DestChannel": leg.channel if leg else "", "Queue": connect.queue,
                   "Interface": leg.interface if leg else (op.interface if op else ""),
                   "MemberName": connect.agent})
    bid = f"ct-gap-{lid}"
    for uid in (inbound, member):
        base = {"Uniqueid": uid, "Linkedid": lid, "Channel": names.get(uid, ""), "BridgeUniqueid": bid}
        tl.add(at, 6, dict(base, Event="BridgeEnter"))
        tl.add(end_at, 4, dict(base, Event="BridgeLeave"))
    if member not in away.it.channels:
        tl.add(end_at, 7, {"Event": "Hangup", "Uniqueid": member, "Linkedid": lid})
    return member


def rung_meanwhile(away: Away, tl: Timeline, call, lid: str, inbound: str, names: dict,
                   rings: list[QLine]) -> None:
    """Operators rung and given up in the gap, known from queue_log alone: a leg each
    (``RINGNOANSWER``/``RINGCANCELED``: the ring's end second and its length in ms)."""
    legs = list(call.legs.values()) if call is not None else []
    for q in rings:
        if q.used:
            continue
        end = as_read(q.at + 0.5)
        if any(leg.operator == q.agent and leg.ended_at is not None and abs(leg.ended_at - end) <= 0.5 + EPS
               for leg in legs):
            continue                # seen before the gap
        op = away.reg.by_name.get(q.agent)
        ms = number(q.arg(0)) or 0.0
        uid = f"ql-{q.callid}-{q.at}-{q.agent}"[:64]
        tl.add(max(away.lost if call is not None else -math.inf, end - ms / 1000), 2,
               {"Event": "AgentCalled", "Uniqueid": inbound, "Linkedid": lid, "Channel": names.get(inbound, ""),
                "DestUniqueid": uid, "DestChannel": "", "Interface": op.interface if op else "",
                "MemberName": q.agent, "Queue": q.queue})
        if q.event == "RINGNOANSWER":
            tl.add(end, 3, {"Event": "AgentRingNoAnswer", "Uniqueid": inbound, "Linkedid": lid,
                            "DestUniqueid": uid, "MemberName": q.agent, "Queue": q.queue})
        else:               # cancelled: by the caller's leaving (then after it) or another's answer
            tl.add(end, 10, {"Event": "Hangup", "Uniqueid": uid, "Linkedid": lid})


def gone(away: Away, tl: Timeline, call, gone: list[str], side: set, qlines: list[QLine],
         rings: list[QLine]) -> None:
    """Channels gone in the gap: closed when queue_log says, else at the last moment known
    alive (``CTChannelGone``: the call is then ``vanished``). A ring cancelled with the
    caller's leaving ends after the caller (its leg is ``cancelled``, as seen live)."""
    it, lost, back = away.it, away.lost, away.back
    lid, inbound = call.linkedid, call.inbound

    def clamp(x):
        return as_read(min(max(x, lost), back))

    fresh = [q for q in qlines if q.at >= math.floor(lost) - 1]
    connect = next((q for q in fresh if q.event == "CONNECT"), None)
    end = next((q for q in fresh if q.event in QUEUE_END), None) if inbound in gone else None
    names = {uid: it.channel_name(uid) for uid in gone}
    legs = {}
    for uid in gone:
        ref = it.leg_of.get(uid)
        twin = local_twin(names.get(uid, ""))
        if ref is None and twin:
            twin_uid = next((u for u in (*call.channels, *gone) if it.channel_name(u) == twin), None)
            ref = it.leg_of.get(twin_uid) if twin_uid else None
        leg = it.calls[ref[0]].legs.get(ref[1]) if ref is not None and ref[0] in it.calls else None
        if leg is not None:
            legs[uid] = leg
    rung = {}                       # leg uniqueid -> (its ring's end, the queue_log line)
    for leg in {id(v): v for v in legs.values()}.values():
        q = ring_of(leg, rings)
        if q is not None:
            ms = number(q.arg(0))
            at = q.at + 0.5
            if ms is not None and leg.rung_at is not None and q.at - EPS <= leg.rung_at + ms / 1000 <= q.at + 1 + EPS:
                at = leg.rung_at + ms / 1000
            rung[leg.uniqueid] = (clamp(at), q)
    end_at = clamp(end.at + 0.5) if end is not None else None
    if end is not None and end.event == "ABANDON":
        # the ring cancelled by the caller's leaving gives that moment to the millisecond
        precise = [at for at, q in rung.values() if q.event == "RINGCANCELED" and abs(q.at - end.at) <= 1]
        if precise:
            end_at = precise[0]

    # answered and over in the gap (queue_log CONNECT, then COMPLETE*/TRANSFER)
    talk_leg = None
    if end is not None and connect is not None and call.answered_at is None:
        ref = it.leg_of.get(connect.arg(1))
        leg = call.legs.get(ref[1]) if ref is not None and ref[0] == lid else None
        talk_leg = talked(away, tl, lid, inbound, names, connect, clamp(connect.at + 0.5), end_at, leg)
    elif end is not None and end.event == "ABANDON":
        tl.add(end_at, 3, {"Event": "QueueCallerAbandon", "Uniqueid": inbound, "Linkedid": lid,
                           "Queue": end.queue})
    elif end is not None and end.event.startswith("EXIT"):
        tl.add(end_at, 3, {"Event": "QueueCallerLeave", "Uniqueid": inbound, "Linkedid": lid, "Queue": end.queue})

    for uid in gone:
        at, known, stage = lost, False, 9 if uid == inbound else (8 if uid in side else 7)
        leg = legs.get(uid)
        if leg is not None:
            if end_at is not None and (leg.uniqueid == talk_leg or (
                    end.event.startswith("COMPLETE") and leg.operator == end.agent)):
                at, known = end_at, True          # the operator's talk ended with the call
                stage = 10 if end.event == "COMPLETECALLER" else 7
            elif leg.uniqueid in rung:
                at, q = rung[leg.uniqueid]
                known = True
                if end_at is not None and q.event == "RINGCANCELED" and abs(q.at - end.at) <= 1:
                    at, stage = end_at, 10        # cancelled by the caller's leaving
        elif uid in side and end_at is not None:
            at, known = end_at, True
        ev = {"Event": "Hangup" if known else "CTChannelGone", "Uniqueid": uid, "Linkedid": lid,
              "Channel": names.get(uid, "")}
        tl.add(at, stage, ev)


def ring_of(leg, rings: list[QLine]) -> Optional[QLine]:
    """The queue_log line that ended ``leg``'s ring (same member; the ring's length fits); marked used."""
    for q in rings:
        if q.used or q.agent != leg.operator:
            continue
        ms = number(q.arg(0))
        if leg.rung_at is not None and ms is not None and not (
                q.at - 1 - EPS <= leg.rung_at + ms / 1000 <= q.at + 1 + EPS):
            continue
        if leg.ended_at is not None:
            continue
        q.used = True
        return q
    return None


def orphan(away: Away, row: dict, started: float, lines: list[QLine]) -> list[dict]:
    """The events of an orphan call (see the module's rules): started at the hook's time
    ``started``; closed at queue_log's end of its stay in the queue, else where it was last
    known (``started``), ``vanished``."""
    lid = row.get("linkedid", "")
    tl = Timeline()
    tl.add(started, 0, {"Event": "Newchannel", "Uniqueid": lid, "Linkedid": lid, "Channel": "",
                        "Exten": row.get("did", ""), "CallerIDNum": row.get("caller", "")})

    def clamp(x):
        return as_read(min(max(x, started), away.back))

    enter = next((q for q in lines if q.event == "ENTERQUEUE"), None)
    connect = next((q for q in lines if q.event == "CONNECT"), None)
    end = next((q for q in lines if q.event in QUEUE_END), None)
    end_at = clamp(end.at + 0.5) if end is not None else None
    if enter is not None:
        tl.add(clamp(enter.at + 0.5), 1, {"Event": "QueueCallerJoin", "Uniqueid": lid, "Linkedid": lid,
                                          "Queue": enter.queue, "CallerIDNum": row.get("caller", "")})
    rings = [q for q in lines if q.event in RING_ENDS]
    rung_meanwhile(away, tl, None, lid, lid, {}, rings)
    if connect is not None and end_at is not None:
        talked(away, tl, lid, lid, {}, connect, clamp(connect.at + 0.5), end_at, None)
    elif end is not None and end.event == "ABANDON":
        tl.add(end_at, 3, {"Event": "QueueCallerAbandon", "Uniqueid": lid, "Linkedid": lid, "Queue": end.queue})
    elif end is not None and end.event.startswith("EXIT"):
        tl.add(end_at, 3, {"Event": "QueueCallerLeave", "Uniqueid": lid, "Linkedid": lid, "Queue": end.queue})
    known = end_at is not None
    tl.add(end_at if known else started, 9,
           {"Event": "Hangup" if known else "CTChannelGone", "Uniqueid": lid, "Linkedid": lid, "Channel": ""})
    return [*tl.channels, *tl.events()]
