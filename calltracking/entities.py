"""Create, list and remove the configured entities (used by the CLI and the web UI)."""
from __future__ import annotations

import datetime as dt
import re
from typing import Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from calltracking import phone
from calltracking.models import (
    Campaign, NumberPool, Operator, Project, Source, TrackingNumber, User, utcnow,
)

ROLES = ("admin", "supervisor", "operator")
CHANNELS = ("search", "ads", "social", "email", "offline", "referral", "direct", "other")


class ServiceError(ValueError):
    """A user-facing error: the message says what is wrong and with which value."""


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


def add_project(session: Session, key: str, name: str = "", timezone: str = "UTC",
                default_queue: str = "", default_number: str | None = None,
                region: str = "RU") -> Project:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", key or ""):
        raise ServiceError(f"invalid project key {key!r}: use 1-64 letters, digits, '_' or '-'")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ServiceError(f"unknown time zone {timezone!r}") from None
    if session.scalars(select(Project).where(Project.key == key)).first():
        raise ServiceError(f"project {key!r} already exists")
    num = phone.normalize(default_number, region) if default_number else None
    p = Project(key=key, name=name or key, timezone=timezone, default_queue=default_queue,
                default_number=num)
    session.add(p)
    session.flush()
    return p


def add_source(session: Session, project: Project, name: str, channel: str = "other",
               short_label: str = "") -> Source:
    name = (name or "").strip()
    if not name:
        raise ServiceError("source name is empty")
    if channel not in CHANNELS:
        raise ServiceError(f"invalid channel {channel!r}: use one of {', '.join(CHANNELS)}")
    if session.scalars(select(Source).where(Source.project_id == project.id, Source.name == name)).first():
        raise ServiceError(f"source {name!r} already exists in project {project.key!r}")
    s = Source(project_id=project.id, name=name, channel=channel, short_label=short_label or name)
    session.add(s)
    session.flush()
    return s


def add_campaign(session: Session, source: Source, name: str, utm_campaign: str = "") -> Campaign:
    name = (name or "").strip()
    if not name:
        raise ServiceError("campaign name is empty")
    if session.scalars(select(Campaign).where(Campaign.source_id == source.id, Campaign.name == name)).first():
        raise ServiceError(f"campaign {name!r} already exists for source {source.name!r}")
    c = Campaign(project_id=source.project_id, source_id=source.id, name=name, utm_campaign=utm_campaign)
    session.add(c)
    session.flush()
    return c


def add_pool(session: Session, project: Project, name: str, hold_seconds: int = 900,
             fallback_number: str | None = None, source: Source | None = None,
             region: str = "RU") -> NumberPool:
    if hold_seconds < 0:
        raise ServiceError("hold_seconds must be >= 0")
    pool = NumberPool(project_id=project.id, name=name, hold_seconds=hold_seconds,
                      fallback_number=phone.normalize(fallback_number, region) if fallback_number else None,
                      source_id=source.id if source else None)
    session.add(pool)
    session.flush()
    return pool


def active_number(session: Session, e164: str) -> Optional[TrackingNumber]:
    return session.scalars(select(TrackingNumber).where(TrackingNumber.number == e164,
                                                        TrackingNumber.active.is_(True))).first()


def add_number(session: Session, project: Project, number: str, region: str = "RU",
               source: Source | None = None, campaign: Campaign | None = None,
               pool: NumberPool | None = None, description: str = "",
               callerid_prefix: bool = True, record: bool = True) -> TrackingNumber:
    e164 = phone.normalize(number, region)
    if pool is None and source is None:
        raise ServiceError(f"number {e164}: give a source (static) or a pool (dynamic)")
    if campaign is not None and source is not None and campaign.source_id != source.id:
        raise ServiceError(f"campaign {campaign.name!r} does not belong to source {source.name!r}")
    existing = active_number(session, e164)
    if existing is not None:
        raise ServiceError(f"number {e164} is already mapped (project id {existing.project_id}); "
                           "remove that mapping first")
    tn = TrackingNumber(project_id=project.id, number=e164, kind="pool" if pool else "static",
                        source_id=source.id if source else (pool.source_id if pool else None),
                        campaign_id=campaign.id if campaign else None,
                        pool_id=pool.id if pool else None, description=description,
                        callerid_prefix=callerid_prefix, record=record)
    session.add(tn)
    try:
        session.flush()
    except IntegrityError:
        raise ServiceError(f"number {e164} is already mapped") from None
    return tn


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


def add_operator(session: Session, name: str, interface: str, member_name: str = "",
                 extension: str = "", queues: str = "") -> Operator:
    if not name or not interface:
        raise ServiceError("operator needs a name and an interface (e.g. PJSIP/101)")
    if session.scalars(select(Operator).where(Operator.interface == interface)).first():
        raise ServiceError(f"operator with interface {interface!r} already exists")
    op = Operator(name=name, interface=interface, member_name=member_name or name,
                  extension=extension, queues=queues)
    session.add(op)
    session.flush()
    return op


def add_user(session: Session, username: str, password: str, role: str,
             language: str = "en", operator: Operator | None = None) -> User:
    if role not in ROLES:
        raise ServiceError(f"invalid role {role!r}: use one of {', '.join(ROLES)}")
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,100}", username or ""):
        raise ServiceError(f"invalid username {username!r}")
    if len(password or "") < 8:
        raise ServiceError("password must have at least 8 characters")
    if session.scalars(select(User).where(User.username == username)).first():
        raise ServiceError(f"user {username!r} already exists")
    u = User(username=username, password_hash=generate_password_hash(password), role=role,
             language=language, operator_id=operator.id if operator else None)
    session.add(u)
    session.flush()
    return u


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
