"""A project's keyword lists created, changed and removed, with their rules: a name of 1-100
characters unique in the project, words that :func:`calltracking.transcripts.keywords.parse`
accepts, a tag of at most 100 characters (empty: the list's name)."""
from __future__ import annotations

from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from calltracking.models import KeywordList
from calltracking.transcripts.keywords import KeywordError, normalized


def save_list(session: Session, project_id: int, name: str, words: str, tag: str = "", greeting: bool = False,
              list_id: Optional[int] = None) -> KeywordList:
    """Create (``list_id`` None) or change a list; raises :class:`KeywordError` with the reason."""
    name, tag = " ".join((name or "").split()), " ".join((tag or "").split())
    if not name or len(name) > 100:
        raise KeywordError("name", "the name is required (at most 100 characters)")
    if len(tag) > 100:
        raise KeywordError("tag", "the tag is at most 100 characters")
    text = normalized(words)
    if not text:
        raise KeywordError("empty", "the list has no word")
    same = session.scalar(select(KeywordList).where(KeywordList.project_id == project_id, KeywordList.name == name))
    if same is not None and same.id != list_id:
        raise KeywordError("duplicate", f"the project already has a list named {name}", name)
    if list_id is None:
        kl = KeywordList(project_id=project_id, name=name)
        session.add(kl)
    else:
        kl = session.get(KeywordList, list_id)
        if kl is None or kl.project_id != project_id:
            raise KeywordError("missing", "no such list")
        kl.name = name
    kl.words, kl.tag, kl.greeting = text, tag, bool(greeting)
    session.flush()
    return kl


def lists_of(session: Session, project_id: int) -> list[KeywordList]:
    return list(session.scalars(select(KeywordList).where(KeywordList.project_id == project_id)
                                .order_by(KeywordList.name, KeywordList.id)))
