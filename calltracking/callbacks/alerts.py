"""The ``callback_unreached`` notification: what a mail, webhook or SMS rule says when a website
callback request ends unreached (every attempt made, the visitor never answered).

Webhook templates get the variables ``$phone``, ``$project``, ``$project_name``, ``$source``,
``$requested`` (the request's time in the project's zone), ``$attempts`` and ``$url`` (the
missed-calls worklist), escaped like a call alert's. An SMS says
``Callback request unreached: <phone>, <source>, <time>, <n> attempts`` (or in Russian) and
is trimmed to ``[notify] sms_max_parts`` like a missed-call alert.
"""
from __future__ import annotations

import string
from zoneinfo import ZoneInfo

from calltracking.jobs import notify
from calltracking.models import CallbackRequest, NotificationRule
from calltracking.sms import encoding

TEXT = {
    "en": {"subject": "Callback request unreached: {phone} ({source})", "phone": "Number",
           "project": "Project", "source": "Source", "requested": "Requested", "attempts": "Attempts",
           "sms": "Callback request unreached: {phone}, {source}, {requested}, {attempts} attempts",
           "time": "%b %d %H:%M", "none": "(none)"},
    "ru": {"subject": "Не дозвонились по заявке на звонок: {phone} ({source})", "phone": "Номер",
           "project": "Проект", "source": "Источник", "requested": "Заявка", "attempts": "Попыток",
           "sms": "Не дозвонились по заявке на звонок: {phone}, {source}, {requested}, попыток {attempts}",
           "time": "%d.%m %H:%M", "none": "(нет)"},
}


def _t(config) -> dict:
    return TEXT.get(getattr(config.general, "language", "en"), TEXT["en"])


def context(config, req: CallbackRequest, time_format: str = "%Y-%m-%d %H:%M:%S %Z") -> dict:
    """The template variables of one request (plain one-line strings, unescaped)."""
    t = _t(config)
    tz = ZoneInfo(req.project.timezone)
    base = (config.web.public_url or "").rstrip("/")
    return {k: notify._clean(v) for k, v in {
        "phone": req.phone, "project": req.project.key, "project_name": req.project.name,
        "source": req.source.name if req.source else t["none"],
        "requested": req.requested_at.astimezone(tz).strftime(time_format),
        "attempts": str(req.attempts), "url": f"{base}/missed" if base else "",
    }.items()}


def message(config, rule: NotificationRule, req: CallbackRequest) -> dict:
    """The delivery payload of an email, webhook or SMS rule; ValueError when it cannot be built."""
    t = _t(config)
    if rule.channel == "sms":
        ctx = context(config, req, t["time"])
        text = (string.Template(rule.body_template).safe_substitute(ctx) if (rule.body_template or "").strip()
                else t["sms"].format(**ctx))
        return notify.sms_messages(config, rule, encoding.fit(notify._clean(text), config.notify.sms_max_parts))
    ctx = context(config, req)
    if rule.channel == "email":
        subject = t["subject"].format(**ctx)
        rows = [(t[k], ctx[k if k != "project" else "project_name"])
                for k in ("project", "phone", "source", "requested", "attempts")]
        text = subject + "\n\n" + "\n".join(f"{a}: {b}" for a, b in rows) + (f"\n\n{ctx['url']}" if ctx["url"] else "")
        html = notify.CALL_HTML.render(subject=subject, rows=rows, url=ctx["url"], t=notify._t(config))
        return {"to": notify.recipients(rule.target), "subject": subject, "text": text + "\n", "html": html}
    if rule.channel == "webhook":
        template = rule.body_template or config.notify.webhook_template
        req_ = notify.render_webhook(rule.target or config.notify.webhook_url, template, ctx)
        req_["signed"] = bool(rule.secret)
        return req_
    raise ValueError(f"channel {rule.channel!r} cannot send callback alerts")
