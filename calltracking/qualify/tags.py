"""Predefined tags: a project's tags with a colour and a description, offered in the call card's
tag picker. Free tags (typed on the card, put by the IVR or a rule) are ordinary rows of the same
``tags`` table, not offered until an admin says so.

A tag's name is not empty, at most 100 characters, unique in its project; its colour is empty or
``#rrggbb`` (stored lower case, so a page may put it in a ``style`` attribute as it is); its
description at most 500 characters.
"""
from __future__ import annotations

import re
from typing import Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from calltracking import settings_rules
from calltracking.models import Project, Tag, call_tags
from calltracking.settings_rules import ServiceError

COLOR = re.compile(r"#[0-9a-fA-F]{6}")


def color(value: Optional[str]) -> str:
    """Empty or ``#rrggbb`` (returned lower case)."""
    value = (value or "").strip()
    if value and not COLOR.fullmatch(value):
        raise ServiceError(f"invalid colour {value!r}: use #rrggbb")
    return value.lower()


def tags_of(session: Session, project: Project, offered_only: bool = False) -> list[Tag]:
    q = select(Tag).where(Tag.project_id == project.id)
    if offered_only:
        q = q.where(Tag.offered.is_(True))
    return list(session.scalars(q.order_by(Tag.name)))


def usage(session: Session, project: Project) -> dict[int, int]:
    """How many calls carry each tag of the project."""
    return dict(session.execute(select(call_tags.c.tag_id, func.count()).join(Tag, Tag.id == call_tags.c.tag_id)
                                .where(Tag.project_id == project.id).group_by(call_tags.c.tag_id)).all())


def save_tag(session: Session, project: Project, tag: Optional[Tag] = None, *, name: str, color_: str = "",
             description: str = "", offered: bool = True) -> Tag:
    """Create (``tag`` None) or change a predefined tag after checking it (module docstring);
    flushes, does not commit."""
    name = settings_rules.name("tag", name)
    if len(name) > 100:
        raise ServiceError("tag name longer than 100 characters")
    description = (description or "").strip()
    if len(description) > 500:
        raise ServiceError("tag description longer than 500 characters")
    color_ = color(color_)
    other = session.scalars(select(Tag).where(Tag.project_id == project.id, Tag.name == name)).first()
    if other is not None and other is not tag:
        raise ServiceError(f"tag {name!r} already exists in project {project.key}")
    if tag is None:
        tag = Tag(project_id=project.id, name=name)
        session.add(tag)
    tag.name, tag.color, tag.description, tag.offered = name, color_, description, bool(offered)
    session.flush()
    return tag
