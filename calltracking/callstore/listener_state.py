"""Parts of :class:`calltracking.callstore.store.CallStore`: operators discovered from queue
members, the listener's counters (``ami_listener_state``) and the retention of stored events."""
from __future__ import annotations

import datetime as dt
import json
import time
from typing import Iterable, Optional

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from calltracking.interpret.state import base_interface
from calltracking.models import AmiCall, AmiEvent, AmiListenerState, Operator

#: The registered operators are re-read this often (operators added in the web UI count).
OPERATORS_TTL = 60.0


def _utc(ts: Optional[float]) -> Optional[dt.datetime]:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.timezone.utc)


class OperatorsAndState:
    _ops_by_iface: dict          # base interface -> (operator id, name)
    _ops_by_member: dict         # queue member name -> (operator id, name)
    _ops_until: float

    # ------------------------------------------------------------------ operators
    def _load_operators(self, s: Session) -> None:
        """The registered operators (active ones first), re-read every :data:`OPERATORS_TTL`."""
        if time.monotonic() < self._ops_until:
            return
        self._ops_by_iface, self._ops_by_member = {}, {}
        for oid, iface, member, name in s.execute(
                select(Operator.id, Operator.interface, Operator.member_name, Operator.name)
                .order_by(Operator.active.desc(), Operator.id)):
            self._remember_operator(oid, iface, member, name)
        self._ops_until = time.monotonic() + OPERATORS_TTL

    def _remember_operator(self, oid: int, iface: str, member: str, name: str) -> None:
        self._ops_by_iface.setdefault(base_interface(iface), (oid, name))
        if member:
            self._ops_by_member.setdefault(member, (oid, name))

    def _operator(self, interfaces: Iterable[str], member: str = "") -> Optional[tuple[int, str]]:
        """(id, name) of the registered operator of the first interface that has one (compared
        without Local options such as ``/n``), else of the queue member name; None if neither."""
        for iface in interfaces:
            hit = self._ops_by_iface.get(base_interface(iface)) if iface else None
            if hit is not None:
                return hit
        return self._ops_by_member.get(member) if member else None

    def _operator_id(self, interface: str, name: str) -> Optional[int]:
        hit = self._operator((interface,), name)
        return hit[0] if hit else None

    def _operators(self, s: Session, changes: list[tuple]) -> None:
        """Queue members (QueueStatus, QueueMemberAdded/Removed) -> Operator rows."""
        if not changes:
            return
        self._load_operators(s)
        for op, queue, iface, name in changes:
            iface = iface[:200]
            row = s.scalars(select(Operator).where(Operator.interface == iface)).first()
            if row is None:
                if op == "remove":
                    continue
                row = Operator(name=(name or iface)[:200], interface=iface, member_name=(name or "")[:200],
                               queues=queue)
                s.add(row)
                s.flush()
                self._remember_operator(row.id, iface, row.member_name, row.name)
                continue
            queues = [q for q in row.queues.split(",") if q]
            if op == "remove" and queue in queues:
                queues.remove(queue)
            elif op == "add" and queue not in queues:
                queues.append(queue)
            row.queues = ",".join(queues)
            if name and not row.member_name:
                row.member_name = name[:200]

    def _state(self, s: Session, st: dict) -> None:
        row = s.get(AmiListenerState, self.pbx_id)
        if row is None:
            row = AmiListenerState(pbx_id=self.pbx_id, events=0, unknown_events=0, malformed_frames=0,
                                   without_timestamp=0, classes="{}", stats="{}")
            s.add(row)
        for key in ("connected_at", "disconnected_at", "last_event_at"):
            if st.get(key) is not None:
                setattr(row, key, _utc(st[key]))
        for key in ("events", "unknown_events", "malformed_frames", "without_timestamp"):
            if key in st:
                setattr(row, key, int(st[key]))
        if st.get("clock_skew_ms") is not None:
            row.clock_skew_ms = int(st["clock_skew_ms"])
        if "classes" in st:
            merged = json.loads(row.classes or "{}")
            merged.update(st["classes"])
            row.classes = json.dumps(merged, sort_keys=True)
        if "stats" in st:
            row.stats = json.dumps(st["stats"], sort_keys=True)
        row.updated_at = dt.datetime.now(dt.timezone.utc)

    def listener_state(self) -> Optional[dict]:
        with self.factory() as s:
            row = s.get(AmiListenerState, self.pbx_id)
            if row is None:
                return None
            return {"connected_at": row.connected_at, "disconnected_at": row.disconnected_at,
                    "last_event_at": row.last_event_at, "events": row.events,
                    "unknown_events": row.unknown_events, "malformed_frames": row.malformed_frames,
                    "without_timestamp": row.without_timestamp, "clock_skew_ms": row.clock_skew_ms,
                    "classes": json.loads(row.classes or "{}"), "stats": json.loads(row.stats or "{}"),
                    "updated_at": row.updated_at}

    def purge_events(self, older_than: dt.datetime) -> int:
        """Delete stored events of finished calls older than the given time (retention)."""
        with self.factory() as s, s.begin():
            done = select(AmiCall.linkedid).where(AmiCall.pbx_id == self.pbx_id, AmiCall.live.is_(False))
            res = s.execute(delete(AmiEvent).where(AmiEvent.pbx_id == self.pbx_id, AmiEvent.at < older_than,
                                                   AmiEvent.linkedid.in_(done)))
            return res.rowcount or 0
