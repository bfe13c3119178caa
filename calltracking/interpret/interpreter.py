"""The interpreter: AMI events in, call records out. Pure (no I/O, no clock).

``Interpreter.feed(event, received_at)`` applies one event and returns the
Linkedid of the call it belongs to (the caller stores the event with that
call) or None. ``take_dirty()`` returns the calls changed since the last
call; ``evict_done()`` forgets calls whose channels are all gone. An event
a handler fails on is counted (``handler_errors``), skipped and kept in
``rejected`` for the caller to report.
"""
from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from typing import Iterable, Optional

from calltracking.interpret import gaps, reconcile
from calltracking.interpret.handlers import EVENTTYPE_MAP, IGNORED
from calltracking.interpret.legs import add_leg, answer, bridged_kind, leg_answered
from calltracking.interpret.names import is_party
from calltracking.interpret.record import run_talk_clock
from calltracking.interpret.state import CallState, Channel, QueueMember

log = logging.getLogger(__name__)

#: Finished calls remembered (their late events are dropped, not taken for a new call).
FINISHED_MEMORY = 200_000
#: Events a handler failed on kept for the caller (:attr:`Interpreter.rejected`), at most.
REJECTED_MAX = 1000


class Interpreter:
    def __init__(self):
        self.calls: dict[str, CallState] = {}
        self.channels: dict[str, Channel] = {}
        self.by_name: dict[str, str] = {}
        self.chan_call: dict[str, str] = {}            # uniqueid -> linkedid of its call
        self.leg_of: dict[str, tuple[str, str]] = {}   # channel uniqueid -> (linkedid, leg uniqueid)
        self.bridges: dict[str, set] = {}
        self.optimising: dict[str, tuple] = {}         # Local half -> (;1, ;2, peer of ;2, peer of ;1)
        self.queues: dict[str, dict[str, QueueMember]] = {}
        self.finished: OrderedDict[str, None] = OrderedDict()
        self.dirty: set[str] = set()
        self.member_changes: list[tuple[str, str, str, str]] = []   # (op, queue, interface, name)
        self.stats: Counter = Counter()
        self.unknown: Counter = Counter()
        self.mismatches: list[str] = []
        self.gaps: dict[str, gaps.Gap] = {}             # linkedid -> estimates left by a reconnect
        self.rejected: list[dict] = []                  # events a handler failed on (the caller drains it)

    # ------------------------------------------------------------------ feed
    def feed(self, ev: dict, received_at: float) -> Optional[str]:
        name = ev.get("Event", "")
        if not name:
            self.stats["responses"] += 1
            return None
        handler = EVENTTYPE_MAP.get(name) or gaps.HANDLERS.get(name)
        self.stats["events"] += 1
        if handler is None:
            if name in IGNORED:
                self.stats["ignored"] += 1
            else:
                if not self.unknown[name]:
                    log.info("unknown AMI event %r skipped (counted)", name[:60])
                self.unknown[name] += 1
                self.stats["unknown"] += 1
            return None
        raw_ts = ev.get("Timestamp")
        ts = received_at
        if raw_ts:
            try:
                ts = float(raw_ts)
            except ValueError:
                self.stats["bad_timestamp"] += 1
        lid = ev.get("Linkedid")
        if lid and lid in self.finished:
            self.stats["late"] += 1
            return None
        call = self.calls.get(lid) if lid else None
        key = None
        if raw_ts and lid:
            key = (raw_ts, name, ev.get("Uniqueid"), ev.get("DestUniqueid"), ev.get("Variable"),
                   ev.get("Value"))
            if call is not None:
                if key in call.seen:
                    self.stats["duplicate"] += 1
                    return None
                call.seen.add(key)
        used = gaps.before(self, name, ev, ts) if self.gaps else None
        if used is gaps.SKIP:
            self.stats["duplicate"] += 1
            return None
        try:
            out = handler(self, ev, ts) or used
        except Exception:  # one bad event never stops the stream: it is set aside
            self.stats["handler_errors"] += 1
            log.exception("error interpreting %s event", name[:60], extra={"linkedid": lid})
            if len(self.rejected) < REJECTED_MAX:
                self.rejected.append(ev)
            return None
        self.stats["handled"] += 1
        if out:
            c = self.calls.get(out)
            if c is not None:
                if key is not None and call is None:
                    c.seen.add(key)
                if c.last_event_at is None or ts > c.last_event_at:
                    c.last_event_at = ts
                self.dirty.add(out)
        return out

    def touch(self, lid: str) -> None:
        self.dirty.add(lid)

    def take_dirty(self) -> list[CallState]:
        out = [self.calls[lid] for lid in self.dirty if lid in self.calls]
        self.dirty = set()
        return out

    def take_member_changes(self) -> list[tuple[str, str, str, str]]:
        out, self.member_changes = self.member_changes, []
        return out

    def evict_done(self) -> list[str]:
        gone = [lid for lid, c in self.calls.items() if c.done]
        for lid in gone:
            call = self.calls.pop(lid)
            for uid in list(call.legs):
                self.leg_of.pop(uid, None)
            for uid in list(call.channels):
                self.chan_call.pop(uid, None)
            self.finished[lid] = None
            self.gaps.pop(lid, None)
        while len(self.finished) > FINISHED_MEMORY:
            self.finished.popitem(last=False)
        return gone

    def sweep(self, now: float, after: float = 3600.0) -> list[str]:
        """Mark done the calls that ended long ago but whose other channels we never saw hang up."""
        out = []
        for call in self.calls.values():
            if call.ended_at is not None and not call.done and (call.last_event_at or 0) < now - after:
                call.done = True
                out.append(call.linkedid)
        return out

    # ------------------------------------------------------------------ lookups
    def new_call(self, lid: str) -> CallState:
        call = CallState(linkedid=lid)
        self.calls[lid] = call
        return call

    def call_of(self, ev: dict) -> Optional[CallState]:
        call = self.calls.get(ev.get("Linkedid", ""))
        if call is None:
            lid = self.chan_call.get(ev.get("Uniqueid", ""))
            call = self.calls.get(lid) if lid else None
        return call

    def channel_name(self, uid: str) -> str:
        ch = self.channels.get(uid)
        return ch.name if ch else ""

    def uid_of_name(self, name: str) -> Optional[str]:
        for uid, ch in self.channels.items():
            if ch.name == name:
                return uid
        return None

    def queue_is_empty(self, queue: str) -> bool:
        members = self.queues.get(queue)
        return members is not None and not any(m.available for m in members.values())

    def drop_proxy_leg(self, call: CallState, uid: str) -> None:
        """A 'leg' that turned out to be a Local channel on the caller's side."""
        leg = call.legs.pop(uid, None)
        if leg is None:
            return
        self.leg_of.pop(uid, None)
        if call.answer_leg == uid:
            call.answered_at, call.answer_leg, call.operator, call.operator_interface = None, "", "", ""

    def alias_leg(self, old_uid: str, new_uid: str) -> None:
        ref = self.leg_of.get(old_uid)
        if ref is None:
            return
        call = self.calls.get(ref[0])
        leg = call.legs.get(ref[1]) if call else None
        if leg is None:
            return
        leg.current = new_uid
        self.leg_of[new_uid] = ref
        self.chan_call.setdefault(new_uid, ref[0])

    # ------------------------------------------------------------------ bridges
    def _calls_of(self, uids: Iterable[str]) -> set[str]:
        out = set()
        for uid in uids:
            lid = self.chan_call.get(uid)
            if lid in self.calls:
                out.add(lid)
            ref = self.leg_of.get(uid)
            if ref is not None and ref[0] in self.calls:
                out.add(ref[0])
        return out

    def enter_bridge(self, uid: str, bid: str, ts: float, name: str = "") -> set[str]:
        members = self.bridges.setdefault(bid, set())
        members.add(uid)
        ch = self.channels.get(uid)
        if ch is not None:
            ch.bridge = bid
        affected = self._calls_of(members)
        for lid in affected:
            call = self.calls[lid]
            if any(m in call.caller_side for m in members):
                for m in members:
                    ref = self.leg_of.get(m)
                    if m in call.caller_side or (ref is not None and ref[0] == lid):
                        continue         # a leg of another call (a consultation) is a stranger here
                    self._bridged_stranger(call, m, ts)
            self.sync(call, ts)
        return affected

    def _bridged_stranger(self, call: CallState, uid: str, ts: float) -> None:
        """A party we did not see being dialed joined the caller (pickup, transfer target)."""
        name = self.channel_name(uid)
        if not name or not is_party(name) or (self.gaps and gaps.no_leg(self, call, uid)):
            return
        leg = add_leg(self, call, uid, name, ts, bridged_kind(call))
        leg_answered(leg, ts)            # joining the caller's bridge is its answer
        self.chan_call.setdefault(uid, call.linkedid)
        if call.answered_at is None and not call.in_queue:
            answer(call, leg, ts)

    def leave_bridge(self, uid: str, bid: str, ts: float) -> set[str]:
        members = self.bridges.get(bid)
        if members is None:
            return set()
        affected = self._calls_of(members | {uid})
        members.discard(uid)
        if not members:
            del self.bridges[bid]
        ch = self.channels.get(uid)
        if ch is not None and ch.bridge == bid:
            ch.bridge = None
        for lid in affected:
            self.sync(self.calls[lid], ts)
        return affected

    def sync(self, call: CallState, ts: float) -> None:
        """Start or stop the talk clocks of the call and its legs after a bridge change."""
        parties: set = set()
        if call.ended_at is None:
            for uid in call.caller_side:
                ch = self.channels.get(uid)
                if ch is None or not ch.bridge:
                    continue
                for m in self.bridges.get(ch.bridge, ()):
                    if m not in call.caller_side and is_party(self.channel_name(m)):
                        parties.add(m)
        run_talk_clock(call, bool(parties), ts)
        for leg in call.legs.values():
            run_talk_clock(leg, leg.current in parties, ts)

    # ------------------------------------------------------------------ queues
    def queue_member(self, ev: dict, removed: bool = False) -> None:
        queue = ev.get("Queue", "")
        iface = ev.get("Interface") or ev.get("Location") or ""
        name = ev.get("MemberName") or ev.get("Name") or ""
        if not queue or not iface:
            return
        members = self.queues.setdefault(queue, {})
        if removed:
            if members.pop(iface, None) is not None:
                self.member_changes.append(("remove", queue, iface, name))
            return
        m = members.get(iface)
        if m is None:
            m = members[iface] = QueueMember(iface, name)
            self.member_changes.append(("add", queue, iface, name))
        if "Status" in ev:
            m.status = ev["Status"]
        if "Paused" in ev:
            m.paused = ev["Paused"] == "1"

    # ------------------------------------------------------------------ reconciliation
    def reconcile(self, snapshot: list[dict], lost_at: float, now: float) -> list[dict]:
        """Events that bring our state in line with what Asterisk still knows after a gap
        (``snapshot``: CoreShowChannel and QueueEntry frames and the listener's CTSync frame;
        ``lost_at``: the last moment we knew the calls' state). See :mod:`.reconcile`."""
        return reconcile.plan(self, snapshot, lost_at, now)
