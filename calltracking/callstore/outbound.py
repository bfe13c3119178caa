"""Part of :class:`calltracking.callstore.store.CallStore`: outbound calls -> ``outbound_calls``.

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
import time
from decimal import Decimal
from typing import Optional

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from calltracking import phone
from calltracking.interpret import outbound as ob
from calltracking.interpret.state import CallState, base_interface, name_of_interface
from calltracking.models import Call, CallLeg, Operator, OutboundCall, TrackingNumber

OPERATORS_TTL = 60.0
#: remembered classifications (linkedid -> bool); cleared when it grows beyond this
MEMORY = 100_000


def utc(ts: Optional[float]) -> Optional[dt.datetime]:
    """An event timestamp as stored (aware UTC); shared with :mod:`calltracking.callstore.store`."""
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.timezone.utc)


def dec(x: Optional[float]) -> Optional[Decimal]:
    """Seconds as stored (3 decimals)."""
    return None if x is None else Decimal(f"{x:.3f}")


class OutboundStore:
    outbound_contexts: tuple
    region: str
    pbx_id: str

    def _init_outbound(self, outbound_contexts=()) -> None:
        self.outbound_contexts = tuple(outbound_contexts or ())
        self._ob_ops: dict[str, tuple[int, str]] = {}
        self._ob_ops_until = 0.0
        self._ob_direction: dict[str, bool] = {}
        self._ob_project: dict[str, tuple] = {}

    # ------------------------------------------------------------------ classification
    def _active_operators(self, s: Session) -> dict[str, tuple[int, str]]:
        if time.monotonic() >= self._ob_ops_until:
            ops: dict[str, tuple[int, str]] = {}
            for oid, iface, name in s.execute(select(Operator.id, Operator.interface, Operator.name)
                                              .where(Operator.active.is_(True)).order_by(Operator.id)):
                ops.setdefault(base_interface(iface), (oid, name))
            self._ob_ops, self._ob_ops_until = ops, time.monotonic() + OPERATORS_TTL
        return self._ob_ops

    def _is_outbound(self, s: Session, call: CallState, via_agi: bool, stored: bool = False) -> bool:
        """``stored``: the call already has an ``outbound_calls`` row."""
        lid = call.linkedid
        known = self._ob_direction.get(lid)
        if known is not None:
            return known
        if via_agi:
            out = False
        elif stored:
            out = True
        else:
            out = ob.detect(call, self._active_operators(s), self.outbound_contexts) is not None
        if len(self._ob_direction) > MEMORY:
            self._ob_direction.clear()
        # "inbound" is only final once the first channel has been seen dialling or the call ended:
        # a click-to-call's CT_CALLBACK_FOR may arrive in the batch after its Newchannel.
        if out or call.dials or call.finished or via_agi:
            self._ob_direction[lid] = out
        return out

    # ------------------------------------------------------------------ writing
    def _stored_outbound(self, s: Session, lids: list) -> set:
        out: set = set()
        for i in range(0, len(lids), 500):
            out.update(s.scalars(select(OutboundCall.linkedid).where(
                OutboundCall.pbx_id == self.pbx_id, OutboundCall.linkedid.in_(lids[i:i + 500]))))
        return out

    def _split_outbound(self, s: Session, by_lid: dict, existing: dict) -> list[CallState]:
        """Remove outbound calls from ``by_lid`` (and their listener-made ``calls`` rows)."""
        outs = []
        stored = self._stored_outbound(s, [lid for lid in by_lid if lid not in self._ob_direction])
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
        got = self._ob_project.get(lid)
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
            if len(self._ob_project) > MEMORY:
                self._ob_project.clear()
            self._ob_project[lid] = got
        return got

    def _number(self, call: CallState) -> str:
        return ob.pick_number(ob.callee_candidates(call), lambda raw: phone.try_normalize(raw, self.region))

    def _outbound(self, s: Session, calls: list[CallState], insert_fn) -> None:
        if not calls:
            return
        ops = self._active_operators(s)
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
                "operator_id": op[0] if op else self._operator_id(iface, ""),
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
        stmt = insert_fn(s, OutboundCall.__table__)
        ex, t = stmt.excluded, OutboundCall.__table__.c
        set_ = {c: ex[c] for c in ("operator_id", "operator_name", "interface", "number", "started_at",
                                   "answered_at", "ended_at", "talk_seconds", "status", "originated_by_us",
                                   "updated_at")}
        # the latest derivation wins (it saw more of the call); a value once found is kept
        set_["project_id"] = func.coalesce(ex.project_id, t.project_id)
        set_["callback_for_id"] = func.coalesce(ex.callback_for_id, t.callback_for_id)
        s.execute(stmt.on_conflict_do_update(index_elements=["pbx_id", "linkedid"], set_=set_), rows)
