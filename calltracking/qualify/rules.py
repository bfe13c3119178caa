"""Target rules: is a finished call a *target call*, and which tags do the rules add? Pure code.

A project's enabled rules are tried in order (``position``, then id); **every** rule whose
conditions all hold matches (not only the first). Each condition is optional; set ones are AND-ed:

- ``min_talk_seconds``: talk time ≥ N s (a call with no talk time, a missed one, fails);
- ``first_call_only``: the caller's first call to the project (``calls.first_call`` true;
  unknown fails);
- ``source_id`` / ``campaign_id``: the call's attributed source / campaign;
- ``queue``: the queue the call went to (exact name);
- ``tag_id``: the call carries that tag — its own tags, plus those added by rules earlier in
  the order (so a rule may build on another's tag);
- ``weekdays`` with ``time_from`` / ``time_to``: the call's start in the project's time zone, the
  window of :func:`calltracking.attribution.routing.in_window` (``22:00``–``06:00`` wraps
  midnight and the hours after it belong to the day the window started; equal bounds = the
  whole day; missing bounds = the start or end of the day).

The verdict: the call is a target call when at least one matching rule has ``mark_target``
(``rule_id`` = the first such rule); the tags to add are those of every matching rule.
A rule with no condition matches every finished call.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Iterable, Optional

from calltracking.attribution.routing import in_window


@dataclass(frozen=True)
class Rule:
    """A target rule detached from the database."""

    id: int
    name: str = ""
    position: int = 100
    enabled: bool = True
    min_talk_seconds: Optional[int] = None
    first_call_only: bool = False
    source_id: Optional[int] = None
    campaign_id: Optional[int] = None
    queue: str = ""
    tag_id: Optional[int] = None
    weekdays: str = "1234567"
    time_from: Optional[dt.time] = None
    time_to: Optional[dt.time] = None
    mark_target: bool = True
    add_tag_ids: tuple[int, ...] = ()

    @classmethod
    def from_row(cls, r) -> "Rule":
        return cls(id=r.id, name=r.name or "", position=r.position, enabled=bool(r.enabled),
                   min_talk_seconds=r.min_talk_seconds, first_call_only=bool(r.first_call_only),
                   source_id=r.source_id, campaign_id=r.campaign_id, queue=r.queue or "",
                   tag_id=r.tag_id, weekdays=r.weekdays or "1234567", time_from=r.time_from,
                   time_to=r.time_to, mark_target=bool(r.mark_target),
                   add_tag_ids=tuple(sorted(t.id for t in r.add_tags)))


@dataclass(frozen=True)
class CallFacts:
    """What a target rule can look at: the call as it ended."""

    local_start: dt.datetime                # aware, in the project's time zone
    talk_seconds: Optional[float] = None
    first_call: Optional[bool] = None
    source_id: Optional[int] = None
    campaign_id: Optional[int] = None
    queue: str = ""
    tag_ids: frozenset = frozenset()


@dataclass(frozen=True)
class Verdict:
    """The rules' answer for one call."""

    is_target: bool = False
    rule_id: Optional[int] = None           # the first matching rule that marks target calls
    matched: tuple[int, ...] = ()           # every matching rule, in order
    add_tag_ids: tuple[int, ...] = field(default=())   # tags to add, the call's own left out


def ordered(rules: Iterable[Rule]) -> list[Rule]:
    return sorted(rules, key=lambda r: (r.position, r.id))


def matches(rule: Rule, facts: CallFacts, tag_ids: frozenset | None = None) -> bool:
    """Whether every condition ``rule`` sets holds for the call (``tag_ids``: the tags it carries
    at this point, default its own)."""
    if not rule.enabled:
        return False
    if rule.min_talk_seconds is not None and (
            facts.talk_seconds is None or facts.talk_seconds < rule.min_talk_seconds):
        return False
    if rule.first_call_only and facts.first_call is not True:
        return False
    if rule.source_id is not None and rule.source_id != facts.source_id:
        return False
    if rule.campaign_id is not None and rule.campaign_id != facts.campaign_id:
        return False
    if rule.queue and rule.queue != facts.queue:
        return False
    if rule.tag_id is not None and rule.tag_id not in (facts.tag_ids if tag_ids is None else tag_ids):
        return False
    return in_window(facts.local_start, rule.time_from, rule.time_to, rule.weekdays)


def qualify(rules: Iterable[Rule], facts: CallFacts) -> Verdict:
    """Apply the rules (module docstring) to one call."""
    tags = set(facts.tag_ids)
    added: list[int] = []
    matched: list[int] = []
    target_rule = None
    for rule in ordered(rules):
        if not matches(rule, facts, frozenset(tags)):
            continue
        matched.append(rule.id)
        if rule.mark_target and target_rule is None:
            target_rule = rule.id
        for t in rule.add_tag_ids:
            if t not in tags:
                tags.add(t)
                added.append(t)
    return Verdict(is_target=target_rule is not None, rule_id=target_rule, matched=tuple(matched),
                   add_tag_ids=tuple(added))
