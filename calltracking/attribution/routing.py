"""Routing rules: which queue (or Dial target) a call goes to. Pure functions, no I/O.

Rules are tried by ascending ``priority`` (then id); the first rule whose every
non-empty condition matches wins. Conditions:

- ``source_id`` / ``campaign_id``: the call's attributed source / campaign;
- ``keyword_regex``: searched (case-insensitive) in the visitor's keyword, or
  in the UTM term when the session has no keyword;
- ``utm_regex``: searched (case-insensitive) in the visitor's UTM term;
- ``forwarded_from``: the number that forwarded the call to the tracking number (RDNIS),
  both in E.164: equal numbers match; a call dialled directly never matches such a rule;
- ``time_from`` / ``time_to`` and ``weekdays``: a window in the project's time
  zone. ``22:00``–``06:00`` wraps midnight; the hours after midnight belong to
  the window of the day it started (a "Friday night" rule with weekdays ``5``
  matches Saturday 02:00). Equal bounds mean the whole day; a missing bound is
  the start or the end of the day.

A rule with a regex never matches a call without a visitor session (static
numbers): there is no keyword to test. An invalid regex never matches.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Optional
from zoneinfo import ZoneInfo

#: Regexes are searched in at most this many characters of visitor input.
MAX_SUBJECT = 200


@dataclass(frozen=True)
class Rule:
    """A routing rule, detached from the database (safe to cache and share)."""

    id: int
    priority: int = 100
    source_id: Optional[int] = None
    campaign_id: Optional[int] = None
    keyword_regex: str = ""
    utm_regex: str = ""
    forwarded_from: str = ""
    time_from: Optional[dt.time] = None
    time_to: Optional[dt.time] = None
    weekdays: str = "1234567"
    queue: str = ""
    target: str = ""
    record: Optional[bool] = None
    enabled: bool = True
    name: str = ""

    @classmethod
    def from_row(cls, r) -> "Rule":
        return cls(id=r.id, priority=r.priority, source_id=r.source_id, campaign_id=r.campaign_id,
                   keyword_regex=r.keyword_regex or "", utm_regex=r.utm_regex or "",
                   forwarded_from=r.forwarded_from or "",
                   time_from=r.time_from, time_to=r.time_to, weekdays=r.weekdays or "1234567",
                   queue=r.queue or "", target=r.target or "", record=r.record,
                   enabled=bool(r.enabled), name=r.name or "")


@dataclass(frozen=True)
class CallFacts:
    """What a rule can look at."""

    local_time: dt.datetime                 # aware, in the project's time zone
    source_id: Optional[int] = None
    campaign_id: Optional[int] = None
    keyword: str = ""
    utm_term: str = ""
    has_session: bool = False
    forwarded_from: str = ""                # E.164 (or the cleaned text) of the forwarding number

    @classmethod
    def of(cls, local_time: dt.datetime, source_id: Optional[int] = None,
           campaign_id: Optional[int] = None, session=None, forwarded_from: str = "") -> "CallFacts":
        """The facts of a call attributed to ``source_id`` / ``campaign_id`` that came from the
        visitor ``session`` (anything with ``keyword`` and ``utm_term``; None: no session) and was
        forwarded from ``forwarded_from`` ('' when dialled directly)."""
        return cls(local_time=local_time, source_id=source_id, campaign_id=campaign_id,
                   keyword=session.keyword if session is not None else "",
                   utm_term=session.utm_term if session is not None else "",
                   has_session=session is not None, forwarded_from=forwarded_from or "")


def local_now(now_utc: dt.datetime, tz: str) -> dt.datetime:
    """``now_utc`` (aware) in the time zone ``tz``; an unknown zone falls back to UTC."""
    try:
        zone = ZoneInfo(tz or "UTC")
    except Exception:  # noqa: BLE001 - a bad zone in the DB must not stop routing
        zone = ZoneInfo("UTC")
    return now_utc.astimezone(zone)


@lru_cache(maxsize=1024)
def _compile(pattern: str):
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error:
        return None


def regex_matches(pattern: str, subject: str) -> bool:
    rx = _compile(pattern)
    return bool(rx and rx.search((subject or "")[:MAX_SUBJECT]))


def valid_regex(pattern: str) -> Optional[str]:
    """None when ``pattern`` compiles, else the error message (for forms and the CLI)."""
    try:
        re.compile(pattern or "")
    except re.error as e:
        return str(e)
    return None


def in_window(local: dt.datetime, time_from: Optional[dt.time], time_to: Optional[dt.time],
              weekdays: str = "1234567") -> bool:
    """Is ``local`` inside the weekly window? See the module docstring for the rules."""
    days = weekdays or "1234567"
    t = local.time().replace(tzinfo=None)
    today = str(local.isoweekday())
    yesterday = str((local - dt.timedelta(days=1)).isoweekday())
    if time_from is None and time_to is None:
        return today in days
    start = time_from or dt.time(0, 0)
    end = time_to
    if end is None:
        return today in days and t >= start
    if start == end:
        return today in days
    if start < end:
        return today in days and start <= t < end
    # wraps midnight: [start, 24:00) belongs to today, [00:00, end) to yesterday's window
    if t >= start:
        return today in days
    if t < end:
        return yesterday in days
    return False


def rule_matches(rule: Rule, facts: CallFacts) -> bool:
    if not rule.enabled:
        return False
    if rule.source_id is not None and rule.source_id != facts.source_id:
        return False
    if rule.campaign_id is not None and rule.campaign_id != facts.campaign_id:
        return False
    if rule.keyword_regex:
        if not facts.has_session:
            return False
        if not regex_matches(rule.keyword_regex, facts.keyword or facts.utm_term):
            return False
    if rule.utm_regex:
        if not facts.has_session or not regex_matches(rule.utm_regex, facts.utm_term):
            return False
    if rule.forwarded_from and rule.forwarded_from != facts.forwarded_from:
        return False
    return in_window(facts.local_time, rule.time_from, rule.time_to, rule.weekdays)


def sort_rules(rules: Iterable[Rule]) -> list[Rule]:
    return sorted(rules, key=lambda r: (r.priority, r.id))


def choose(rules: Iterable[Rule], facts: CallFacts, ordered: bool = False) -> Optional[Rule]:
    """The first matching rule by priority, or None. ``ordered``: ``rules`` are already in
    :func:`sort_rules` order (the catalogue's are; sorting 50 rules was 15 % of a route call)."""
    for rule in (rules if ordered else sort_rules(rules)):
        if rule_matches(rule, facts):
            return rule
    return None


def queue_for(rule: Optional[Rule], default_queue: str) -> str:
    """The queue of a call: the chosen rule's queue, else ``default_queue`` (no rule matched,
    or the rule only sets a target or the recording)."""
    return (rule.queue if rule is not None and rule.queue else "") or default_queue


def default_queue(project_queue: str, general_queue: str) -> str:
    """The queue of a call no rule sends elsewhere: its project's default queue, else
    ``[general] default_queue``."""
    return project_queue or general_queue


def records(rule: Optional[Rule], number_records: bool, attributed: bool) -> bool:
    """Whether a call is recorded: the matching routing rule's choice when it makes one
    (``record`` set on the rule); otherwise when its tracking number records (an active number
    with ``record`` on) and the call is attributed (not ``none``). The AMI listener applies the
    same rule, with no rule, to calls that never passed the ``route`` hook."""
    if rule is not None and rule.record is not None:
        return bool(rule.record)
    return bool(number_records and attributed)
