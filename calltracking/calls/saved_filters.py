"""A user's saved journal filters: a name and the journal's query string (filter keys only)."""
from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from calltracking.models import SavedFilter

#: the query-string keys of the journal's filter form (and its order) that a saved filter keeps
KEYS = ("from", "to", "project", "source", "campaign", "status", "operator", "first", "target", "tag", "caller",
        "name", "q", "sort")
MAX_PER_USER = 50


class SavedFilterError(ValueError):
    """The filter cannot be saved (message is user-facing)."""


def for_user(session: Session, user_id: int) -> list[SavedFilter]:
    return list(session.scalars(select(SavedFilter).where(SavedFilter.user_id == user_id)
                                .order_by(SavedFilter.name)))


def query_of(args) -> str:
    """The filter keys of ``args`` (a mapping of the query string) that are set, as a query string."""
    return urlencode([(k, str(args.get(k)).strip()) for k in KEYS if str(args.get(k) or "").strip()])


def as_args(saved: SavedFilter) -> dict:
    return {k: v for k, v in parse_qsl(saved.query) if k in KEYS}


def save(session: Session, user_id: int, name: str, args) -> SavedFilter:
    """Save (or replace) the filter ``name`` of the user."""
    name = (name or "").strip()
    if not name:
        raise SavedFilterError("a saved filter needs a name")
    if len(name) > 100:
        raise SavedFilterError("a filter name is at most 100 characters")
    query = query_of(args)
    found = session.scalars(select(SavedFilter).where(SavedFilter.user_id == user_id,
                                                      SavedFilter.name == name)).first()
    if found is None:
        if len(for_user(session, user_id)) >= MAX_PER_USER:
            raise SavedFilterError(f"at most {MAX_PER_USER} saved filters per user")
        found = SavedFilter(user_id=user_id, name=name, query=query)
        session.add(found)
    else:
        found.query = query
    session.flush()
    return found


def delete(session: Session, user_id: int, filter_id: int) -> bool:
    found = session.get(SavedFilter, filter_id)
    if found is None or found.user_id != user_id:
        return False
    session.delete(found)
    return True
