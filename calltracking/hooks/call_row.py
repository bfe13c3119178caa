"""The call row the hooks write: one upsert keyed by ``(pbx_id, linkedid)``.

The AMI listener may have created the row first (or a hook of the same call did): an
upsert never loses what is already there. It replaces the columns the hook names in
``overwrite`` (``route`` and ``promo`` list theirs); ``started_at``, ``project_id``,
``tracking_number_id`` and ``first_call`` keep their first value; ``did``,
``caller_number`` and ``caller_name`` are filled only while empty; ``via_agi`` and
``updated_at`` always take the hook's.
"""
from __future__ import annotations

from functools import lru_cache

from sqlalchemy import case, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from calltracking.models import Call

#: Columns whose first value stays (unless the hook overwrites them).
_KEEP_FIRST = ("started_at", "project_id", "tracking_number_id", "first_call")
#: Columns filled only while empty.
_FILL_EMPTY = ("did", "caller_number", "caller_name")


def upsert(session: Session, values: dict, overwrite: tuple[str, ...]) -> None:
    """Insert the call ``values`` or update the row another writer created first."""
    stmt = statement(session.get_bind().dialect.name, tuple(sorted(values)), overwrite)
    session.connection().execute(stmt, values)


@lru_cache(maxsize=64)
def statement(dialect: str, keys: tuple[str, ...], overwrite: tuple[str, ...]):
    """``INSERT ... ON CONFLICT (pbx_id, linkedid) DO UPDATE`` for rows with the columns
    ``keys``, built once per shape (building it costs more than running it)."""
    table = Call.__table__
    stmt = insert(dialect, table)
    ex = stmt.excluded
    set_ = {c: ex[c] for c in overwrite if c in keys}
    for c in _KEEP_FIRST:
        if c in keys and c not in overwrite:
            set_[c] = func.coalesce(table.c[c], ex[c])
    for c in _FILL_EMPTY:
        if c in keys:
            set_[c] = case((table.c[c] == "", ex[c]), else_=table.c[c])
    set_["via_agi"] = ex.via_agi
    set_["updated_at"] = ex.updated_at
    return stmt.on_conflict_do_update(index_elements=["pbx_id", "linkedid"], set_=set_)


def insert(dialect: str, table):
    """The dialect's ``INSERT`` (it has ``ON CONFLICT``): PostgreSQL's, else SQLite's."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
