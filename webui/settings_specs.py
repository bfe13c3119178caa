"""The settings pages' entities: each one's form fields (labels, choices, defaults) and list
columns, and how a submitted form reaches :mod:`calltracking.entities`, which applies the rules."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import object_session

from calltracking import entities
from calltracking.dni import setup as dni_setup
from calltracking import sources as auto_sources
from calltracking.settings_rules import CHANNELS, LANGUAGES, PROMO_MODES, ROLES
from calltracking.models import (
    Campaign, NumberPool, Operator, Project, PromoCode, RoutingRule, Source, TrackingNumber, User,
)

from webui import labels
from webui.context import config, current_user
from webui.crud import Entity, Field
from webui.dni import pool_held_text, pool_refused_text


def _recommended_text(pool) -> str:
    """The pools page's size column: the recommended size over the last 7 days (DNI setup page)."""
    n = dni_setup.pool_recommended(object_session(pool), pool)
    return "—" if n is None else str(n)


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
    return labels.choices(labels.CHANNELS, CHANNELS)


def roles(_s):
    return labels.choices(labels.ROLES, ROLES)


LANGUAGE_NAMES = {"en": "English", "ru": "Русский"}


def languages(_s):
    return [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES]


def tristate(_s):
    return [("yes", _l("yes")), ("no", _l("no"))]


def promo_modes(_s):
    return labels.choices(labels.PROMO_MODES, PROMO_MODES)


def _name(obj, attr):
    v = getattr(obj, attr, None)
    return v.name if v is not None else ""


# ------------------------------------------------- form values -> the core
# The rules (what is valid, what belongs together) are in calltracking.entities and
# calltracking.settings_rules; these functions only turn a form's values into its arguments.
def _get(s, model, obj_id):
    return s.get(model, obj_id) if obj_id else None


def _region():
    return config().general.default_region


def create_project(s, v):
    return entities.add_project(s, v["key"], v["name"], v["timezone"] or config().general.timezone,
                                v["default_queue"], v["default_number"], _region(),
                                v["first_call_window_days"], v["allowed_origins"], v["currency"])


def update_project(s, p, v):
    entities.update_project(s, p, region=_region(), **v)


def create_source(s, v):
    return entities.add_source(s, s.get(Project, v["project_id"]), v["name"], v["channel"] or "other",
                               v["short_label"])


def update_source(s, src, v):
    if v["name"].strip() != src.name:       # the old name stays an alias (later visits still arrive)
        auto_sources.rename(s, src, v["name"])
    entities.update_source(s, src, **v)


def create_campaign(s, v):
    return entities.add_campaign(s, s.get(Source, v["source_id"]), v["name"], v["utm_campaign"])


def create_pool(s, v):
    return entities.add_pool(s, s.get(Project, v["project_id"]), v["name"], v["hold_seconds"],
                             v["fallback_number"], _get(s, Source, v["source_id"]), _region(),
                             v["promo_mode"])


def update_pool(s, pool, v):
    entities.update_pool(s, pool, source=_get(s, Source, v["source_id"]), hold_seconds=v["hold_seconds"],
                         fallback_number=v["fallback_number"], promo_mode=v["promo_mode"], region=_region())


def _mapping(s, v):
    return dict(source=_get(s, Source, v["source_id"]), campaign=_get(s, Campaign, v["campaign_id"]),
                pool=_get(s, NumberPool, v["pool_id"]), description=v["description"],
                callerid_prefix=v["callerid_prefix"], record=v["record"])


def create_number(s, v):
    return entities.add_number(s, s.get(Project, v["project_id"]), v["number"], _region(), **_mapping(s, v))


def update_number(s, tn, v):
    entities.update_number(s, tn, **_mapping(s, v))


def _rule_args(s, v):
    args = {k: val for k, val in v.items() if k not in ("project_id", "source_id", "campaign_id", "record_mode")}
    rec = v["record_mode"]
    return dict(args, source=_get(s, Source, v["source_id"]), campaign=_get(s, Campaign, v["campaign_id"]),
                record=None if rec is None else rec == "yes", forwarded_from=v.get("forwarded_from") or "",
                region=_region())


def create_rule(s, v):
    args = _rule_args(s, v)
    return entities.add_rule(s, s.get(Project, v["project_id"]), args.pop("name"), **args)


def update_rule(s, r, v):
    entities.update_rule(s, r, **_rule_args(s, v))


def create_operator(s, v):
    return entities.add_operator(s, v["name"], v["interface"], v["member_name"], v["extension"], v["queues"])


def update_operator(s, op, v):
    entities.update_operator(s, op, **v)


def _promo_args(s, v):
    return dict(source=_get(s, Source, v["source_id"]), campaign=_get(s, Campaign, v["campaign_id"]),
                valid_from=v["valid_from"], valid_to=v["valid_to"])


def create_promo(s, v):
    return entities.add_promo(s, s.get(Project, v["project_id"]), v["code"], **_promo_args(s, v))


def update_promo(s, p, v):
    entities.update_promo(s, p, code=v["code"], **_promo_args(s, v))


def create_user(s, v):
    return entities.add_user(s, v["username"], v["password"], v["role"], v["language"] or "en",
                             _get(s, Operator, v["operator_id"]))


def update_user(s, u, v):
    entities.update_user(s, u, role=v["role"], language=v["language"],
                         operator=_get(s, Operator, v["operator_id"]), active=v["active"],
                         password=v["password"], acting=current_user())


def _active_numbers(s, args):
    stmt = select(TrackingNumber).order_by(TrackingNumber.number, TrackingNumber.id)
    if not args.get("all"):
        stmt = stmt.where(TrackingNumber.active.is_(True))
    return stmt


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
        (_l("Channel"), lambda o: labels.label(labels.CHANNELS, o.channel)), (_l("Automatic"), lambda o: o.auto),
        (_l("Active"), lambda o: o.active)],
        create_source, update_source, toggle="active", order_by=(Source.project_id, Source.name),
        extra_links=[("settings.merge_sources", _l("Merge sources"))]),
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
        Field("promo_mode", _l("Show a promo code"), kind="select", choices=promo_modes, default="off"),
    ], [(_l("Name"), lambda o: o.name), (_l("Hold (s)"), lambda o: o.hold_seconds),
        (_l("Fallback"), lambda o: o.fallback_number), (_l("Held / numbers"), pool_held_text),
        (_l("Exhausted"), lambda o: o.exhausted_count), (_l("Refused (since start)"), pool_refused_text),
        (_l("Handed out today"), lambda o: dni_setup.pool_today(object_session(o), o)),
        (_l("Recommended size"), _recommended_text), (_l("Active"), lambda o: o.active)],
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
        Field("forwarded_from", _l("Forwarded from (phone number)"), kind="phone"),
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
    ], [(_l("Username"), lambda o: o.username), (_l("Role"), lambda o: labels.label(labels.ROLES, o.role)),
        (_l("Language"), lambda o: o.language), (_l("Active"), lambda o: o.active)],
        create_user, update_user, toggle="active", order_by=User.username),
]

BY_SLUG = {e.slug: e for e in ENTITIES}
