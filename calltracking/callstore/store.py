"""Applying interpreted call state to the database: the call store of one PBX.

Everything happens in one transaction per batch (:meth:`CallStore.persist`): the events that
changed calls and the live-call index (:mod:`~calltracking.callstore.events`), the Call rows
(upsert by ``(pbx_id, linkedid)``), their legs (upsert by ``(call_id, uniqueid)``), operators
discovered from queue members (:mod:`~calltracking.callstore.operators`), and the listener's
counters (:mod:`~calltracking.callstore.listener_state`).

The AGI hook may create the Call row first (``via_agi``): the listener then
only writes the fields it owns (times, durations, status, operator, queue
joined, recording) and keeps the attribution. A call that never passed the
hook is attributed here when its DID is a tracked number, and not recorded
at all otherwise. Calls an operator placed (outbound, see
:mod:`calltracking.interpret.outbound`) go to ``outbound_calls`` instead
(:mod:`calltracking.callstore.outbound`). Applying the same state twice writes the same values.
"""
from __future__ import annotations

import datetime as dt
import time
from typing import Iterable, Optional

from sqlalchemy import case, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from calltracking import phone
from calltracking.attribution import routing
from calltracking.attribution.lookup import attribute, first_call_window, is_first_call
from calltracking.callbacks import link as callback_link
from calltracking.callstore.events import EventLog
from calltracking.callstore.listener_state import ListenerState
from calltracking.callstore.operators import Operators
from calltracking.callstore.outbound import OutboundCalls
from calltracking.callstore.rows import CHUNK, dec, update_by_id, upsert, utc
from calltracking.enums import AttributionKind, NumberKind
from calltracking.interpret import Interpreter
from calltracking.interpret.state import CallState
from calltracking.models import Call, CallLeg, Project

#: Call columns the listener owns (always written on update).
OWNED = ("started_at", "queued_at", "answered_at", "ended_at", "wait_seconds", "queue_wait_seconds",
         "talk_seconds", "hold_seconds", "status", "missed_reason", "operator_id", "operator_name",
         "closed_reason")
#: Seconds the attribution of a static or unknown DID is remembered (pool numbers: never).
DID_CACHE_SECONDS = 30.0
#: Remembered call attributions (linkedid -> values); cleared when it grows beyond this.
MEMORY = 100_000


class CallStore:
    """The call store of one PBX. ``factory`` makes the sessions; the parts it delegates to work
    in its sessions: ``operators`` (:class:`Operators`), ``outbound`` (:class:`OutboundCalls`),
    ``event_log`` (:class:`EventLog`), ``state`` (:class:`ListenerState`)."""

    def __init__(self, factory: sessionmaker, pbx_id: str, region: str = "RU", window_days: int = 0,
                 outbound_contexts: Iterable[str] = ()):
        self.factory = factory
        self.pbx_id = pbx_id
        self.region = region
        self.window_days = window_days
        self.operators = Operators()
        self.outbound = OutboundCalls(pbx_id, region, self.operators, outbound_contexts)
        self.event_log = EventLog(pbx_id)
        self.state = ListenerState(pbx_id)
        self._attribution: dict[str, tuple] = {}   # linkedid -> (DID, values or None if untracked)
        self._by_did: dict[str, tuple[float, Optional[dict]]] = {}
        self._windows: dict = {}

    # ------------------------------------------------------------------ reading
    def load_live_events(self) -> list[tuple[dict, float]]:
        """The stored events of the calls that were live, to replay at a restart."""
        with self.factory() as s:
            return self.event_log.live_events(s)

    def events_since(self, since: dt.datetime) -> list[tuple[dict, float]]:
        with self.factory() as s:
            return self.event_log.since(s, since)

    def rebuild(self, since: dt.datetime) -> tuple[int, int]:
        """Re-derive the calls active since ``since`` from their stored events, exactly as the
        live listener derived them (same interpreter, same store rules); (calls, events)."""
        events = self.events_since(since)
        it = Interpreter()
        for ev, recv in events:
            it.feed(ev, recv)
        calls = it.take_dirty()
        self.persist([], calls, done=[c.linkedid for c in calls if c.done], force=True)
        return len(calls), len(events)

    def finished_among(self, lids: Iterable[str]) -> set[str]:
        lids = list(lids)
        if not lids:
            return set()
        with self.factory() as s:
            return self.event_log.finished_among(s, lids)

    def last_event_at(self) -> Optional[float]:
        with self.factory() as s:
            return self.state.last_event_at(s)

    def listener_state(self) -> Optional[dict]:
        with self.factory() as s:
            return self.state.read(s)

    def purge_events(self, older_than: dt.datetime) -> int:
        """Delete stored events of finished calls older than the given time (retention)."""
        with self.factory() as s, s.begin():
            return self.event_log.purge(s, older_than)

    def forget(self) -> None:
        """Read again from the database what is remembered between batches (registered operators,
        the attribution of DIDs and calls, projects' windows): a row rolled back with a failed
        write, or deleted meanwhile (an operator, a number), must not be written as a reference."""
        self.operators.forget()
        self._attribution.clear()
        self._by_did.clear()
        self._windows.clear()

    # ------------------------------------------------------------------ writing
    def persist(self, events: list[dict], calls: list[CallState], done: Iterable[str] = (),
                member_changes: Iterable[tuple] = (), state: Optional[dict] = None,
                force: bool = False) -> None:
        """Write one batch in one transaction. Raises on database errors: the caller retries, or
        looks for the event whose values the database refuses (:mod:`calltracking.callstore.ingest`)."""
        done = set(done)
        try:
            with self.factory() as s, s.begin():
                self.event_log.add(s, events)
                self.operators.apply_member_changes(s, list(member_changes))
                recorded = self._calls(s, calls, force)
                self.event_log.index(s, calls, done, recorded)
                if state:
                    self.state.write(s, state)
        except BaseException:
            self.forget()       # rows the caches learnt in this transaction (a new operator) are gone
            raise

    def _attribute(self, s: Session, call: CallState, rec: dict) -> Optional[dict]:
        """The attribution of a call the AGI hook did not see, by its DID; None while the DID
        is not a number yet (a later event may bring it) or is not a tracked number."""
        lid, did = call.linkedid, rec["did"]
        known = self._attribution.get(lid)
        if known is not None and known[0] == did:
            return known[1]
        token = callback_link.token_of(call.ct)
        if token:           # the PBX calling a website callback request back
            values = callback_link.attribution(s, token)
            self._attribution[lid] = (did, values)
            return values
        if not did or not did.lstrip("+").isdigit() or rec["started_at"] is None:
            return None
        started = utc(rec["started_at"])
        cached = self._by_did.get(rec["did"])
        if cached is not None and cached[0] > time.monotonic():
            values = cached[1]
        else:
            att = attribute(s, rec["did"], started, self.region)
            if att.tracking_number is None:
                values = None
            else:
                values = dict(project_id=att.project_id, tracking_number_id=att.tracking_number.id,
                              did=att.did[:32], source_id=att.source_id, campaign_id=att.campaign_id,
                              session_id=att.session_id, attribution=att.kind,
                              attribution_confidence=att.confidence, candidate_count=att.candidate_count,
                              time_to_call_seconds=att.time_to_call(started),
                              record=routing.records(None, att.tracking_number.record,
                                                     att.kind != AttributionKind.NONE))
            # Static and unknown numbers do not depend on the time: remember them briefly.
            if values is None or att.tracking_number.kind == NumberKind.STATIC:
                self._by_did[rec["did"]] = (time.monotonic() + DID_CACHE_SECONDS, values)
        self._attribution[lid] = (did, values)
        if len(self._attribution) > MEMORY:
            self._attribution.clear()
        return values

    def _window(self, s: Session, project_id: Optional[int]) -> int:
        if project_id not in self._windows:
            p = s.get(Project, project_id) if project_id is not None else None
            self._windows[project_id] = p.first_call_window_days if p is not None else 0
        return first_call_window(self._windows[project_id], self.window_days)

    def _owned(self, rec: dict) -> dict:
        op_id, op_name = (self.operators.named(rec["operator_interface"], rec["operator_route"], rec["operator_name"])
                          if rec["answered_at"] is not None else (None, ""))
        return {
            "started_at": utc(rec["started_at"]), "queued_at": utc(rec["queued_at"]),
            "answered_at": utc(rec["answered_at"]), "ended_at": utc(rec["ended_at"]),
            "wait_seconds": dec(rec["wait_seconds"]), "queue_wait_seconds": dec(rec["queue_wait_seconds"]),
            "talk_seconds": dec(rec["talk_seconds"]), "hold_seconds": dec(rec["hold_seconds"]),
            "status": rec["status"], "missed_reason": rec["missed_reason"],
            "operator_id": op_id, "operator_name": op_name, "closed_reason": rec["closed_reason"][:40],
        }

    def _calls(self, s: Session, calls: list[CallState], force: bool) -> set:
        if not calls:
            return set()
        self.operators.load(s)
        by_lid = {c.linkedid: c for c in calls}
        lids = list(by_lid)
        existing = {}
        for i in range(0, len(lids), CHUNK):
            for row in s.execute(select(Call.id, Call.linkedid, Call.via_agi, Call.project_id,
                                        Call.first_call, Call.caller_number, Call.did, Call.queue,
                                        Call.recording_file)
                                 .where(Call.pbx_id == self.pbx_id, Call.linkedid.in_(lids[i:i + CHUNK]))):
                existing[row.linkedid] = row
        # outbound calls (an operator dialling out) go to outbound_calls, never to calls
        self.outbound.write(s, self.outbound.split(s, by_lid, existing))
        now = dt.datetime.now(dt.timezone.utc)
        updates, inserted, inserts = [], [], []
        recs = {}
        for lid, call in by_lid.items():
            rec = recs[lid] = call.record()
            caller = phone.caller_number(rec["caller_number"], self.region)
            owned = self._owned(rec)
            row = existing.get(lid)
            if row is not None:
                values = dict(owned, id=row.id, updated_at=now)
                if rec["queue"]:
                    values["queue"] = rec["queue"][:80]
                if rec["recording_file"] and not row.recording_file:
                    values["recording_file"] = rec["recording_file"][:500]
                if caller and not row.caller_number:
                    values["caller_number"] = caller
                    values["caller_name"] = rec["caller_name"][:200]
                if not row.did and rec["did"]:
                    values["did"] = (phone.try_normalize(rec["did"], self.region) or rec["did"])[:32]
                if row.first_call is None and caller and owned["started_at"] is not None:
                    values["first_call"] = is_first_call(s, row.project_id, caller, owned["started_at"],
                                                         self._window(s, row.project_id), exclude_call_id=row.id)
                updates.append(values)
                continue
            att = self._attribute(s, call, rec)
            if att is None:
                continue          # untracked DID and no AGI row: not recorded (yet)
            values = dict(att, **owned, pbx_id=self.pbx_id, linkedid=lid, caller_number=caller,
                          caller_name=rec["caller_name"][:200], queue=rec["queue"][:80],
                          recording_file=rec["recording_file"][:500], via_agi=False,
                          created_at=now, updated_at=now, first_call=None)
            inserts.append(values)
            inserted.append(lid)
        if inserts:
            self._first_calls(s, inserts)
            stmt = upsert(s, Call.__table__)
            ex, t = stmt.excluded, Call.__table__.c
            set_ = {c: ex[c] for c in OWNED}
            set_["queue"] = case((ex.queue != "", ex.queue), else_=t.queue)
            set_["recording_file"] = case((t.recording_file == "", ex.recording_file), else_=t.recording_file)
            set_["caller_number"] = case((t.caller_number == "", ex.caller_number), else_=t.caller_number)
            set_["first_call"] = func.coalesce(t.first_call, ex.first_call)
            set_["updated_at"] = ex.updated_at
            s.execute(stmt.on_conflict_do_update(index_elements=["pbx_id", "linkedid"], set_=set_), inserts)
        if updates:
            update_by_id(s, Call.__table__, updates)
        ids = {lid: row.id for lid, row in existing.items()}
        for i in range(0, len(inserted), CHUNK):
            for cid, lid in s.execute(select(Call.id, Call.linkedid).where(
                    Call.pbx_id == self.pbx_id, Call.linkedid.in_(inserted[i:i + CHUNK]))):
                ids[lid] = cid
        self._legs(s, {ids[lid]: recs[lid]["legs"] for lid in ids})
        callback_link.record_attempts(s, {ids[lid]: recs[lid] for lid in ids
                                          if callback_link.token_of(recs[lid]["ct"])})
        return set(ids)

    def _first_calls(self, s: Session, rows: list[dict]) -> None:
        """first_call of new rows: one query per project (window 0), else the per-call check."""
        groups: dict = {}
        for v in rows:
            c = v["caller_number"]
            if c and c.lstrip("+").isdigit() and v["started_at"] is not None:
                groups.setdefault(v["project_id"], []).append(v)
        for pid, group in groups.items():
            window = self._window(s, pid)
            if window:
                for v in group:
                    v["first_call"] = is_first_call(s, pid, v["caller_number"], v["started_at"], window)
                continue
            callers = list({v["caller_number"] for v in group})
            earliest: dict = {}
            for i in range(0, len(callers), CHUNK):
                cond = [Call.caller_number.in_(callers[i:i + CHUNK]), Call.pbx_id.isnot(None)]
                cond.append(Call.project_id == pid if pid is not None else Call.project_id.is_(None))
                for num, first in s.execute(select(Call.caller_number, func.min(Call.started_at))
                                            .where(*cond).group_by(Call.caller_number)):
                    if first is not None:
                        earliest[num] = first
            for v in sorted(group, key=lambda v: v["started_at"]):
                e = earliest.get(v["caller_number"])
                v["first_call"] = e is None or e >= v["started_at"]
                if e is None or v["started_at"] < e:
                    earliest[v["caller_number"]] = v["started_at"]

    def _legs(self, s: Session, calls: dict[int, list]) -> None:
        """Upsert the leg records (``call.record()["legs"]``) of each call id; rows of legs the
        call no longer has are deleted (the listener owns every leg row)."""
        wanted = calls
        if not wanted:
            return
        have = {}
        cids = list(wanted)
        for i in range(0, len(cids), CHUNK):
            for lid_, cid, uid in s.execute(select(CallLeg.id, CallLeg.call_id, CallLeg.uniqueid)
                                            .where(CallLeg.call_id.in_(cids[i:i + CHUNK]))):
                have[(cid, uid)] = lid_
        new, upd = [], []
        current = {(cid, r["uniqueid"][:64]) for cid, legs in wanted.items() for r in legs}
        stale = [row_id for key, row_id in have.items() if key not in current]
        if stale:       # a leg the interpretation dropped since (a proxy Local channel): no phantom
            s.execute(delete(CallLeg).where(CallLeg.id.in_(stale)))
        for cid, legs in wanted.items():
            for r in legs:
                op_id, op_name = self.operators.named(r["interface"], r["route"], r["operator_name"])
                values = {
                    "operator_id": op_id, "operator_name": op_name, "interface": r["interface"][:200],
                    "channel": r["channel"][:200], "queue": r["queue"][:80], "kind": r["kind"][:12],
                    "rung_at": utc(r["rung_at"]), "answered_at": utc(r["answered_at"]),
                    "ended_at": utc(r["ended_at"]), "ring_seconds": dec(r["ring_seconds"]),
                    "talk_seconds": dec(r["talk_seconds"]), "outcome": r["outcome"],
                }
                key = (cid, r["uniqueid"][:64])
                if key in have:
                    upd.append(dict(values, id=have[key]))
                else:
                    new.append(dict(values, call_id=cid, uniqueid=key[1]))
        if new:
            s.execute(CallLeg.__table__.insert(), new)
        if upd:
            update_by_id(s, CallLeg.__table__, upd)
