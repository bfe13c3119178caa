"""Create, change, find and retire the configured entities: the one way in for the CLI, the web
UI's settings pages and the REST API, so all three apply the same rules.

A single value is checked by :mod:`calltracking.settings_rules` (what a valid key, time zone,
weekday set … is). The rules between entities are here:

* names are unique: a project's key; a source's name in its project; a campaign's in its source;
  a pool's in its project; a promo code in its project; an operator's interface; a username;
* a source, campaign or pool used by another entity belongs to that entity's project, and a
  campaign comes with its own source;
* a tracking number is either static (a source, optionally one of its campaigns) or a member of
  a pool, never both; a number is mapped once at a time (retire the old mapping first), and a
  retired mapping is not changed;
* an admin cannot take away their own admin role or deactivate themselves.

Every function works in the caller's transaction (it flushes, the caller commits) and raises
:class:`ServiceError` with a message for the user.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Optional
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from calltracking import phone
from calltracking import settings_rules as rules
from calltracking.enums import NumberKind, Role
from calltracking.models import (
    Campaign, NumberPool, Operator, Project, PromoCode, RoutingRule, Source, TrackingNumber, User, utcnow,
)
from calltracking.settings_rules import CHANNELS, ROLES, ServiceError  # noqa: F401  (the CLI reads them here)


# ------------------------------------------------------------------ lookups
def _one(session: Session, stmt, what: str):
    obj = session.scalars(stmt).first()
    if obj is None:
        raise ServiceError(f"{what} not found")
    return obj


def get_project(session: Session, key: str) -> Project:
    return _one(session, select(Project).where(Project.key == key), f"project {key!r}")


def get_source(session: Session, project: Project, name: str) -> Source:
    return _one(session, select(Source).where(Source.project_id == project.id, Source.name == name),
                f"source {name!r} in project {project.key!r}")


def get_campaign(session: Session, source: Source, name: str) -> Campaign:
    return _one(session, select(Campaign).where(Campaign.source_id == source.id, Campaign.name == name),
                f"campaign {name!r} of source {source.name!r}")


def get_pool(session: Session, project: Project, name: str) -> NumberPool:
    return _one(session, select(NumberPool).where(NumberPool.project_id == project.id,
                                                  NumberPool.name == name),
                f"pool {name!r} in project {project.key!r}")


def active_number(session: Session, e164: str) -> Optional[TrackingNumber]:
    return session.scalars(select(TrackingNumber).where(TrackingNumber.number == e164,
                                                        TrackingNumber.active.is_(True))).first()


def _taken(session: Session, stmt, obj=None) -> bool:
    """Whether another row than ``obj`` matches ``stmt`` (a uniqueness check)."""
    return any(other is not obj for other in session.scalars(stmt.limit(2)))


def _in_project(project_id: int, source: Source | None = None, campaign: Campaign | None = None,
                pool: NumberPool | None = None) -> None:
    """The source, campaign and pool belong to the project; a campaign comes with its source."""
    for obj, what in ((source, "source"), (campaign, "campaign"), (pool, "pool")):
        if obj is not None and obj.project_id != project_id:
            raise ServiceError(f"the {what} {obj.name!r} belongs to another project")
    if campaign is not None and source is None:
        raise ServiceError("a campaign needs a source")
    if campaign is not None and campaign.source_id != source.id:
        raise ServiceError(f"campaign {campaign.name!r} does not belong to source {source.name!r}")


# ----------------------------------------------------------------- projects
def add_project(session: Session, key: str, name: str = "", timezone: str = "UTC",
                default_queue: str = "", default_number: str | None = None,
                region: str = "RU", first_call_window_days: int = 0, allowed_origins: str = "",
                currency: str = "RUB") -> Project:
    rules.project_key(key)
    rules.timezone(timezone)
    if _taken(session, select(Project).where(Project.key == key)):
        raise ServiceError(f"project {key!r} already exists")
    p = Project(key=key, name=name or key, timezone=timezone, default_queue=default_queue,
                default_number=phone.normalize(default_number, region) if default_number else None,
                first_call_window_days=first_call_window_days, allowed_origins=allowed_origins,
                currency=currency)
    session.add(p)
    session.flush()
    return p


def update_project(session: Session, project: Project, *, name: str, timezone: str, default_queue: str,
                   default_number: str | None, first_call_window_days: int, allowed_origins: str,
                   currency: str, region: str = "RU") -> None:
    """Change a project (its key stays). An empty ``timezone`` keeps the project's."""
    name = rules.name("project", name)
    timezone = rules.timezone(timezone) if timezone else project.timezone
    default_number = phone.normalize(default_number, region) if default_number else None
    project.name, project.timezone = name, timezone
    project.default_queue, project.default_number = default_queue, default_number
    project.first_call_window_days = first_call_window_days
    project.allowed_origins = allowed_origins
    project.currency = currency
    session.flush()


# ------------------------------------------------------------------ sources
def _source_name_free(session: Session, project_id: int, name: str, source: Source | None = None) -> None:
    if _taken(session, select(Source).where(Source.project_id == project_id, Source.name == name), source):
        key = session.get(Project, project_id).key
        raise ServiceError(f"source {name!r} already exists in project {key!r}")


def add_source(session: Session, project: Project, name: str, channel: str = "other",
               short_label: str = "") -> Source:
    name = rules.name("source", name)
    rules.channel(channel)
    _source_name_free(session, project.id, name)
    s = Source(project_id=project.id, name=name, channel=channel, short_label=short_label or name)
    session.add(s)
    session.flush()
    return s


def update_source(session: Session, source: Source, *, name: str, channel: str, short_label: str) -> None:
    name = rules.name("source", name)
    rules.channel(channel)
    _source_name_free(session, source.project_id, name, source)
    source.name, source.channel, source.short_label = name, channel, short_label
    session.flush()


def add_campaign(session: Session, source: Source, name: str, utm_campaign: str = "") -> Campaign:
    name = rules.name("campaign", name)
    if _taken(session, select(Campaign).where(Campaign.source_id == source.id, Campaign.name == name)):
        raise ServiceError(f"campaign {name!r} already exists for source {source.name!r}")
    c = Campaign(project_id=source.project_id, source_id=source.id, name=name, utm_campaign=utm_campaign)
    session.add(c)
    session.flush()
    return c


# -------------------------------------------------------------------- pools
def add_pool(session: Session, project: Project, name: str, hold_seconds: int = rules.DEFAULT_HOLD_SECONDS,
             fallback_number: str | None = None, source: Source | None = None,
             region: str = "RU", promo_mode: str = "off") -> NumberPool:
    name = rules.name("pool", name)
    _in_project(project.id, source)
    if _taken(session, select(NumberPool).where(NumberPool.project_id == project.id, NumberPool.name == name)):
        raise ServiceError(f"pool {name!r} already exists in project {project.key!r}")
    pool = NumberPool(project_id=project.id, name=name, hold_seconds=rules.hold_seconds(hold_seconds),
                      fallback_number=phone.normalize(fallback_number, region) if fallback_number else None,
                      source_id=source.id if source else None, promo_mode=rules.promo_mode(promo_mode))
    session.add(pool)
    session.flush()
    return pool


def update_pool(session: Session, pool: NumberPool, *, source: Source | None, hold_seconds: int,
                fallback_number: str | None, promo_mode: str, region: str = "RU") -> None:
    """Change a pool (its project and name stay)."""
    _in_project(pool.project_id, source)
    hold_seconds = rules.hold_seconds(hold_seconds)
    fallback_number = phone.normalize(fallback_number, region) if fallback_number else None
    promo_mode = rules.promo_mode(promo_mode)
    pool.source_id = source.id if source else None
    pool.hold_seconds, pool.fallback_number, pool.promo_mode = hold_seconds, fallback_number, promo_mode
    session.flush()


# ------------------------------------------------------------------ numbers
def _mapping(e164: str, project_id: int, source: Source | None, campaign: Campaign | None,
             pool: NumberPool | None) -> None:
    """A number is static (a source, maybe one of its campaigns) or in a pool, never both."""
    if (source is None) == (pool is None):
        raise ServiceError(f"number {e164}: give a source (static) or a pool (dynamic)"
                           + (", not both" if source is not None else ""))
    _in_project(project_id, source, campaign, pool)


def _map(tn: TrackingNumber, source: Source | None, campaign: Campaign | None, pool: NumberPool | None,
         description: str, callerid_prefix: bool, record: bool) -> None:
    tn.kind = NumberKind.POOL if pool else NumberKind.STATIC
    tn.source_id = source.id if source else pool.source_id
    tn.campaign_id = campaign.id if campaign else None
    tn.pool_id = pool.id if pool else None
    tn.description = description
    tn.callerid_prefix = callerid_prefix
    tn.record = record


def add_number(session: Session, project: Project, number: str, region: str = "RU",
               source: Source | None = None, campaign: Campaign | None = None,
               pool: NumberPool | None = None, description: str = "",
               callerid_prefix: bool = True, record: bool = True) -> TrackingNumber:
    e164 = phone.normalize(number, region)
    _mapping(e164, project.id, source, campaign, pool)
    existing = active_number(session, e164)
    if existing is not None:
        raise ServiceError(f"number {e164} is already mapped (project id {existing.project_id}); "
                           "remove that mapping first")
    tn = TrackingNumber(project_id=project.id, number=e164)
    _map(tn, source, campaign, pool, description, callerid_prefix, record)
    session.add(tn)
    try:
        session.flush()
    except IntegrityError:
        raise ServiceError(f"number {e164} is already mapped") from None
    return tn


def update_number(session: Session, tn: TrackingNumber, *, source: Source | None, campaign: Campaign | None,
                  pool: NumberPool | None, description: str, callerid_prefix: bool, record: bool) -> None:
    """Remap an active number (its project and digits stay)."""
    if not tn.active:
        raise ServiceError("a retired number cannot be changed; map it again")
    _mapping(tn.number, tn.project_id, source, campaign, pool)
    _map(tn, source, campaign, pool, description, callerid_prefix, record)
    session.flush()


def retire_number(session: Session, number: str, region: str = "RU") -> TrackingNumber:
    """Take a number out of its mapping. Calls to it keep ringing (default queue)."""
    e164 = phone.normalize(number, region)
    tn = active_number(session, e164)
    if tn is None:
        raise ServiceError(f"number {e164} is not mapped")
    tn.active = False
    tn.retired_at = utcnow()
    session.flush()
    return tn


# ------------------------------------------------------------ routing rules
def _rule_fields(rule: RoutingRule, name, priority, source, campaign, keyword_regex, utm_regex,
                 time_from, time_to, weekdays, queue, target, record, enabled,
                 forwarded_from: str = "", region: str = "RU") -> None:
    _in_project(rule.project_id, source, campaign)
    keyword_regex = rules.regex("keyword_regex", keyword_regex)
    utm_regex = rules.regex("utm_regex", utm_regex)
    weekdays = rules.weekdays(weekdays)
    rules.rule_destination(queue, target)
    rule.name = rules.name("rule", name)
    rule.priority = rules.DEFAULT_RULE_PRIORITY if priority is None else priority
    rule.source_id = source.id if source else None
    rule.campaign_id = campaign.id if campaign else None
    rule.keyword_regex, rule.utm_regex = keyword_regex, utm_regex
    rule.forwarded_from = phone.normalize(forwarded_from, region) if (forwarded_from or "").strip() else ""
    rule.time_from, rule.time_to, rule.weekdays = time_from, time_to, weekdays
    rule.queue, rule.target = queue or "", target or ""
    rule.record = record
    rule.enabled = enabled


def add_rule(session: Session, project: Project, name: str, *, priority: int | None = None,
             source: Source | None = None, campaign: Campaign | None = None, keyword_regex: str = "",
             utm_regex: str = "", time_from: dt.time | None = None, time_to: dt.time | None = None,
             weekdays: str = rules.ALL_WEEKDAYS, queue: str = "", target: str = "",
             record: bool | None = None, enabled: bool = True, forwarded_from: str = "",
             region: str = "RU") -> RoutingRule:
    """A routing rule (how it matches a call: :mod:`calltracking.attribution.routing`).
    ``record`` None: as the number says. ``forwarded_from``: a phone number (normalised to
    E.164 in ``region``; an invalid one is refused), '' = any call."""
    r = RoutingRule(project_id=project.id)
    _rule_fields(r, name, priority, source, campaign, keyword_regex, utm_regex, time_from, time_to,
                 weekdays, queue, target, record, enabled, forwarded_from, region)
    session.add(r)
    session.flush()
    return r


def update_rule(session: Session, rule: RoutingRule, *, name: str, priority: int | None,
                source: Source | None, campaign: Campaign | None, keyword_regex: str, utm_regex: str,
                time_from: dt.time | None, time_to: dt.time | None, weekdays: str, queue: str, target: str,
                record: bool | None, enabled: bool, forwarded_from: str = "", region: str = "RU") -> None:
    _rule_fields(rule, name, priority, source, campaign, keyword_regex, utm_regex, time_from, time_to,
                 weekdays, queue, target, record, enabled, forwarded_from, region)
    session.flush()


# -------------------------------------------------------------- promo codes
def _promo_fields(session: Session, promo: PromoCode, code, source, campaign, valid_from, valid_to) -> None:
    code = rules.promo_code(code)
    _in_project(promo.project_id, source, campaign)
    if _taken(session, select(PromoCode).where(PromoCode.project_id == promo.project_id,
                                               PromoCode.code == code), promo):
        raise ServiceError(f"promo code {code!r} already exists in this project")
    promo.code = code
    promo.source_id = source.id if source else None
    promo.campaign_id = campaign.id if campaign else None
    promo.valid_from, promo.valid_to = valid_from, valid_to


def add_promo(session: Session, project: Project, code: str, *, source: Source | None = None,
              campaign: Campaign | None = None, valid_from: dt.datetime | None = None,
              valid_to: dt.datetime | None = None) -> PromoCode:
    p = PromoCode(project_id=project.id)
    _promo_fields(session, p, code, source, campaign, valid_from, valid_to)
    session.add(p)
    session.flush()
    return p


def update_promo(session: Session, promo: PromoCode, *, code: str, source: Source | None,
                 campaign: Campaign | None, valid_from: dt.datetime | None,
                 valid_to: dt.datetime | None) -> None:
    _promo_fields(session, promo, code, source, campaign, valid_from, valid_to)
    session.flush()


# ---------------------------------------------------------------- operators
def add_operator(session: Session, name: str, interface: str, member_name: str = "",
                 extension: str = "", queues: str = "") -> Operator:
    rules.operator(name, interface)
    if _taken(session, select(Operator).where(Operator.interface == interface)):
        raise ServiceError(f"operator with interface {interface!r} already exists")
    op = Operator(name=name, interface=interface, member_name=member_name or name,
                  extension=extension, queues=queues)
    session.add(op)
    session.flush()
    return op


def update_operator(session: Session, op: Operator, *, name: str, interface: str, member_name: str,
                    extension: str, queues: str) -> None:
    rules.operator(name, interface)
    if _taken(session, select(Operator).where(Operator.interface == interface), op):
        raise ServiceError(f"operator with interface {interface!r} already exists")
    op.name, op.interface, op.member_name = name, interface, member_name
    op.extension, op.queues = extension, queues
    session.flush()


# -------------------------------------------------------------------- users
def check_user_change(user: User, role: str, active: bool, acting: User | None) -> None:
    """An admin cannot take away their own admin role or deactivate themselves (``acting``: who
    makes the change; None: the CLI, which may)."""
    if acting is not None and acting.id == user.id and (role != Role.ADMIN or not active):
        raise ServiceError("you cannot remove your own admin role or deactivate yourself")


def generate_password_hash(password: str) -> str:
    """werkzeug's salted hash of a password, werkzeug imported on first use (loading it takes
    about 30 ms, which every command that never sets a password would pay)."""
    from werkzeug.security import generate_password_hash as werkzeug_hash

    return werkzeug_hash(password)


def set_password(user: User, password: str) -> None:
    """Store a new password's hash (the user's sessions made with the old one end)."""
    user.password_hash = generate_password_hash(rules.password(password))


def add_user(session: Session, username: str, password: str, role: str,
             language: str = "en", operator: Operator | None = None) -> User:
    rules.role(role)
    rules.username(username)
    rules.password(password)
    rules.language(language)
    if _taken(session, select(User).where(User.username == username)):
        raise ServiceError(f"user {username!r} already exists")
    u = User(username=username, role=role, language=language, operator_id=operator.id if operator else None)
    set_password(u, password)
    session.add(u)
    session.flush()
    return u


def update_user(session: Session, user: User, *, role: str, language: str, operator: Operator | None,
                active: bool, password: str = "", acting: User | None = None) -> None:
    """Change a user (the username stays); an empty ``password`` keeps theirs."""
    check_user_change(user, role, active, acting)
    rules.role(role)
    rules.language(language)
    if password:
        set_password(user, password)
    user.role, user.language = role, language
    user.operator_id = operator.id if operator else None
    user.active = active
    session.flush()


# -------------------------------------------------------------------- dates
def parse_when(text: str, tz: str = "UTC", end: bool = False) -> dt.datetime:
    """Parse ``YYYY-MM-DD`` or an ISO datetime in ``tz`` into aware UTC.

    A bare date given as an end bound means the end of that day.
    """
    text = (text or "").strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            d = dt.datetime.fromisoformat(text)
            if end:
                d = d + dt.timedelta(days=1)
        else:
            d = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ServiceError(f"invalid date {text!r}: use YYYY-MM-DD or an ISO date-time") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=ZoneInfo(tz))
    return d.astimezone(dt.timezone.utc)
