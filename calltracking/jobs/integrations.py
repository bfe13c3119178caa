"""The call integrations: a CRM webhook and Google Analytics 4, one request per finished call.

Configured as ``notification_rules`` rows of a project with event ``call_finished``
(queued by :func:`calltracking.jobs.rules.enqueue_finished`, sent through the outbox):

* ``crm``: ``target`` is a URL; JSON per finished call (attribution, times, operator,
  recording URL, tags, ``is_target``: :func:`crm_payload`), signed with the rule's ``secret``
  (:func:`calltracking.jobs.transport.sign`).
* ``ga4``: GA4 Measurement Protocol. ``target`` is the measurement id (``G-XXXX``, sent to
  Google's endpoint) or a full endpoint URL (which may carry ``measurement_id``); ``secret``
  is the API secret. The event (``phone_call``: :func:`ga4_payload`) carries the visitor
  session's GA client id (or a stable pseudonymous one: :func:`ga4_client_id`), the source and
  ``target_call`` (yes/no).

Either can send only target calls (the rule's ``target_only``: :func:`calltracking.jobs.rules.enqueue_finished`).

The e-mail and SMS/chat webhook messages of a call are in :mod:`calltracking.jobs.notify`.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import urllib.parse
from typing import Optional

from sqlalchemy.orm import Session

from calltracking.models import Call, NotificationRule, VisitorSession

GA4_ENDPOINT = "https://www.google-analytics.com/mp/collect"
CHANNELS = ("crm", "ga4")           # the rule channels whose requests are built here


def _iso(t):
    return t.astimezone(dt.timezone.utc).isoformat() if t else None


def _num(v):
    return float(v) if v is not None else None


# ---------------------------------------------------------------------- CRM
def recording_url(config, call: Call) -> Optional[str]:
    """Where the web UI serves the call's recording (absolute with ``[web] public_url``)."""
    if not call.recording_file:
        return None
    base = (config.web.public_url or "").rstrip("/")
    return f"{base}/calls/{call.id}/recording" if base else f"/calls/{call.id}/recording"


def crm_payload(config, session: Session, call: Call) -> dict:
    """The JSON a CRM receives for one finished call: the call, its attribution and the session."""
    vs = session.get(VisitorSession, call.session_id) if call.session_id else None
    return {
        "event": "call_finished",
        "call": {
            "id": call.id, "pbx_id": call.pbx_id, "linkedid": call.linkedid,
            "project": call.project.key if call.project else None,
            "did": call.did, "caller": call.caller_number, "caller_name": call.caller_name,
            "status": call.status, "missed_reason": call.missed_reason,
            "first_call": call.first_call, "queue": call.queue or None,
            "is_target": bool(call.is_target),
            "started_at": _iso(call.started_at), "answered_at": _iso(call.answered_at),
            "ended_at": _iso(call.ended_at), "wait_seconds": _num(call.wait_seconds),
            "talk_seconds": _num(call.talk_seconds), "hold_seconds": _num(call.hold_seconds),
            "operator": call.operator_name or None,
            "recording_url": recording_url(config, call),
            "recording_seconds": _num(call.recording_seconds),
            "tags": sorted(t.name for t in call.tags),
            "value": _num(call.value), "comment": call.comment or None,
        },
        "attribution": {
            "type": call.attribution,
            "source": call.source.name if call.source else None,
            "channel": call.source.channel if call.source else None,
            "campaign": call.campaign.name if call.campaign else None,
            "time_to_call_seconds": _num(call.time_to_call_seconds),
            "session": None if vs is None else {
                "visitor_id": vs.visitor_id, "ga_client_id": vs.ga_client_id or None,
                "utm_source": vs.utm_source, "utm_medium": vs.utm_medium,
                "utm_campaign": vs.utm_campaign, "utm_term": vs.utm_term,
                "utm_content": vs.utm_content, "gclid": vs.gclid, "yclid": vs.yclid,
                "keyword": vs.keyword, "referrer": vs.referrer, "landing_page": vs.landing_page,
            },
        },
    }


def crm_request(rule: NotificationRule, payload: dict) -> dict:
    """The request of a CRM delivery; signed at each attempt when the rule has a secret."""
    body = json.dumps(payload, ensure_ascii=False, sort_keys=True)
    headers = {"Content-Type": "application/json; charset=utf-8",
               "X-Calltracking-Event": payload.get("event", "call_finished")}
    return {"method": "POST", "url": rule.target, "headers": headers, "body": body,
            "signed": bool(rule.secret)}


# ---------------------------------------------------------------------- GA4
def ga4_client_id(call: Call, vs: VisitorSession | None) -> str:
    """The visitor's GA client id; for calls without one a stable pseudonymous id."""
    if vs is not None and vs.ga_client_id:
        return vs.ga_client_id
    h = hashlib.sha256(f"calltracking:{call.project_id}:{call.caller_number}".encode()).hexdigest()
    return f"{int(h[:8], 16)}.{int(h[8:16], 16)}"


def ga4_url(rule: NotificationRule) -> str:
    """Google's endpoint with the measurement id, or the rule's own URL; the API secret appended."""
    target = rule.target.strip()
    if target.startswith(("http://", "https://")):
        url, params = target, {}
    else:
        url, params = GA4_ENDPOINT, {"measurement_id": target}
    if rule.secret:
        params["api_secret"] = rule.secret
    if params:
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
    return url


def ga4_payload(session: Session, call: Call) -> dict:
    """A ``phone_call`` event for the visitor's GA client, at the call's end."""
    vs = session.get(VisitorSession, call.session_id) if call.session_id else None
    params = {
        "source": call.source.name if call.source else "(none)",
        "campaign": call.campaign.name if call.campaign else (vs.utm_campaign if vs else "") or "(none)",
        "medium": (vs.utm_medium if vs else "") or (call.source.channel if call.source else "") or "(none)",
        "attribution": call.attribution,
        "call_status": call.status,
        "first_call": "yes" if call.first_call else "no",
        "target_call": "yes" if call.is_target else "no",
        "wait_seconds": round(_num(call.wait_seconds) or 0),
        "talk_seconds": round(_num(call.talk_seconds) or 0),
        "call_id": f"{call.pbx_id}:{call.linkedid}",
        "engagement_time_msec": 1,
    }
    if vs is not None and vs.utm_term:
        params["term"] = vs.utm_term
    body = {"client_id": ga4_client_id(call, vs), "non_personalized_ads": True,
            "events": [{"name": "phone_call", "params": params}]}
    if call.ended_at:
        body["timestamp_micros"] = int(call.ended_at.timestamp() * 1_000_000)
    return body


def ga4_request(rule: NotificationRule, payload: dict) -> dict:
    """The Measurement Protocol request of a GA4 delivery."""
    return {"method": "POST", "url": ga4_url(rule), "body": json.dumps(payload, ensure_ascii=False),
            "headers": {"Content-Type": "application/json"}}


def build_request(config, session: Session, rule: NotificationRule, call: Call) -> dict:
    """The request a ``crm`` or ``ga4`` rule sends for one call."""
    if rule.channel == "crm":
        return crm_request(rule, crm_payload(config, session, call))
    if rule.channel == "ga4":
        return ga4_request(rule, ga4_payload(session, call))
    raise ValueError(f"channel {rule.channel!r} is not a call integration")
