"""What a valid target rule is, and saving one (the web page, the demo and the tests use this).

A rule belongs to one project; its name is not empty (at most 200 characters); ``position`` is a
whole number (rules run in ascending position); ``min_talk_seconds`` is empty or a whole number
0 … 86400; the source, campaign, condition tag and added tags belong to the rule's project (a
campaign also to the rule's source when both are set); ``queue`` at most 80 characters;
``weekdays`` the digits of :func:`calltracking.settings_rules.weekdays`; ``time_from`` /
``time_to`` ``HH:MM`` or empty; and a rule does something: it marks target calls or adds a tag.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from calltracking import settings_rules
from calltracking.models import Campaign, Project, Source, Tag, TargetRule
from calltracking.settings_rules import ServiceError

MAX_TALK = 86400


def parse_time(value) -> Optional[dt.time]:
    """``HH:MM`` (or ``HH:MM:SS``) → a time; empty → None."""
    if value is None or isinstance(value, dt.time):
        return value
    text = str(value).strip()
    if not text:
        return None
    try:
        return dt.time.fromisoformat(text)
    except ValueError:
        raise ServiceError(f"invalid time {text!r}: use HH:MM") from None


def parse_seconds(value) -> Optional[int]:
    if value is None or value == "":
        return None
    try:
        n = int(str(value).strip())
    except ValueError:
        raise ServiceError(f"talk time must be a whole number of seconds (got {value!r})") from None
    if not 0 <= n <= MAX_TALK:
        raise ServiceError(f"talk time must be between 0 and {MAX_TALK} seconds (got {n})")
    return n


def _own(session: Session, model, ident, project: Project, what: str):
    if ident in (None, ""):
        return None
    if not str(ident).strip().isdigit():
        raise ServiceError(f"unknown {what} {ident!r} in project {project.key}")
    obj = session.get(model, int(ident))
    if obj is None or obj.project_id != project.id:
        raise ServiceError(f"unknown {what} {ident!r} in project {project.key}")
    return obj


def rules_of(session: Session, project: Project) -> list[TargetRule]:
    return list(session.scalars(select(TargetRule).where(TargetRule.project_id == project.id)
                                .order_by(TargetRule.position, TargetRule.id)
                                .options(selectinload(TargetRule.add_tags))))


def save_rule(session: Session, project: Project, rule: Optional[TargetRule] = None, *, name: str,
              position=100, enabled: bool = True, min_talk_seconds=None, first_call_only: bool = False,
              source_id=None, campaign_id=None, queue: str = "", tag_id=None, weekdays: str = "",
              time_from=None, time_to=None, mark_target: bool = True,
              add_tag_ids: Iterable = ()) -> TargetRule:
    """Create (``rule`` None) or change a rule after checking every value (module docstring);
    flushes, does not commit."""
    name = settings_rules.name("rule", name)
    if len(name) > 200:
        raise ServiceError("rule name longer than 200 characters")
    try:
        position = int(str(position).strip() or 100)
    except ValueError:
        raise ServiceError(f"position must be a whole number (got {position!r})") from None
    source = _own(session, Source, source_id, project, "source")
    campaign = _own(session, Campaign, campaign_id, project, "campaign")
    if campaign is not None and source is not None and campaign.source_id != source.id:
        raise ServiceError(f"campaign {campaign.name!r} is not a campaign of source {source.name!r}")
    tag = _own(session, Tag, tag_id, project, "tag")
    adds = [_own(session, Tag, t, project, "tag") for t in dict.fromkeys(add_tag_ids) if t not in (None, "")]
    queue = (queue or "").strip()
    if len(queue) > 80:
        raise ServiceError("queue name longer than 80 characters")
    if not mark_target and not adds:
        raise ServiceError("the rule does nothing: let it mark target calls or add a tag")
    values = dict(name=name, position=position, enabled=bool(enabled),
                  min_talk_seconds=parse_seconds(min_talk_seconds), first_call_only=bool(first_call_only),
                  source_id=source.id if source else None, campaign_id=campaign.id if campaign else None,
                  queue=queue, tag_id=tag.id if tag else None, weekdays=settings_rules.weekdays(weekdays),
                  time_from=parse_time(time_from), time_to=parse_time(time_to), mark_target=bool(mark_target))
    if rule is None:
        rule = TargetRule(project_id=project.id, **values)
        session.add(rule)
    else:
        for k, v in values.items():
            setattr(rule, k, v)
    rule.add_tags = adds
    session.flush()
    return rule
