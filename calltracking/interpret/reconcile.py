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
for a window of whole seconds. This module turns the snapshot into events; what queue_log
says is read in :mod:`.queuelog`; the estimates left and how later events narrow them are
:mod:`.gaps`.
"""
from __future__ import annotations

import math
from typing import Optional

from calltracking.interpret import queuelog
from calltracking.interpret.gaps import EPS, Away, Gap, Registry, Timeline, Window, as_read, hms, number, second, stamp
from calltracking.interpret.names import is_outside_number, local_twin
from calltracking.interpret.queuelog import RING_ENDS, QLine

#: Applications of the channel a Queue() or Dial() rings (CoreShowChannel ``Application``).
DIALLED_APPS = ("AppQueue", "AppDial")


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


# ------------------------------------------------------------------ the plan
def clock(it, sync: dict, channels: list[dict], fallback: float) -> float:
    """Asterisk's time at the snapshot (see the module's rules)."""
    ping = number(sync.get("Timestamp")) if sync else None
    lo, hi = -math.inf, math.inf
    for f in channels:
        ch = it.channels.get(f.get("Uniqueid", ""))
        d = hms(f.get("Duration"))
        if ch is None or ch.created_at is None or d is None:
            continue
        lo, hi = max(lo, ch.created_at + d - EPS), min(hi, ch.created_at + d + 1 + EPS)
    if lo > -math.inf and lo <= hi:
        if ping is not None and lo - 1 <= ping <= hi + 1:
            return as_read(ping)
        return as_read((lo + hi) / 2)
    return as_read(ping if ping is not None else fallback)


def created(frame: dict, back: float) -> Window:
    """When a channel of the snapshot was created: ``back - Duration``, narrowed by its Uniqueid."""
    d = hms(frame.get("Duration")) or 0.0
    w = Window(back - d - 1, back - d)
    e = _epoch(frame.get("Uniqueid", ""))
    if e is not None:
        w.narrow(e - EPS, e + 1 + EPS)
    return w


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
    lost_at = number(sync.get("_lost")) or lost_at
    lost = min(lost_at, back) if lost_at is not None else back
    ctx = _Plan(it, back, lost, chans, entries, sync)
    out: list[dict] = []
    for lid in ctx.call_ids():
        out += ctx.call(lid)
    for row in ctx.orphans:
        out += ctx.orphan(row)
    return out


class _Plan:
    """The reconciliation of one snapshot: its inputs indexed, then one call at a time."""

    def __init__(self, it, back, lost, chans, entries, sync):
        self.it, self.back, self.lost = it, back, lost
        self.live = {f["Uniqueid"]: f for f in chans}
        self.entries = entries
        self.new = {uid: created(f, back) for uid, f in self.live.items() if uid not in it.channels}
        self.reg = Registry(it.queues, sync.get("_operators"))
        self.away = Away(it, lost, back, self.reg)
        self.queue_log = queuelog.Lines(sync.get("_queue_log"))
        self.orphans = sync.get("_orphans") or []

    # ------------------------------------------------------------------ inputs
    def qlog(self, callids) -> list[QLine]:
        """queue_log lines of these channels since the gap began (the file is read once)."""
        self.queue_log.load(min([self.lost] + [w.lo for w in self.new.values()]
                                + [number(o.get("started_at")) or self.lost for o in self.orphans]) - 2)
        return self.queue_log.of(callids)

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
        tl = Timeline()
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
            wait, at = (number(entry.get("Wait")), number(entry.get("Timestamp"))) if entry else (None, None)
            if wait is not None and at is not None:
                evidence |= w.narrow(*second(math.floor(at) - wait))
            for q in qlines:
                if q.event == "ENTERQUEUE":
                    evidence |= w.narrow(*second(q.at))
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
                    w.narrow(*second(q.at))
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
            queuelog.gone(self.away, tl, call, gone, side, qlines, rings)
        queuelog.rung_meanwhile(self.away, tl, call, lid, inbound, names, rings)
        out = tl.events()
        if not out and not tl.channels:
            return []
        head = {"Event": "CTGap", "Linkedid": lid, "Timestamp": stamp(back),
                "Value": f"lost={stamp(gap.lost)};strangers={','.join(sorted(gap.strangers))}"}
        tail = []
        parts = []
        if gap.answer is not None:
            parts.append(f"answer={stamp(gap.answer.lo)},{stamp(gap.answer.hi)},{stamp(gap.answer_at)},{gap.leg}")
        if gap.queued is not None:
            parts.append(f"queued={stamp(gap.queued.lo)},{stamp(gap.queued.hi)},{stamp(gap.queued_at)}")
        if parts:
            tail = [{"Event": "CTGap", "Linkedid": lid, "Timestamp": stamp(back), "Value": ";".join(parts)}]
        return [*tl.channels, head, *out, *tail]

    def orphan(self, row: dict) -> list[dict]:
        """A call that began and ended while we were away, known only from the FastAGI hook's
        ``row`` and queue_log (:func:`.queuelog.orphan`); nothing when the call is known, is
        in the snapshot, or began after it."""
        it, lid = self.it, row.get("linkedid", "")
        started = number(row.get("started_at"))
        if not lid or started is None or lid in it.calls or lid in it.finished or started > self.back \
                or lid in self.frames_of:
            return []
        started = as_read(started)
        self.qlog(())
        lines = self.queue_log.of_orphan(row, started, self.back, set(it.chan_call) | set(self.live))
        return queuelog.orphan(self.away, row, started, lines)

    def _inbound(self, lid: str, frames: list[dict]) -> str:
        """The inbound channel of an adopted call (as :func:`.channels.on_newchannel` decides)."""
        first = self.live.get(lid, {}).get("Channel", "")
        twin = local_twin(first)
        if twin and twin.endswith(";2"):
            for f in frames:
                if f.get("Channel") == twin and is_outside_number(f.get("Exten", "")):
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
