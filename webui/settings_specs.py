"""The settings entities: which fields each has and how it is created and updated."""
from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from calltracking.attribution import routing
from calltracking import entities as svc
from calltracking.models import (
    Campaign, NumberPool, Operator, Project, PromoCode, RoutingRule, Source, TrackingNumber, User,
)

from webui.crud import Entity, Field
from webui.common import config


# ------------------------------------------------------------------ choices
def projects(s):
    return [(p.id, p.name) for p in s.scalars(select(Project).order_by(Project.name))]


def _pnames(s):
    return {p.id: p.name for p in s.scalars(select(Project))}


def sources(s):
    pn = _pnames(s)
    return [(x.id, f"{pn.get(x.project_id, '?')} / {x.name}")
            for x in s.scalars(select(Source).order_by(Source.project_id, Source.name))]


def campaigns(s):
    return [(c.id, f"{c.source.name} / {c.name}")
            for c in s.scalars(select(Campaign).order_by(Campaign.source_id, Campaign.name))]


def pools(s):
    pn = _pnames(s)
    return [(p.id, f"{pn.get(p.project_id, '?')} / {p.name}")
            for p in s.scalars(select(NumberPool).order_by(NumberPool.project_id, NumberPool.name))]


def operators(s):
    return [(o.id, f"{o.name} ({o.interface})") for o in s.scalars(select(Operator).order_by(Operator.name))]


def channels(_s):
    return [(c, c) for c in svc.CHANNELS]


def roles(_s):
    return [(r, r) for r in svc.ROLES]


def languages(_s):
    return [("en", "English"), ("ru", "Русский")]


def tristate(_s):
    return [("yes", _l("yes")), ("no", _l("no"))]


def promo_modes(_s):
    return [("off", "off"), ("exhausted", "exhausted"), ("always", "always")]


def _pool_held(pool):
    from webui.dni import pool_held_text

    return pool_held_text(pool)


def _pool_refused(pool):
    from webui.dni import pool_refused_text

    return pool_refused_text(pool)


def _name(obj, attr):
    v = getattr(obj, attr, None)
    return v.name if v is not None else ""


# ----------------------------------------------------------------- helpers
def _check_tz(tz):
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise svc.ServiceError(f"unknown time zone {tz!r}") from None


def _same_project(s, project_id, source_id=None, campaign_id=None, pool_id=None):
    src = s.get(Source, source_id) if source_id else None
    camp = s.get(Campaign, campaign_id) if campaign_id else None
    pool = s.get(NumberPool, pool_id) if pool_id else None
    for obj, what in ((src, "source"), (camp, "campaign"), (pool, "pool")):
        if obj is not None and obj.project_id != project_id:
            raise svc.ServiceError(f"the {what} {obj.name!r} belongs to another project")
    if camp is not None and src is not None and camp.source_id != src.id:
        raise svc.ServiceError(f"campaign {camp.name!r} does not belong to source {src.name!r}")
    if camp is not None and src is None:
        raise svc.ServiceError("a campaign needs its source")
    return src, camp, pool


def _set(obj, values, skip=()):
    for k, v in values.items():
        if k not in skip:
            setattr(obj, k, v)


# ----------------------------------------------------------------- projects
def create_project(s, v):
    p = svc.add_project(s, v["key"], v["name"], v["timezone"] or config().general.timezone,
                        v["default_queue"], v["default_number"], config().general.default_region)
    _set(p, v, skip=("key", "name", "timezone", "default_queue", "default_number"))
    return p


def update_project(s, p, v):
    if v.get("timezone"):
        _check_tz(v["timezone"])
    else:
        v["timezone"] = p.timezone
    _set(p, v)


# ------------------------------------------------------------ sources etc.
def create_source(s, v):
    src = svc.add_source(s, s.get(Project, v["project_id"]), v["name"], v["channel"] or "other",
                         v["short_label"])
    return src


def update_source(s, src, v):
    if not v["name"]:
        raise svc.ServiceError("source name is empty")
    _set(src, v)


def create_campaign(s, v):
    return svc.add_campaign(s, s.get(Source, v["source_id"]), v["name"], v["utm_campaign"])


def create_pool(s, v):
    project = s.get(Project, v["project_id"])
    src, _c, _p = _same_project(s, project.id, v.get("source_id"))
    if s.scalars(select(NumberPool).where(NumberPool.project_id == project.id,
                                          NumberPool.name == v["name"])).first():
        raise svc.ServiceError(f"pool {v['name']!r} already exists in project {project.key!r}")
    pool = svc.add_pool(s, project, v["name"], v["hold_seconds"] if v["hold_seconds"] is not None else 900,
                        v["fallback_number"], src, config().general.default_region)
    if "promo_mode" in v and v["promo_mode"]:
        pool.promo_mode = v["promo_mode"]
    return pool


def update_pool(s, pool, v):
    _same_project(s, pool.project_id, v.get("source_id"))
    if v.get("hold_seconds") is None or v["hold_seconds"] < 0:
        raise svc.ServiceError("hold seconds must be 0 or more")
    if "promo_mode" in v and not v["promo_mode"]:
        v["promo_mode"] = "off"
    _set(pool, v)


# ------------------------------------------------------------------ numbers
def create_number(s, v):
    project = s.get(Project, v["project_id"])
    src, camp, pool = _same_project(s, project.id, v.get("source_id"), v.get("campaign_id"), v.get("pool_id"))
    if src is not None and pool is not None:
        raise svc.ServiceError("choose either a source (static number) or a pool (dynamic), not both")
    return svc.add_number(s, project, v["number"], config().general.default_region, source=src,
                          campaign=camp, pool=pool, description=v["description"],
                          callerid_prefix=v["callerid_prefix"], record=v["record"])


def update_number(s, tn, v):
    if not tn.active:
        raise svc.ServiceError("a retired number cannot be changed; map it again")
    src, camp, pool = _same_project(s, tn.project_id, v.get("source_id"), v.get("campaign_id"), v.get("pool_id"))
    if (src is None) == (pool is None):
        raise svc.ServiceError("choose either a source (static number) or a pool (dynamic)")
    tn.kind = "pool" if pool else "static"
    tn.source_id = src.id if src else (pool.source_id if pool else None)
    tn.campaign_id = camp.id if camp else None
    tn.pool_id = pool.id if pool else None
    _set(tn, v, skip=("source_id", "campaign_id", "pool_id"))


# ------------------------------------------------------------ routing rules
def _rule_values(s, project_id, v):
    _same_project(s, project_id, v.get("source_id"), v.get("campaign_id"))
    for key in ("keyword_regex", "utm_regex"):
        err = routing.valid_regex(v.get(key) or "")
        if err:
            raise svc.ServiceError(f"{key}: invalid regular expression: {err}")
    days = v.get("weekdays") or "1234567"
    if not all(ch in "1234567" for ch in days) or len(set(days)) != len(days):
        raise svc.ServiceError(f"weekdays {days!r}: use digits 1 (Monday) … 7 (Sunday), each once")
    v["weekdays"] = "".join(sorted(days))
    if not (v.get("queue") or v.get("target")):
        raise svc.ServiceError("give a queue or a Dial target")
    rec = v.pop("record_mode", None)
    v["record"] = None if rec is None else rec == "yes"
    if v.get("priority") is None:
        v["priority"] = 100
    return v


def create_rule(s, v):
    v = _rule_values(s, v["project_id"], v)
    r = RoutingRule()
    _set(r, v)
    s.add(r)
    s.flush()
    return r


def update_rule(s, r, v):
    _set(r, _rule_values(s, r.project_id, v))


# ---------------------------------------------------------------- operators
def create_operator(s, v):
    op = svc.add_operator(s, v["name"], v["interface"], v["member_name"], v["extension"], v["queues"])
    return op


def update_operator(s, op, v):
    other = s.scalars(select(Operator).where(Operator.interface == v["interface"], Operator.id != op.id)).first()
    if other is not None:
        raise svc.ServiceError(f"operator with interface {v['interface']!r} already exists")
    _set(op, v)


# -------------------------------------------------------------- promo codes
def _promo_values(s, project_id, v):
    code = (v.get("code") or "").strip()
    if code and not code.isdigit():
        raise svc.ServiceError(f"promo code {code!r}: use digits only (callers type it on the keypad)")
    _same_project(s, project_id, v.get("source_id"), v.get("campaign_id"))
    return v


def create_promo(s, v):
    v = _promo_values(s, v["project_id"], v)
    if s.scalars(select(PromoCode).where(PromoCode.project_id == v["project_id"],
                                         PromoCode.code == v["code"])).first():
        raise svc.ServiceError(f"promo code {v['code']!r} already exists in this project")
    p = PromoCode()
    _set(p, v)
    s.add(p)
    s.flush()
    return p


def update_promo(s, p, v):
    _set(p, _promo_values(s, p.project_id, v))


# -------------------------------------------------------------------- users
def create_user(s, v):
    op = s.get(Operator, v["operator_id"]) if v.get("operator_id") else None
    return svc.add_user(s, v["username"], v["password"], v["role"], v["language"] or "en", op)


def update_user(s, u, v, acting=None):
    from webui.auth import current_user

    me = current_user()
    if me is not None and me.id == u.id and (v["role"] != "admin" or not v["active"]):
        raise svc.ServiceError("you cannot remove your own admin role or deactivate yourself")
    pw = v.pop("password", "")
    if pw:
        if len(pw) < 8:
            raise svc.ServiceError("password must have at least 8 characters")
        u.password_hash = generate_password_hash(pw)
    _set(u, v)


def _active_numbers(s, args):
    stmt = select(TrackingNumber).order_by(TrackingNumber.number, TrackingNumber.id)
    if not args.get("all"):
        stmt = stmt.where(TrackingNumber.active.is_(True))
    return stmt


def _has(model, attr):
    return hasattr(model, attr)


ENTITIES = [
    Entity("projects", _l("Projects"), Project, [
        Field("key", _l("Key"), required=True, on_edit=False, help=_l("letters, digits, '_' or '-'")),
        Field("name", _l("Name"), required=True),
        Field("timezone", _l("Time zone"), placeholder="Europe/Moscow", default=lambda: config().general.timezone),
        Field("default_queue", _l("Default queue")),
        Field("default_number", _l("Default phone number"), kind="phone"),
        Field("first_call_window_days", _l("Repeat-caller window (days, 0 = ever)"), kind="int", default=0),
        Field("allowed_origins", _l("Allowed website origins (DNI)"), kind="textarea"),
        Field("currency", _l("Currency"), default="RUB", maxlen=3),
    ], [(_l("Key"), lambda o: o.key), (_l("Name"), lambda o: o.name), (_l("Time zone"), lambda o: o.timezone),
        (_l("Default queue"), lambda o: o.default_queue)],
        create_project, update_project, order_by=Project.key),
    Entity("sources", _l("Sources"), Source, [
        Field("project_id", _l("Project"), kind="select", choices=projects, required=True, on_edit=False),
        Field("name", _l("Name"), required=True),
        Field("channel", _l("Channel"), kind="select", choices=channels, required=True, default="other"),
        Field("short_label", _l("Caller-ID label")),
    ], [(_l("Project"), lambda o: o.project.name), (_l("Name"), lambda o: o.name),
        (_l("Channel"), lambda o: o.channel), (_l("Active"), lambda o: o.active)],
        create_source, update_source, toggle="active", order_by=(Source.project_id, Source.name)),
    Entity("campaigns", _l("Campaigns"), Campaign, [
        Field("source_id", _l("Source"), kind="select", choices=sources, required=True, on_edit=False),
        Field("name", _l("Name"), required=True),
        Field("utm_campaign", _l("utm_campaign value")),
    ], [(_l("Source"), lambda o: o.source.name), (_l("Name"), lambda o: o.name),
        (_l("utm_campaign value"), lambda o: o.utm_campaign), (_l("Active"), lambda o: o.active)],
        create_campaign, None, toggle="active", order_by=(Campaign.source_id, Campaign.name)),
    Entity("pools", _l("Number pools"), NumberPool, [
        Field("project_id", _l("Project"), kind="select", choices=projects, required=True, on_edit=False),
        Field("name", _l("Name"), required=True, on_edit=False),
        Field("source_id", _l("Source"), kind="select", choices=sources),
        Field("hold_seconds", _l("Hold a number after the visit (seconds)"), kind="int", default=900),
        Field("fallback_number", _l("Fallback number when the pool is exhausted"), kind="phone"),
    ] + ([Field("promo_mode", _l("Show a promo code"), kind="select", choices=promo_modes, default="off")]
         if _has(NumberPool, "promo_mode") else []),
        [(_l("Name"), lambda o: o.name), (_l("Hold (s)"), lambda o: o.hold_seconds),
         (_l("Fallback"), lambda o: o.fallback_number), (_l("Held / numbers"), _pool_held),
         (_l("Exhausted"), lambda o: o.exhausted_count), (_l("Refused (since start)"), _pool_refused),
         (_l("Active"), lambda o: o.active)],
        create_pool, update_pool, toggle="active", order_by=(NumberPool.project_id, NumberPool.name)),
    Entity("numbers", _l("Tracking numbers"), TrackingNumber, [
        Field("project_id", _l("Project"), kind="select", choices=projects, required=True, on_edit=False),
        Field("number", _l("Number"), kind="phone", required=True, on_edit=False, placeholder="+7 495 123-45-67"),
        Field("source_id", _l("Source (static number)"), kind="select", choices=sources),
        Field("campaign_id", _l("Campaign"), kind="select", choices=campaigns),
        Field("pool_id", _l("Pool (dynamic number)"), kind="select", choices=pools),
        Field("description", _l("Description"), maxlen=200),
        Field("callerid_prefix", _l("Prefix caller-ID name with the source"), kind="bool", default=True),
        Field("record", _l("Record calls"), kind="bool", default=True),
    ], [(_l("Number"), lambda o: o.number), (_l("Project"), lambda o: o.project.name),
        (_l("Source"), lambda o: _name(o, "source")), (_l("Campaign"), lambda o: _name(o, "campaign")),
        (_l("Pool"), lambda o: _name(o, "pool")), (_l("Active"), lambda o: o.active)],
        create_number, update_number, query=_active_numbers,
        extra_links=[("settings_tools.numbers_csv", _l("CSV import / export"))]),
    Entity("rules", _l("Routing rules"), RoutingRule, [
        Field("project_id", _l("Project"), kind="select", choices=projects, required=True, on_edit=False),
        Field("name", _l("Name"), required=True),
        Field("priority", _l("Priority (lower first)"), kind="int", default=100),
        Field("source_id", _l("Source"), kind="select", choices=sources),
        Field("campaign_id", _l("Campaign"), kind="select", choices=campaigns),
        Field("keyword_regex", _l("Keyword (regular expression)")),
        Field("utm_regex", _l("UTM term (regular expression)")),
        Field("time_from", _l("From (HH:MM, project time)"), kind="time"),
        Field("time_to", _l("To (HH:MM)"), kind="time"),
        Field("weekdays", _l("Weekdays (1 = Monday … 7 = Sunday)"), default="1234567", maxlen=7),
        Field("queue", _l("Queue")),
        Field("target", _l("Dial target instead of a queue")),
        Field("record_mode", _l("Record"), kind="select", choices=tristate,
              get=lambda o: None if o.record is None else ("yes" if o.record else "no")),
        Field("enabled", _l("Enabled"), kind="bool", default=True),
    ], [(_l("Priority"), lambda o: o.priority), (_l("Name"), lambda o: o.name),
        (_l("Queue"), lambda o: o.queue or o.target), (_l("Weekdays"), lambda o: o.weekdays),
        (_l("From"), lambda o: o.time_from), (_l("To"), lambda o: o.time_to), (_l("Enabled"), lambda o: o.enabled)],
        create_rule, update_rule, toggle="enabled", delete=True,
        order_by=(RoutingRule.project_id, RoutingRule.priority, RoutingRule.id),
        extra_links=[("settings_tools.routing_test", _l("Test a call"))]),
    Entity("operators", _l("Operators"), Operator, [
        Field("name", _l("Name"), required=True),
        Field("interface", _l("Interface"), required=True, placeholder="PJSIP/101"),
        Field("member_name", _l("Queue member name")),
        Field("extension", _l("Extension")),
        Field("queues", _l("Queues (comma separated)")),
    ], [(_l("Name"), lambda o: o.name), (_l("Interface"), lambda o: o.interface),
        (_l("Queues"), lambda o: o.queues), (_l("Active"), lambda o: o.active)],
        create_operator, update_operator, toggle="active", order_by=Operator.name),
    Entity("promo", _l("Promo codes"), PromoCode, [
        Field("project_id", _l("Project"), kind="select", choices=projects, required=True, on_edit=False),
        Field("code", _l("Code (digits)"), required=True, maxlen=20),
        Field("source_id", _l("Source"), kind="select", choices=sources),
        Field("campaign_id", _l("Campaign"), kind="select", choices=campaigns),
        Field("valid_from", _l("Valid from (date)"), kind="date"),
        Field("valid_to", _l("Valid until (date)"), kind="date"),
    ], [(_l("Code"), lambda o: o.code), (_l("Source"), lambda o: o.source_id), (_l("Valid from"), lambda o: o.valid_from),
        (_l("Valid until"), lambda o: o.valid_to), (_l("Active"), lambda o: o.active)],
        create_promo, update_promo, toggle="active", order_by=(PromoCode.project_id, PromoCode.code)),
    Entity("users", _l("Users"), User, [
        Field("username", _l("Username"), required=True, on_edit=False),
        Field("password", _l("Password (empty: unchanged)"), kind="password"),
        Field("role", _l("Role"), kind="select", choices=roles, required=True, default="operator"),
        Field("language", _l("Language"), kind="select", choices=languages, required=True,
              default=lambda: config().general.language),
        Field("operator_id", _l("Operator (for operators' own calls and screen pop)"), kind="select",
              choices=operators),
        Field("active", _l("Active"), kind="bool", on_create=False, default=True),
    ], [(_l("Username"), lambda o: o.username), (_l("Role"), lambda o: o.role),
        (_l("Language"), lambda o: o.language), (_l("Active"), lambda o: o.active)],
        create_user, update_user, toggle="active", order_by=User.username),
]

BY_SLUG = {e.slug: e for e in ENTITIES}
