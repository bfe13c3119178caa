"""After a gap: the calls brought in line with what Asterisk still knows. Pure (no I/O).

A *gap* is a time the listener did not hear Asterisk: killed (SIGKILL), stopped, the
connection lost, Asterisk restarted, or the listener not yet started. After every login the
listener asks ``Ping``, ``QueueStatus`` and ``CoreShowChannels``; :func:`plan` turns the
answers, and the queue_log lines written meanwhile when the listener can read that file, into
events in the AMI format, each dated from evidence. The interpreter applies them like any
event and the store keeps them with the call, so a replay (restart, ``ami rebuild``) gives the
same record. The rules:

- **Asterisk's clock** at the snapshot (``back``) is the Ping answer's ``Timestamp``, checked
  against the ``Duration`` of the channels whose creation we saw (their creation + Duration
  must bracket it); never the last event we saw before the gap.
- **A channel we did not know** was created ``Duration`` (whole seconds, truncated) before
  ``back``; its Uniqueid's epoch second narrows that to within 0.5 s. It is adopted with a
  ``Newchannel`` at that time (a call adopted so starts there).
- **An operator is known only from evidence**: a channel dialled by the caller's ``Queue()``
  or ``Dial()`` (``AppQueue``/``AppDial``) or bridged with the caller whose interface is a
  registered operator (a queue member from ``QueueStatus``, or an active operator of the
  database), a queue_log line naming a member, or later an ``AgentComplete``. Any other party
  bridged with the caller counts for talk time and answers the call, but is no leg.
- **An answer in the gap** lies between the last moment the call was known unanswered (or the
  operator's ring started) and ``back``, narrowed by queue_log's ``CONNECT`` second; the middle
  is applied at once. Later evidence narrows it further and moves the answer, the talk clocks
  and the leg with it (:func:`before`): ``AgentComplete`` (``TalkTime``, ``HoldTime``: whole
  seconds since the connect second) and the operator's own ``Cdr`` (``BillableSeconds`` up to its
  hang-up).
- **A channel gone** in the gap is closed when queue_log says (``RINGNOANSWER``/``RINGCANCELED``
  for an operator, the ring time in ms added to its ring start; ``COMPLETE*``, ``ABANDON``,
  ``EXIT*`` for the caller, which also give the outcome: answered by whom, abandoned, timed out);
  without such a line, at the last moment it was known alive, with ``closed_reason = vanished``.
- **Queue join** of an adopted call: ``QueueEntry``'s ``Wait``, ``ENTERQUEUE``, else between its
  creation and its first ring, later narrowed by ``AgentComplete``'s ``HoldTime``.

Times picked inside a window are its middle, so the error is at most half its width: 0.5 s
for a window of whole seconds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

from calltracking.interpret.state import interface_of, local_twin, name_of_interface

#: Tolerance on clock reads and whole-second boundaries (seconds).
EPS = 0.05
#: Applications of the channel a Queue() or Dial() rings (CoreShowChannel ``Application``).
DIALLED_APPS = ("AppQueue", "AppDial")
#: queue_log events that end the caller's stay in a queue.
QUEUE_END = ("COMPLETEAGENT", "COMPLETECALLER", "ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY",
             "EXITWITHKEY", "TRANSFER", "ATTENDEDTRANSFER", "BLINDTRANSFER")
#: queue_log events that end an operator's ring without an answer.
RING_ENDS = ("RINGNOANSWER", "RINGCANCELED")
#: Sentinel of :func:`before`: drop the event.
SKIP = object()


# ------------------------------------------------------------------ small helpers
def _t(x: float) -> str:
    return f"{x:.6f}"


def _r(x: float) -> float:
    """A time as it reads back from an event's ``Timestamp`` (so equality tests hold)."""
    return float(_t(x))


def _num(text) -> Optional[float]:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _hms(text) -> Optional[float]:
    try:
        h, m, s = (int(x) for x in str(text).split(":"))
        return float(h * 3600 + m * 60 + s)
    except ValueError:
        return None


def _epoch(uid: str) -> Optional[int]:
    """The epoch second in a Uniqueid (``[system-]<epoch>.<sequence>``), or None."""
    head = (uid or "").rsplit("-", 1)[-1].partition(".")[0]
    return int(head) if head.isdigit() and len(head) >= 9 else None


def _uid_order(uid: str):
    head, _, seq = (uid or "").rsplit("-", 1)[-1].partition(".")
    try:
        return (int(head), int(seq or 0))
    except ValueError:
        return (0, 0)


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
        return _r((self.lo + self.hi) / 2)


def _second(at: float) -> tuple[float, float]:
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


def _key(interface: str) -> str:
    return interface.strip().removesuffix("/n")


class Registry:
    """Operators known to Asterisk (queue members) or to us (active operators' interfaces)."""

    def __init__(self, queues: dict, operators: Optional[dict] = None):
        self.by_key: dict[str, Operator] = {}
        for queue, members in queues.items():
            for iface, m in members.items():
                op = self.by_key.setdefault(_key(iface), Operator(iface, m.name or name_of_interface(iface)))
                op.queues.add(queue)
        for iface, name in (operators or {}).items():
            self.by_key.setdefault(_key(iface), Operator(iface, name or name_of_interface(iface)))
        self.by_name = {op.name: op for op in self.by_key.values()}

    def of_channel(self, channel: str) -> Optional[Operator]:
        return self.by_key.get(_key(interface_of(channel))) if channel else None


# ------------------------------------------------------------------ queue_log
@dataclass
class QLine:
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


# ------------------------------------------------------------------ the plan
def clock(it, sync: dict, channels: list[dict], fallback: float) -> float:
    """Asterisk's time at the snapshot (see the module's rules)."""
    ping = _num(sync.get("Timestamp")) if sync else None
    lo, hi = -math.inf, math.inf
    for f in channels:
        ch = it.channels.get(f.get("Uniqueid", ""))
        d = _hms(f.get("Duration"))
        if ch is None or ch.created_at is None or d is None:
            continue
        lo, hi = max(lo, ch.created_at + d - EPS), min(hi, ch.created_at + d + 1 + EPS)
    if lo > -math.inf and lo <= hi:
        if ping is not None and lo - 1 <= ping <= hi + 1:
            return _r(ping)
        return _r((lo + hi) / 2)
    return _r(ping if ping is not None else fallback)


def created(frame: dict, back: float) -> Window:
    """When a channel of the snapshot was created: ``back - Duration``, narrowed by its Uniqueid."""
    d = _hms(frame.get("Duration")) or 0.0
    w = Window(back - d - 1, back - d)
    e = _epoch(frame.get("Uniqueid", ""))
    if e is not None:
        w.narrow(e - EPS, e + 1 + EPS)
    return w


class _Timeline:
    """Synthetic events of one call: adopted channels first (in Uniqueid order), then the rest in
    time order (ties: by stage)."""

    def __init__(self):
        self.channels: list[dict] = []
        self.items: list = []

    def add(self, at: float, stage: int, ev: dict) -> None:
        ev["Timestamp"] = _t(at)
        if stage == 0:
            self.channels.append(ev)
        else:
            self.items.append((_r(at), stage, len(self.items), ev))

    def events(self) -> list[dict]:
        return [ev for *_, ev in sorted(self.items, key=lambda x: x[:3])]


def plan(it, snapshot: list[dict], lost_at: Optional[float], now: float) -> list[dict]:
    """The events that bring the interpreter in line with Asterisk after a gap.

    ``snapshot``: the ``CoreShowChannel`` frames, the ``QueueEntry`` frames of ``QueueStatus``
    and one ``CTSync`` frame from the listener: ``Timestamp`` (Asterisk's clock by Ping),
    ``_queue_log`` (a callable: epoch -> queue_log lines since then, optional) and
    ``_operators`` (active operators' {interface: name}, optional), ``_orphans`` (calls the
    FastAGI hook recorded that are still ``in_progress``, optional: {linkedid, started_at,
    caller, queue, did}) and ``_lost`` (Asterisk's time of the last event heard before this
    connection: where the gap began). ``lost_at``: the writer's last event time, used without
    ``_lost`` (events heard since the login may have moved it already); ``now``: a fallback clock.
    """
    sync, chans, entries = {}, [], {}
    for f in snapshot:
        kind = f.get("Event")
        if kind == "CoreShowChannel" and f.get("Uniqueid"):
            chans.append(f)
        elif kind == "QueueEntry" and f.get("Uniqueid"):
            entries[f["Uniqueid"]] = f
        elif kind == "CTSync":
            sync = f
    back = clock(it, sync, chans, now)
    lost_at = _num(sync.get("_lost")) or lost_at
    lost = min(lost_at, back) if lost_at is not None else back
    ctx = _Plan(it, back, lost, chans, entries, sync)
    out: list[dict] = []
    for lid in ctx.call_ids():
        out += ctx.call(lid)
    for row in ctx.orphans:
        out += ctx.orphan(row)
    return out


class _Plan:
    def __init__(self, it, back, lost, chans, entries, sync):
        self.it, self.back, self.lost = it, back, lost
        self.live = {f["Uniqueid"]: f for f in chans}
        self.entries = entries
        self.new = {uid: created(f, back) for uid, f in self.live.items() if uid not in it.channels}
        self.reg = Registry(it.queues, sync.get("_operators"))
        self._reader: Optional[Callable] = sync.get("_queue_log")
        self._qlog: Optional[dict] = None
        self._claimed: set = set()
        self.orphans = sync.get("_orphans") or []

    # ------------------------------------------------------------------ inputs
    def qlog(self, callids: Iterable[str]) -> list[QLine]:
        """queue_log lines of these channels since the gap began (the file is read once)."""
        if self._qlog is None:
            self._qlog = {}
            if self._reader is not None:
                since = min([self.lost] + [w.lo for w in self.new.values()]
                            + [_num(o.get("started_at")) or self.lost for o in self.orphans]) - 2
                for raw in self._reader(since):
                    q = raw if isinstance(raw, QLine) else parse_queue_log(raw)
                    if q is not None:
                        self._qlog.setdefault(q.callid, []).append(q)
        out = [q for cid in set(callids) for q in self._qlog.get(cid, ())]
        return sorted(out, key=lambda q: q.at)

    def call_ids(self) -> list[str]:
        """The calls to look at (each call's live frames and gone channels are indexed here)."""
        it, seen = self.it, {}
        self.frames_of: dict[str, list] = {}
        self.gone_of: dict[str, list] = {}
        for uid, f in self.live.items():
            lid = f.get("Linkedid", "")
            if lid and lid not in it.finished:
                seen.setdefault(lid, self.new[uid].lo if uid in self.new else 0.0)
                self.frames_of.setdefault(lid, []).append(f)
        for uid, ch in it.channels.items():
            if uid not in self.live:
                lid = it.chan_call.get(uid) or ch.linkedid
                if lid in it.calls and lid not in it.finished:
                    seen.setdefault(lid, 0.0)
                    self.gone_of.setdefault(lid, []).append(uid)
        return sorted(seen, key=lambda lid: (seen[lid], _uid_order(lid)))

    # ------------------------------------------------------------------ one call
    def call(self, lid: str) -> list[dict]:
        it, live, back = self.it, self.live, self.back
        call = it.calls.get(lid)
        frames = sorted(self.frames_of.get(lid, ()), key=lambda f: _uid_order(f["Uniqueid"]))
        if call is None and lid not in live:
            return []                   # its first channel is gone: nothing to adopt it from
        gone = sorted(self.gone_of.get(lid, ()), key=_uid_order)
        tl = _Timeline()
        gap = Gap(self.lost if call is not None else self.new[lid].lo, back)
        names = {uid: it.channel_name(uid) for uid in (call.channels if call else ())}
        names.update({f["Uniqueid"]: f.get("Channel", "") for f in frames})

        # adopted channels
        for f in frames:
            uid = f["Uniqueid"]
            if uid in self.new:
                ev = {"Event": "Newchannel", "Uniqueid": uid, "Linkedid": lid, "Channel": f.get("Channel", ""),
                      "Context": f.get("Context", ""), "Exten": f.get("Exten", ""),
                      "CallerIDNum": f.get("CallerIDNum", ""), "CallerIDName": f.get("CallerIDName", "")}
                tl.add(self.new[uid].mid, 0, ev)
        inbound = call.inbound if call is not None else self._inbound(lid, frames)
        side = set(call.caller_side) if call is not None else {lid, inbound}
        qlines = self.qlog(side)
        inb = live.get(inbound)
        queue = call.queue if call is not None else ""
        queued_now = bool(inb and inb.get("Application") == "Queue")
        if queued_now and not queue:
            queue = (inb.get("ApplicationData") or "").split(",", 1)[0]
        bridge = next((live[u].get("BridgeId", "") for u in sorted(side) if u in live and live[u].get("BridgeId")), "")

        # parties: known legs, new legs (registered operators), strangers
        parties, new_legs, rung_hi = [], {}, back
        for f in frames:
            uid, name = f["Uniqueid"], f.get("Channel", "")
            if uid in side:
                continue
            bridged = bool(bridge) and f.get("BridgeId") == bridge
            if uid in it.leg_of:
                ref = it.leg_of[uid]
                leg = it.calls[ref[0]].legs.get(ref[1]) if ref[0] in it.calls else None
                if leg is not None and leg.rung_at is not None:
                    rung_hi = min(rung_hi, leg.rung_at)
                if bridged:
                    parties.append((uid, leg))
                continue
            twin = local_twin(name)
            if name.endswith(";2") and twin and any(g.get("Channel") == twin for g in frames):
                continue                # the operator's side of a Local member
            if f.get("Application") not in DIALLED_APPS and not bridged:
                continue
            op = self.reg.of_channel(name)
            if op is None:
                if bridged:
                    gap.strangers.add(uid)
                    parties.append((uid, None))
                continue
            w = self.new.get(uid) or Window(self.lost, back)
            in_queue = bool(queue) and (queue in op.queues or f.get("Application") == "AppQueue")
            new_legs[uid] = (op, w, "queue" if in_queue else "dial")
            rung_hi = min(rung_hi, w.mid)
            if bridged:
                parties.append((uid, op))

        # queue join (an adopted call, or a known one that joined in the gap)
        if queued_now and (call is None or call.queued_at is None):
            w = Window(self.new[inbound].mid if inbound in self.new else gap.lost, max(rung_hi, gap.lost))
            evidence = False
            entry = self.entries.get(inbound)
            wait, at = (_num(entry.get("Wait")), _num(entry.get("Timestamp"))) if entry else (None, None)
            if wait is not None and at is not None:
                evidence |= w.narrow(*_second(math.floor(at) - wait))
            for q in qlines:
                if q.event == "ENTERQUEUE":
                    evidence |= w.narrow(*_second(q.at))
            tl.add(w.mid, 1, {"Event": "QueueCallerJoin", "Uniqueid": inbound, "Linkedid": lid,
                              "Channel": names.get(inbound, ""), "Queue": queue,
                              "CallerIDNum": (inb or {}).get("CallerIDNum", "")})
            if not evidence:
                gap.queued, gap.queued_at = w, w.mid
        for uid, (op, w, kind) in new_legs.items():
            self._ring(tl, lid, inbound, names, uid, op, w.mid, kind, queue)

        # the answer, when the caller is bridged with a party now and was not answered before
        answered_before = call is not None and call.answered_at is not None
        answer_at = None
        if parties and not answered_before:
            uid, who = next(((u, w) for u, w in parties if w is not None), parties[0])
            low = gap.lost
            if uid in new_legs:
                low = max(low, new_legs[uid][1].mid)
            elif who is not None and getattr(who, "rung_at", None) is not None:
                low = max(low, who.rung_at)
            w = Window(low, max(low, back))
            for q in qlines:
                if q.event == "CONNECT" and (q.arg(1) == uid or not q.arg(1)):
                    w.narrow(*_second(q.at))
            answer_at = w.mid
            self._answer(tl, lid, inbound, names, uid, who, new_legs.get(uid), answer_at, queue)
            gap.answer, gap.answer_at, gap.leg = w, answer_at, ("" if uid in gap.strangers else uid)

        # bridges entered or left while we were away
        moved_at = Window(gap.lost, back).mid
        for f in frames:
            uid, bid = f["Uniqueid"], f.get("BridgeId", "")
            ch = it.channels.get(uid)
            old = ch.bridge if ch is not None else None
            if (old or "") == bid:
                continue
            at = answer_at if answer_at is not None and bid == bridge else moved_at
            base = {"Uniqueid": uid, "Linkedid": lid, "Channel": names.get(uid, "")}
            if old:
                tl.add(at, 4, dict(base, Event="BridgeLeave", BridgeUniqueid=old))
            if bid:
                tl.add(at, 6, dict(base, Event="BridgeEnter", BridgeUniqueid=bid))

        rings = [q for q in qlines if q.event in RING_ENDS and q.at >= math.floor(gap.lost) - 1]
        if gone and call is not None:
            self._gone(tl, call, gone, side, qlines, rings)
        self._rung_meanwhile(tl, call, lid, inbound, names, rings)
        out = tl.events()
        if not out and not tl.channels:
            return []
        head = {"Event": "CTGap", "Linkedid": lid, "Timestamp": _t(back),
                "Value": f"lost={_t(gap.lost)};strangers={','.join(sorted(gap.strangers))}"}
        tail = []
        parts = []
        if gap.answer is not None:
            parts.append(f"answer={_t(gap.answer.lo)},{_t(gap.answer.hi)},{_t(gap.answer_at)},{gap.leg}")
        if gap.queued is not None:
            parts.append(f"queued={_t(gap.queued.lo)},{_t(gap.queued.hi)},{_t(gap.queued_at)}")
        if parts:
            tail = [{"Event": "CTGap", "Linkedid": lid, "Timestamp": _t(back), "Value": ";".join(parts)}]
        return [*tl.channels, head, *out, *tail]

    def orphan(self, row: dict) -> list[dict]:
        """A call that began and ended while we were away: only the FastAGI hook's row and
        queue_log know it. Its queue_log lines are those of the caller that joined the row's
        queue with the row's caller number right after the hook ran; without them it is
        closed where it was last known (the hook's time), ``vanished``."""
        it, lid = self.it, row.get("linkedid", "")
        started = _num(row.get("started_at"))
        if not lid or started is None or lid in it.calls or lid in it.finished or started > self.back \
                or lid in self.frames_of:
            return []
        started = _r(started)
        tl = _Timeline()
        tl.add(started, 0, {"Event": "Newchannel", "Uniqueid": lid, "Linkedid": lid, "Channel": "",
                            "Exten": row.get("did", ""), "CallerIDNum": row.get("caller", "")})
        lines = self._orphan_lines(row, started)

        def clamp(x):
            return _r(min(max(x, started), self.back))

        enter = next((q for q in lines if q.event == "ENTERQUEUE"), None)
        connect = next((q for q in lines if q.event == "CONNECT"), None)
        end = next((q for q in lines if q.event in QUEUE_END), None)
        end_at = clamp(end.at + 0.5) if end is not None else None
        if enter is not None:
            tl.add(clamp(enter.at + 0.5), 1, {"Event": "QueueCallerJoin", "Uniqueid": lid, "Linkedid": lid,
                                              "Queue": enter.queue, "CallerIDNum": row.get("caller", "")})
        rings = [q for q in lines if q.event in RING_ENDS]
        self._rung_meanwhile(tl, None, lid, lid, {}, rings)
        if connect is not None and end_at is not None:
            self._talked(tl, lid, lid, {}, connect, clamp(connect.at + 0.5), end_at, None)
        elif end is not None and end.event == "ABANDON":
            tl.add(end_at, 3, {"Event": "QueueCallerAbandon", "Uniqueid": lid, "Linkedid": lid, "Queue": end.queue})
        elif end is not None and end.event.startswith("EXIT"):
            tl.add(end_at, 3, {"Event": "QueueCallerLeave", "Uniqueid": lid, "Linkedid": lid, "Queue": end.queue})
        known = end_at is not None
        tl.add(end_at if known else started, 9,
               {"Event": "Hangup" if known else "CTChannelGone", "Uniqueid": lid, "Linkedid": lid, "Channel": ""})
        return [*tl.channels, *tl.events()]

    def _orphan_lines(self, row: dict, started: float) -> list[QLine]:
        self.qlog(())
        digits = "".join(c for c in row.get("caller", "") if c.isdigit())[-10:]
        taken = set(self.it.chan_call) | set(self.live) | self._claimed
        best = None
        for callid, lines in self._qlog.items():
            enter = next((q for q in lines if q.event == "ENTERQUEUE"), None)
            if enter is None or callid in taken or not (math.floor(started) - 1 <= enter.at <= self.back):
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
        return sorted(self._qlog[best[1]], key=lambda q: q.at)

    def _talked(self, tl, lid, inbound, names, connect, at, end_at, leg) -> str:
        """queue_log CONNECT .. COMPLETE* in the gap: the member rung (unless known), answered at
        ``at``, bridged with the caller until ``end_at``; returns the member channel's uniqueid."""
        member = connect.arg(1) or f"ql-{connect.callid}-{connect.at}-{connect.agent}"[:64]
        op = self.reg.by_name.get(connect.agent)
        if leg is None:
            ring = _num(connect.arg(2))
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
        if member not in self.it.channels:
            tl.add(end_at, 7, {"Event": "Hangup", "Uniqueid": member, "Linkedid": lid})
        return member

    def _inbound(self, lid: str, frames: list[dict]) -> str:
        """The inbound channel of an adopted call (as :func:`handlers.on_newchannel` decides)."""
        first = self.live.get(lid, {}).get("Channel", "")
        twin = local_twin(first)
        if twin and twin.endswith(";2"):
            for f in frames:
                ext = f.get("Exten", "").lstrip("+")
                if f.get("Channel") == twin and ext.isdigit() and len(ext) >= 7:
                    return f["Uniqueid"]
        return lid

    def _ring(self, tl, lid, inbound, names, uid, op, at, kind, queue) -> None:
        if kind == "queue":
            tl.add(at, 2, {"Event": "AgentCalled", "Uniqueid": inbound, "Linkedid": lid,
                           "Channel": names.get(inbound, ""), "DestUniqueid": uid, "DestChannel": names.get(uid, ""),
                           "Interface": op.interface, "MemberName": op.name, "Queue": queue})
        else:
            tl.add(at, 2, {"Event": "DialBegin", "Uniqueid": inbound, "Linkedid": lid,
                           "Channel": names.get(inbound, ""), "DestUniqueid": uid, "DestChannel": names.get(uid, ""),
                           "DialString": op.interface})

    def _answer(self, tl, lid, inbound, names, uid, who, new, at, queue) -> None:
        base = {"Uniqueid": inbound, "Linkedid": lid, "Channel": names.get(inbound, ""),
                "DestUniqueid": uid, "DestChannel": names.get(uid, "")}
        if who is None:
            tl.add(at, 5, {"Event": "CTAnswer", "Linkedid": lid, "Uniqueid": uid})
        elif (new is not None and new[2] == "queue") or (new is None and getattr(who, "kind", "") == "queue"):
            op = new[0] if new is not None else None
            tl.add(at, 5, dict(base, Event="AgentConnect", Queue=queue or getattr(who, "queue", ""),
                               Interface=op.interface if op else who.interface,
                               MemberName=op.name if op else who.operator))
        else:
            tl.add(at, 5, dict(base, Event="DialEnd", DialStatus="ANSWER"))

    def _rung_meanwhile(self, tl, call, lid, inbound, names, rings) -> None:
        """Operators rung and given up in the gap, known from queue_log alone: a leg each
        (``RINGNOANSWER``/``RINGCANCELED``: the ring's end second and its length in ms)."""
        legs = list(call.legs.values()) if call is not None else []
        for q in rings:
            if q.used:
                continue
            end = _r(q.at + 0.5)
            if any(leg.operator == q.agent and leg.ended_at is not None and abs(leg.ended_at - end) <= 0.5 + EPS
                   for leg in legs):
                continue                # seen before the gap
            op = self.reg.by_name.get(q.agent)
            ms = _num(q.arg(0)) or 0.0
            uid = f"ql-{q.callid}-{q.at}-{q.agent}"[:64]
            tl.add(max(self.lost if call is not None else -math.inf, end - ms / 1000), 2,
                   {"Event": "AgentCalled", "Uniqueid": inbound, "Linkedid": lid, "Channel": names.get(inbound, ""),
                    "DestUniqueid": uid, "DestChannel": "", "Interface": op.interface if op else "",
                    "MemberName": q.agent, "Queue": q.queue})
            if q.event == "RINGNOANSWER":
                tl.add(end, 3, {"Event": "AgentRingNoAnswer", "Uniqueid": inbound, "Linkedid": lid,
                                "DestUniqueid": uid, "MemberName": q.agent, "Queue": q.queue})
            else:               # cancelled: by the caller's leaving (then after it) or another's answer
                tl.add(end, 10, {"Event": "Hangup", "Uniqueid": uid, "Linkedid": lid})

    def _gone(self, tl, call, gone, side, qlines, rings) -> None:
        """Channels gone in the gap: closed when queue_log says, else at the last moment known
        alive (``CTChannelGone``: the call is then ``vanished``). A ring cancelled with the
        caller's leaving ends after the caller (its leg is ``cancelled``, as seen live)."""
        it, lost, back = self.it, self.lost, self.back
        lid, inbound = call.linkedid, call.inbound

        def clamp(x):
            return _r(min(max(x, lost), back))

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
            q = _ring_of(leg, rings)
            if q is not None:
                ms = _num(q.arg(0))
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
            talk_leg = self._talked(tl, lid, inbound, names, connect, clamp(connect.at + 0.5), end_at, leg)
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


def _ring_of(leg, rings: list[QLine]) -> Optional[QLine]:
    """The queue_log line that ended ``leg``'s ring (same member; the ring's length fits); marked used."""
    for q in rings:
        if q.used or q.agent != leg.operator:
            continue
        ms = _num(q.arg(0))
        if leg.rung_at is not None and ms is not None and not (
                q.at - 1 - EPS <= leg.rung_at + ms / 1000 <= q.at + 1 + EPS):
            continue
        if leg.ended_at is not None:
            continue
        q.used = True
        return q
    return None


# ------------------------------------------------------------------ handlers of our events
def on_gap(it, ev: dict, ts: float):
    """CTGap: a call reconciled after a gap; what stays estimated (see :func:`plan`)."""
    lid = ev.get("Linkedid", "")
    call = it.calls.get(lid)
    if call is None:
        return None
    values = dict(p.partition("=")[::2] for p in ev.get("Value", "").split(";") if p)
    gap = it.gaps.get(lid)
    if gap is None:
        gap = it.gaps[lid] = Gap(_num(values.get("lost")) or ts, ts)
    gap.back = ts
    if "lost" in values:
        gap.lost = _num(values["lost"]) or gap.lost
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
        talk, hold = _num(ev.get("TalkTime")), _num(ev.get("HoldTime"))
        if gap is None or talk is None:
            return None
        used = False
        connect = math.floor(ts) - talk
        if gap.answer is not None and ev.get("DestUniqueid", "") in (gap.leg, *gap.strangers):
            used |= _move_answer(it, call, gap, *_second(connect))
        if gap.queued is not None and hold is not None:
            used |= _move_queued(it, call, gap, *_second(connect - hold))
        return call.linkedid if used else None
    if name == "Cdr":
        uid = ev.get("UniqueID", "")
        lid = it.chan_call.get(uid) or next((k for k, g in it.gaps.items() if uid in g.ended), "")
        gap, call = it.gaps.get(lid), it.calls.get(lid)
        billsec = _num(ev.get("BillableSeconds"))
        if gap is None or call is None or gap.answer is None or billsec is None \
                or ev.get("Disposition") != "ANSWERED":
            return None
        leg = call.legs.get(gap.leg)
        channel = ev.get("Channel", "")
        if leg is None or channel not in (leg.channel, local_twin(leg.channel)):
            return None
        end = gap.ended.get(uid, ts)
        return lid if _move_answer(it, call, gap, end - billsec - 1 - EPS, end - billsec + EPS) else None
    return None


def _move_answer(it, call, gap: Gap, lo: float, hi: float) -> bool:
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


def _move_queued(it, call, gap: Gap, lo: float, hi: float) -> bool:
    if not gap.queued.narrow(lo, hi):
        return False
    new = gap.queued.mid
    if call.queued_at == gap.queued_at and new != gap.queued_at:
        call.queued_at = new
        it.touch(call.linkedid)
    gap.queued_at = new
    return True
