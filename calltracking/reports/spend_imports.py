"""Ad-spend import batches: each CSV import (the web upload, ``spend import``) is one
:class:`~calltracking.models.AdSpendImport` per project it touched, and every row it wrote or
replaced points to it. Deleting a batch removes exactly the rows that still point to it (a row
replaced by a later import belongs to the later one); rows added otherwise have no batch."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Optional

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from calltracking.models import AdSpend, AdSpendImport, Project


def start_batches(session: Session, project_ids, file_name: str, imported_by: str) -> dict[int, AdSpendImport]:
    """One new batch per project (flushed: they have their ids), empty until :func:`count_row`."""
    out = {}
    for pid in sorted(set(project_ids)):
        b = AdSpendImport(project_id=pid, file_name=(file_name or "")[:255], imported_by=(imported_by or "")[:100],
                          rows=0, total=Decimal(0), currency=None)
        session.add(b)
        out[pid] = b
    session.flush()
    return out


def count_row(batch: AdSpendImport, amount: Decimal, currency: str, first: bool) -> None:
    """Add one row to the batch's figures; ``currency`` becomes NULL once two differ."""
    batch.rows += 1
    batch.total = Decimal(batch.total) + amount
    if first:
        batch.currency = currency
    elif batch.currency != currency:
        batch.currency = None


@dataclass
class ImportRow:
    id: int
    project: str
    file_name: str
    imported_by: str
    imported_at: dt.datetime
    rows: int
    total: Decimal
    currency: Optional[str]
    rows_now: int                   # rows still pointing to the batch


def list_imports(session: Session, project_id: Optional[int] = None, limit: int = 100,
                 import_id: Optional[int] = None) -> list[ImportRow]:
    """The newest batches (of one project, or all; or the one ``import_id``), with how many of
    their rows are left."""
    left = (select(AdSpend.import_id, func.count(AdSpend.id).label("n"))
            .where(AdSpend.import_id.is_not(None)).group_by(AdSpend.import_id).subquery())
    stmt = (select(AdSpendImport, Project.name, func.coalesce(left.c.n, 0))
            .join(Project, Project.id == AdSpendImport.project_id)
            .outerjoin(left, left.c.import_id == AdSpendImport.id))
    if project_id is not None:
        stmt = stmt.where(AdSpendImport.project_id == project_id)
    if import_id is not None:
        stmt = stmt.where(AdSpendImport.id == import_id)
    rows = session.execute(stmt.order_by(AdSpendImport.imported_at.desc(), AdSpendImport.id.desc()).limit(limit))
    return [ImportRow(b.id, pname, b.file_name, b.imported_by, b.imported_at, b.rows, Decimal(b.total),
                      b.currency, int(n)) for b, pname, n in rows]


def delete_import(session: Session, import_id: int) -> Optional[tuple[AdSpendImport, int]]:
    """Delete a batch and exactly its rows: (the batch as it was, rows deleted); None if unknown."""
    batch = session.get(AdSpendImport, import_id)
    if batch is None:
        return None
    n = session.execute(delete(AdSpend).where(AdSpend.import_id == import_id)).rowcount or 0
    session.delete(batch)
    session.flush()
    return batch, n
