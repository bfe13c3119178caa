"""The operators the store knows: who a phone, a route or a queue member name is.

Operators are registered in the web UI or discovered from queue members (``QueueStatus``,
``QueueMemberAdded``/``Removed``: :meth:`Operators.apply_member_changes`). Both lookups are
re-read from the database every :data:`OPERATORS_TTL` seconds, so operators added in the web
UI count without a restart, and at once after :meth:`Operators.forget`.
"""
from __future__ import annotations

import time
from typing import Iterable, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from calltracking.interpret.names import base_interface
from calltracking.models import Operator

#: Seconds between re-reads of the registered operators.
OPERATORS_TTL = 60.0


class Operators:
    """Registered operators by interface (compared without Local options such as ``/n``) and by
    queue member name: every operator, active ones first (:meth:`find`); and the active ones
    only (:meth:`active`, which tells an operator's outbound call)."""

    def __init__(self) -> None:
        self._by_iface: dict[str, tuple[int, str]] = {}     # base interface -> (id, name)
        self._by_member: dict[str, tuple[int, str]] = {}    # queue member name -> (id, name)
        self._until = 0.0
        self._active: dict[str, tuple[int, str]] = {}
        self._active_until = 0.0

    def forget(self) -> None:
        """Read them again at the next use (a row rolled back or deleted must not be referenced)."""
        self._until = self._active_until = 0.0

    # ------------------------------------------------------------------ reading
    def load(self, s: Session) -> None:
        """The registered operators (active ones first), re-read every :data:`OPERATORS_TTL`."""
        if time.monotonic() < self._until:
            return
        self._by_iface, self._by_member = {}, {}
        for oid, iface, member, name in s.execute(
                select(Operator.id, Operator.interface, Operator.member_name, Operator.name)
                .order_by(Operator.active.desc(), Operator.id)):
            self._remember(oid, iface, member, name)
        self._until = time.monotonic() + OPERATORS_TTL

    def active(self, s: Session) -> dict[str, tuple[int, str]]:
        """Base interface -> (id, name) of the active operators, re-read every :data:`OPERATORS_TTL`."""
        if time.monotonic() >= self._active_until:
            ops: dict[str, tuple[int, str]] = {}
            for oid, iface, name in s.execute(select(Operator.id, Operator.interface, Operator.name)
                                              .where(Operator.active.is_(True)).order_by(Operator.id)):
                ops.setdefault(base_interface(iface), (oid, name))
            self._active, self._active_until = ops, time.monotonic() + OPERATORS_TTL
        return self._active

    def _remember(self, oid: int, iface: str, member: str, name: str) -> None:
        self._by_iface.setdefault(base_interface(iface), (oid, name))
        if member:
            self._by_member.setdefault(member, (oid, name))

    # ------------------------------------------------------------------ lookups (after load)
    def find(self, interfaces: Iterable[str], member: str = "") -> Optional[tuple[int, str]]:
        """(id, name) of the registered operator of the first interface that has one (compared
        without Local options such as ``/n``), else of the queue member name; None if neither."""
        for iface in interfaces:
            hit = self._by_iface.get(base_interface(iface)) if iface else None
            if hit is not None:
                return hit
        return self._by_member.get(member) if member else None

    def id_of(self, interface: str, name: str) -> Optional[int]:
        hit = self.find((interface,), name)
        return hit[0] if hit else None

    def named(self, phone: str, route: str, name: str) -> tuple[Optional[int], str]:
        """(operator id, name) for a leg or a call: the registered operator of the phone that
        talked, else of the route rung (queue member, Dial() interface), else of the queue
        member name; unregistered, ``name`` (the member name or the route's extension)."""
        hit = self.find((phone, route), name)
        return (hit[0], hit[1][:200]) if hit else (None, name[:200])

    # ------------------------------------------------------------------ writing
    def apply_member_changes(self, s: Session, changes: list[tuple]) -> None:
        """Queue members (``(op, queue, interface, name)``, op ``add``/``remove``) -> Operator rows:
        an unknown interface added becomes an operator; ``queues`` lists the queues it is in."""
        if not changes:
            return
        self.load(s)
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
                self._remember(row.id, iface, row.member_name, row.name)
                continue
            queues = [q for q in row.queues.split(",") if q]
            if op == "remove" and queue in queues:
                queues.remove(queue)
            elif op == "add" and queue not in queues:
                queues.append(queue)
            row.queues = ",".join(queues)
            if name and not row.member_name:
                row.member_name = name[:200]
