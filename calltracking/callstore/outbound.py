"""Outbound calls -> ``outbound_calls`` (:class:`OutboundCalls`, used by the call store).

Which calls are outbound is decided by the pure :func:`calltracking.interpret.outbound.detect`
with the active operators' interfaces (re-read every minute, so operators added in the web
UI count without a restart) and ``[asterisk] outbound_contexts``. Once a call is outbound it
stays outbound, also for a restarted listener and ``ami rebuild`` (a row in ``outbound_calls``
keeps it so). An outbound call never reaches the ``calls`` table (reports, rollups, journal
and first/repeat logic read it as inbound calls); a row the listener itself wrote there
before it knew better is removed. A call the AGI route hook created (``via_agi``) went
through the inbound dialplan, so it is inbound whatever its first channel.

Rows are upserted by ``(pbx_id, linkedid)`` with values derived from the call state only:
applying the same state twice (listener restart, ``ami rebuild``) writes the same row.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from calltracking import phone
from calltracking.callstore.operators import Operators
from calltracking.callstore.rows import CHUNK, dec, upsert, utc
from calltracking.interpret import outbound as ob
from calltracking.interpret.names import base_interface, name_of_interface
from calltracking.interpret.state import CallState
from calltracking.models import Call, CallLeg, OutboundCall, TrackingNumber

#: remembered classifications (linkedid -> bool); cleared when it grows beyond this
MEMORY = 100_000


class OutboundCalls:
    """Tells the calls operators placed from inbound ones and keeps their ``outbound_calls`` rows."""

    def __init__(self, pbx_id: str, region: str, operators: Operators, outbound_contexts: Iterable[str] = ()):
        self.pbx_id = pbx_id
        self.region = region
        self.operators = operators
        self.outbound_contexts = tuple(outbound_contexts or ())
        self._direction: dict[str, bool] = {}      # linkedid -> outbound, once final
        self._project: dict[str, tuple] = {}       # linkedid -> _project_of(), once final

    # ------------------------------------------------------------------ classification
    def _is_outbound(self, s: Session, call: CallState, via_agi: bool, stored: bool = False) -> bool:
        """``stored``: the call already has an ``outbound_calls`` row."""
        lid = call.linkedid
        known = self._direction.get(lid)
        if known is not None:
            return known
        if via_agi:
            out = False
        elif stored:
            out = True
        else:
            out = ob.detect(call, self.operators.active(s), self.outbound_contexts) is not None
        if len(self._direction) > MEMORY:
            self._direction.clear()
        # "inbound" is only final once the first channel has been seen dialling or the call ended:
        # a click-to-call's CT_CALLBACK_FOR may arrive in the batch after its Newchannel.
        if out or call.dials or call.finished or via_agi:
            self._direction[lid] = out
        return out

    # ------------------------------------------------------------------ writing
    def _stored_outbound(self, s: Session, lids: list) -> set:
        out: set = set()
        for i in range(0, len(lids), CHUNK):
            out.update(s.scalars(select(OutboundCall.linkedid).where(
                OutboundCall.pbx_id == self.pbx_id, OutboundCall.linkedid.in_(lids[i:i + CHUNK]))))
        return out

    def split(self, s: Session, by_lid: dict, existing: dict) -> list[CallState]:
        """Take the outbound calls out of ``by_lid`` (linkedid -> call) and delete the ``calls``
        rows the listener made for them (``existing``: linkedid -> the row's columns); the
        outbound calls taken."""
        outs = []
        stored = self._stored_outbound(s, [lid for lid in by_lid if lid not in self._direction])
        for lid, call in list(by_lid.items()):
            row = existing.get(lid)
            if self._is_outbound(s, call, bool(row is not None and row.via_agi), lid in stored):
                outs.append(by_lid.pop(lid))
                if row is not None:
                    s.execute(delete(CallLeg).where(CallLeg.call_id == row.id))
                    s.execute(delete(Call).where(Call.id == row.id))
                    existing.pop(lid)
        return outs

    def _project_of(self, s: Session, call: CallState) -> tuple:
        """(project_id, callback_for_id, missed caller number) of an outbound call, from what the
        call shows so far; remembered once final: the call ended, or our click-to-call's missed
        call was found (``CT_CALLBACK_FOR`` and the caller ID may come in any batch)."""
        lid = call.linkedid
        got = self._project.get(lid)
        if got is not None:
            return got
        project_id = callback_id = None
        missed_number = ""
        cid = ob.callback_for(call)
        if cid is not None:
            row = s.execute(select(Call.id, Call.project_id, Call.caller_number).where(Call.id == cid)).first()
            if row is not None:
                callback_id, project_id, missed_number = row.id, row.project_id, row.caller_number
        if project_id is None and call.caller_number:
            # the caller ID the operator presented is one of our tracking numbers: that project
            e164 = phone.try_normalize(call.caller_number, self.region)
            if e164:
                project_id = s.scalar(select(func.min(TrackingNumber.project_id)).where(
                    TrackingNumber.number == e164, TrackingNumber.active.is_(True)))
        got = (project_id, callback_id, missed_number)
        if call.finished or callback_id is not None:
            if len(self._project) > MEMORY:
                self._project.clear()
            self._project[lid] = got
        return got

    def _number(self, call: CallState) -> str:
        return ob.pick_number(ob.callee_candidates(call), lambda raw: phone.try_normalize(raw, self.region))

    def write(self, s: Session, calls: list[CallState]) -> None:
        """Upsert the ``outbound_calls`` rows of ``calls`` (those with an outside number)."""
        if not calls:
            return
        ops = self.operators.active(s)
        now = dt.datetime.now(dt.timezone.utc)
        rows = []
        for call in calls:
            rec = call.record()
            project_id, callback_id, missed_number = self._project_of(s, call)
            number = self._number(call) or missed_number
            if not number:
                continue      # operator to operator, or nothing dialled yet: not an outside call
            iface = ob.first_interface(call)
            # the registered operator of the phone that answered, else of the first channel
            op = next((ops[k] for k in map(base_interface, ob.operator_side(call)) if k in ops), None)
            status = rec["status"]
            rows.append({
                "pbx_id": self.pbx_id, "linkedid": call.linkedid[:64], "project_id": project_id,
                "operator_id": op[0] if op else self.operators.id_of(iface, ""),
                "operator_name": (op[1] if op else (call.caller_name or name_of_interface(iface)))[:200],
                "interface": iface[:200], "number": number[:32],
                "started_at": utc(rec["started_at"]), "answered_at": utc(rec["answered_at"]),
                "ended_at": utc(rec["ended_at"]),
                "talk_seconds": dec(rec["talk_seconds"]),
                "status": status, "originated_by_us": ob.originated_by_us(call),
                "callback_for_id": callback_id, "created_at": now, "updated_at": now,
            })
        if not rows:
            return
        stmt = upsert(s, OutboundCall.__table__)
        ex, t = stmt.excluded, OutboundCall.__table__.c
        set_ = {c: ex[c] for c in ("operator_id", "operator_name", "interface", "number", "started_at",
                                   "answered_at", "ended_at", "talk_seconds", "status", "originated_by_us",
                                   "updated_at")}
        # the latest derivation wins (it saw more of the call); a value once found is kept
        set_["project_id"] = func.coalesce(ex.project_id, t.project_id)
        set_["callback_for_id"] = func.coalesce(ex.callback_for_id, t.callback_for_id)
        s.execute(stmt.on_conflict_do_update(index_elements=["pbx_id", "linkedid"], set_=set_), rows)
