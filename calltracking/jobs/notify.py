"""What an e-mail or SMS/chat webhook notification says: call alerts and digests.

Rules are ``notification_rules`` rows of a project (when each is queued:
:mod:`calltracking.jobs.rules`):

* channel ``email``: ``target`` is a list of addresses (comma, semicolon or space
  separated: :func:`recipients`); the message is :func:`call_email`.
* channel ``webhook``: ``target`` is the URL of an SMS gateway or chat webhook and
  ``body_template`` (or ``[notify] webhook_template``) the request body
  (:func:`render_webhook`). A webhook rule with a ``secret`` is signed like a CRM request.
* Both may use ``$caller``, ``$caller_name``, ``$did``, ``$project``, ``$project_name``,
  ``$source``, ``$campaign``, ``$queue``, ``$time``, ``$status``, ``$reason``, ``$wait``,
  ``$operator``, ``$url`` (:func:`call_context`, :class:`string.Template`; values are
  URL-encoded in the URL and JSON-escaped in a body that starts with ``{`` or ``[``, which
  is then sent as ``application/json``; no body → ``GET``).
* channel ``sms``: ``target`` is a list of phone numbers (:func:`calltracking.sms.numbers.recipients`,
  E.164) and the message one short line in ``[general] language`` (:func:`sms_call_text`):
  ``Missed call: <caller> <name>, <source>, <local time>`` — or the rule's ``body_template``
  with the ``$`` variables below — trimmed to ``[notify] sms_max_parts`` parts
  (:func:`calltracking.sms.encoding.fit`); the link to the call is added when it fits
  untrimmed. One message per recipient (:func:`sms_messages`).
* event ``digest_daily`` / ``digest_weekly``, channel ``email`` (or ``sms``: one line of totals,
  :func:`digest_sms`): a summary of the period
  :func:`digest_period` names — the previous local day / ISO week — in the project's time
  zone: calls per source, answered, missed, and the callbacks pending (missed in the
  ``PENDING_WINDOW`` before the period's end and still open on the missed-calls worklist,
  :func:`calltracking.calls.missed.worklist`).

Texts are in ``[general] language`` (``en`` or ``ru``); every value is one line of text
(control characters become spaces) and HTML-escaped in the HTML part.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import string
import urllib.parse
from zoneinfo import ZoneInfo

from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from calltracking.calls.missed import worklist
from calltracking.models import Call, NotificationRule, Project, Source
from calltracking.sms import encoding, numbers

CHANNELS = ("email", "webhook", "sms")       # the rule channels whose messages are built here
PENDING_WINDOW = dt.timedelta(days=7)
EMAIL_RE = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")

TEXT = {
    "en": {
        "missed_subject": "Missed call from {caller} ({source})",
        "finished_subject": "Call from {caller} ({source}): {status}",
        "project": "Project", "caller": "Caller", "caller_name": "Caller name", "did": "Number dialled",
        "source": "Source", "campaign": "Campaign", "queue": "Queue", "time": "Time", "wait": "Waited",
        "reason": "Reason", "operator": "Operator", "open": "Open",
        "digest_daily": "Daily call digest", "digest_weekly": "Weekly call digest",
        "calls": "Calls", "answered": "Answered", "missed": "Missed", "total": "Total",
        "pending": "Callbacks pending", "pending_note": "missed in the last 7 days, not called back",
        "none": "(none)", "no_calls": "No calls in this period.",
    },
    "ru": {
        "missed_subject": "Пропущенный звонок от {caller} ({source})",
        "finished_subject": "Звонок от {caller} ({source}): {status}",
        "project": "Проект", "caller": "Номер", "caller_name": "Имя", "did": "Набранный номер",
        "source": "Источник", "campaign": "Кампания", "queue": "Очередь", "time": "Время",
        "wait": "Ожидание", "reason": "Причина", "operator": "Оператор", "open": "Открыть",
        "digest_daily": "Сводка звонков за день", "digest_weekly": "Сводка звонков за неделю",
        "calls": "Звонки", "answered": "Отвечено", "missed": "Пропущено", "total": "Итого",
        "pending": "Ждут перезвона", "pending_note": "пропущены за 7 дней, перезвона не было",
        "none": "(нет)", "no_calls": "За этот период звонков не было.",
    },
}

SMS_TEXT = {
    "en": {"missed": "Missed call: {caller}, {source}, {time}", "withheld": "number withheld",
           "time": "%b %d %H:%M", "digest": "{title}, {project}, {period}: calls {calls}, answered "
           "{answered}, missed {missed}; callbacks pending {pending}"},
    "ru": {"missed": "Пропущен звонок: {caller}, {source}, {time}", "withheld": "номер скрыт",
           "time": "%d.%m %H:%M", "digest": "{title}, {project}, {period}: звонков {calls}, отвечено "
           "{answered}, пропущено {missed}; ждут перезвона {pending}"},
}

_env = SandboxedEnvironment(autoescape=True, trim_blocks=True, lstrip_blocks=True)

CALL_HTML = _env.from_string("""<!doctype html>
<html><body style="font-family: sans-serif">
<h2>{{ subject }}</h2>
<table cellpadding="4">
{% for label, value in rows %}<tr><th align="left">{{ label }}</th><td>{{ value }}</td></tr>
{% endfor %}</table>
{% if url %}<p><a href="{{ url }}">{{ t.open }}</a></p>{% endif %}
</body></html>""")

DIGEST_HTML = _env.from_string("""<!doctype html>
<html><body style="font-family: sans-serif">
<h2>{{ subject }}</h2>
{% if not sources %}<p>{{ t.no_calls }}</p>{% else %}
<table cellpadding="4" border="1" style="border-collapse: collapse">
<tr><th align="left">{{ t.source }}</th><th>{{ t.calls }}</th><th>{{ t.answered }}</th><th>{{ t.missed }}</th></tr>
{% for r in sources %}<tr><td>{{ r.source }}</td><td>{{ r.calls }}</td><td>{{ r.answered }}</td><td>{{ r.missed }}</td></tr>
{% endfor %}<tr><th align="left">{{ t.total }}</th><th>{{ total.calls }}</th><th>{{ total.answered }}</th><th>{{ total.missed }}</th></tr>
</table>{% endif %}
<h3>{{ t.pending }}: {{ pending_count }}</h3><p><small>{{ t.pending_note }}</small></p>
{% if pending %}<ul>{% for p in pending %}<li>{{ p.time }} — {{ p.caller }} {{ p.caller_name }} ({{ p.source }})</li>
{% endfor %}</ul>{% endif %}
</body></html>""")


def _t(config) -> dict:
    return TEXT.get(getattr(config.general, "language", "en"), TEXT["en"])


def _clean(v) -> str:
    """One line of text: control characters (header or line injection) become spaces."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", "" if v is None else str(v)).strip()


def recipients(target: str) -> list[str]:
    """The addresses of an e-mail rule's ``target``; ValueError for a bad or missing one."""
    out = [a.strip() for a in re.split(r"[,;\s]+", target or "") if a.strip()]
    bad = [a for a in out if not EMAIL_RE.match(a)]
    if bad or not out:
        raise ValueError(f"invalid e-mail address {bad[0]!r}" if bad else "no e-mail address given")
    return out


def call_context(config, call: Call) -> dict:
    """The template variables of one call (plain strings, unescaped)."""
    t = _t(config)
    tz = ZoneInfo(call.project.timezone if call.project else config.general.timezone)
    started = call.started_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z") if call.started_at else ""
    base = (config.web.public_url or "").rstrip("/")
    return {k: _clean(v) for k, v in {
        "caller": call.caller_number or "unknown", "caller_name": call.caller_name,
        "did": call.did, "project": call.project.key if call.project else "",
        "project_name": call.project.name if call.project else "",
        "source": call.source.name if call.source else t["none"],
        "campaign": call.campaign.name if call.campaign else "", "queue": call.queue,
        "time": started, "status": call.status, "reason": call.missed_reason or "",
        "wait": f"{float(call.wait_seconds):.0f} s" if call.wait_seconds is not None else "",
        "operator": call.operator_name,
        "url": f"{base}/calls/{call.id}" if base and call.id else "",
    }.items()}


# -------------------------------------------------------------- call messages
def call_email(config, rule: NotificationRule, call: Call) -> dict:
    """The e-mail (text and HTML) about one call: missed, or finished with its status."""
    t = _t(config)
    ctx = call_context(config, call)
    key = "missed_subject" if call.status == "missed" else "finished_subject"
    subject = t[key].format(**ctx)
    rows = [(t[k], ctx[k]) for k in ("project_name", "caller", "caller_name", "did", "source", "campaign",
                                     "queue", "time", "wait", "reason", "operator")
            if k in t and ctx.get(k)]
    rows.insert(0, (t["project"], ctx["project_name"]))
    rows = [r for r in rows if r[1]]
    text = subject + "\n\n" + "\n".join(f"{label}: {value}" for label, value in rows)
    if ctx["url"]:
        text += f"\n\n{ctx['url']}"
    html = CALL_HTML.render(subject=subject, rows=rows, url=ctx["url"], t=t)
    return {"to": recipients(rule.target), "subject": subject, "text": text + "\n", "html": html}


def render_webhook(url_template: str, body_template: str, ctx: dict) -> dict:
    """The HTTP request of a webhook rule; values are escaped for where they land."""
    url = string.Template(url_template.strip()).safe_substitute(
        {k: urllib.parse.quote(v, safe="") for k, v in ctx.items()})
    body_template = (body_template or "").strip()
    if not body_template:
        return {"method": "GET", "url": url, "headers": {}, "body": None}
    if body_template[:1] in "{[":
        body = string.Template(body_template).safe_substitute(
            {k: json.dumps(v, ensure_ascii=False)[1:-1] for k, v in ctx.items()})
        ctype = "application/json; charset=utf-8"
    else:
        body = string.Template(body_template).safe_substitute(ctx)
        ctype = "text/plain; charset=utf-8"
    return {"method": "POST", "url": url, "headers": {"Content-Type": ctype}, "body": body}


def sms_messages(config, rule: NotificationRule, text: str) -> dict:
    """``{"messages": [...]}``: ``text`` to each recipient of an SMS rule, with its encoding and
    parts; ValueError for a bad number."""
    length = encoding.length(text)
    return {"messages": [{"to": to, "text": text, "encoding": length.encoding, "parts": length.parts}
                         for to in numbers.recipients(rule.target, config.general.default_region)]}


def sms_call_text(config, rule: NotificationRule, call: Call) -> str:
    """The text message about one missed call (the rules: the module's docstring)."""
    t = SMS_TEXT.get(getattr(config.general, "language", "en"), SMS_TEXT["en"])
    ctx = call_context(config, call)
    max_parts = config.notify.sms_max_parts
    if (rule.body_template or "").strip():
        return encoding.fit(_clean(string.Template(rule.body_template).safe_substitute(ctx)), max_parts)
    tz = ZoneInfo(call.project.timezone if call.project else config.general.timezone)
    who = " ".join(v for v in (_clean(call.caller_number) or t["withheld"], ctx["caller_name"]) if v)
    text = t["missed"].format(caller=who, source=ctx["source"],
                              time=call.started_at.astimezone(tz).strftime(t["time"]) if call.started_at else "")
    linked = f"{text} {ctx['url']}"
    if ctx["url"] and len(encoding.split(linked)) <= max_parts:
        return linked
    return encoding.fit(text, max_parts)


def rule_message(config, session: Session, rule: NotificationRule, call: Call) -> dict:
    """The delivery payload of an email, webhook or SMS rule for one call."""
    if rule.channel == "sms":
        return sms_messages(config, rule, sms_call_text(config, rule, call))
    if rule.channel == "email":
        return call_email(config, rule, call)
    if rule.channel == "webhook":
        template = rule.body_template or config.notify.webhook_template
        req = render_webhook(rule.target or config.notify.webhook_url, template, call_context(config, call))
        req["signed"] = bool(rule.secret)  # signed at each attempt (calltracking.jobs.outbox.attempt)
        return req
    raise ValueError(f"channel {rule.channel!r} cannot send call alerts")


# ---------------------------------------------------------------------- digests
def digest_period(kind: str, local_now: dt.datetime) -> tuple[dt.date, dt.date]:
    """(first day, day after the last) of the period a digest sent at ``local_now`` covers."""
    today = local_now.date()
    if kind == "digest_daily":
        return today - dt.timedelta(days=1), today
    monday = today - dt.timedelta(days=today.weekday())
    return monday - dt.timedelta(days=7), monday


def _utc(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(dt.timezone.utc)


def digest_data(config, session: Session, project: Project, first: dt.date, end: dt.date) -> dict:
    """Calls per source (answered, missed) started in [first, end) local time, and the callbacks
    pending at ``end`` (the first 20 listed, all counted)."""
    tz = ZoneInfo(project.timezone)
    start_utc, end_utc = _utc(first, tz), _utc(end, tz)
    t = _t(config)
    rows = session.execute(
        select(Source.name, func.count(Call.id),
               func.sum(case((Call.status == "answered", 1), else_=0)),
               func.sum(case((Call.status == "missed", 1), else_=0)))
        .select_from(Call).outerjoin(Source, Source.id == Call.source_id)
        .where(Call.project_id == project.id, Call.started_at >= start_utc, Call.started_at < end_utc,
               Call.status.in_(("answered", "missed")))
        .group_by(Source.name).order_by(func.count(Call.id).desc(), Source.name)).all()
    sources = [{"source": name or t["none"], "calls": int(n), "answered": int(a or 0),
                "missed": int(m or 0)} for name, n, a, m in rows]
    total = {k: sum(r[k] for r in sources) for k in ("calls", "answered", "missed")}
    pending = []
    open_rows = worklist(session, project.id, "open", end_utc - PENDING_WINDOW, end_utc, limit=5000)
    pending_calls = [r.call for r in open_rows]
    for c in pending_calls[:20]:
        pending.append({"time": c.started_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                        "caller": _clean(c.caller_number), "caller_name": _clean(c.caller_name),
                        "source": c.source.name if c.source else t["none"]})
    return {"sources": sources, "total": total, "pending": pending, "pending_count": len(pending_calls)}


def digest_email(config, session: Session, rule: NotificationRule, kind: str,
                 first: dt.date, end: dt.date) -> dict:
    """The digest e-mail of ``rule``'s project for the days [first, end)."""
    t = _t(config)
    project = session.get(Project, rule.project_id)
    data = digest_data(config, session, project, first, end)
    last = end - dt.timedelta(days=1)
    period = first.isoformat() if first == last else f"{first.isoformat()} – {last.isoformat()}"
    subject = f"{t[kind]}: {_clean(project.name)}, {period}"
    lines = [subject, ""]
    if not data["sources"]:
        lines.append(t["no_calls"])
    for r in data["sources"]:
        lines.append(f"{r['source']}: {t['calls'].lower()} {r['calls']}, {t['answered'].lower()} "
                     f"{r['answered']}, {t['missed'].lower()} {r['missed']}")
    tot = data["total"]
    lines += [f"{t['total']}: {tot['calls']}, {t['answered'].lower()} {tot['answered']}, "
              f"{t['missed'].lower()} {tot['missed']}", "",
              f"{t['pending']}: {data['pending_count']} ({t['pending_note']})"]
    lines += [f"  {p['time']}  {p['caller']} {p['caller_name']} ({p['source']})" for p in data["pending"]]
    html = DIGEST_HTML.render(subject=subject, t=t, **data)
    return {"to": recipients(rule.target), "subject": subject, "text": "\n".join(lines) + "\n",
            "html": html}


def digest_sms(config, session: Session, rule: NotificationRule, kind: str, first: dt.date, end: dt.date) -> dict:
    """The digest of ``rule``'s project for the days [first, end) as one line of totals by SMS."""
    t, st = _t(config), SMS_TEXT.get(getattr(config.general, "language", "en"), SMS_TEXT["en"])
    project = session.get(Project, rule.project_id)
    data = digest_data(config, session, project, first, end)
    last = end - dt.timedelta(days=1)
    period = first.isoformat() if first == last else f"{first.isoformat()}/{last.isoformat()}"  # GSM-7: no "–"
    text = st["digest"].format(title=t[kind], project=_clean(project.name), period=period,
                               pending=data["pending_count"], **data["total"])
    return sms_messages(config, rule, encoding.fit(text, config.notify.sms_max_parts))
