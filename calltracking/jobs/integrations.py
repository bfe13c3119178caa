"""Outgoing deliveries (mail and HTTP) with retries, and the call integrations.

Every message leaves through the ``deliveries`` table (an outbox): it is
written first, then sent by :func:`deliver_due` (the scheduler's
``notifications`` job). A failed attempt is retried with exponential backoff
(``RETRY_BASE`` × 2^(attempt-1), at most ``RETRY_MAX``); after
``MAX_ATTEMPTS`` the delivery is *dead* — the dead-letter list shown in the web
UI (Settings → Integrations), where it can be sent again.

Integrations, configured as ``notification_rules`` rows of a project with
event ``call_finished``:

* ``crm``: ``target`` is a URL; JSON per finished call (attribution, times,
  operator, recording URL, tags), signed with the rule's ``secret`` (see :func:`sign`).
* ``ga4``: GA4 Measurement Protocol. ``target`` is the measurement id
  (``G-XXXX``, sent to Google's endpoint) or a full endpoint URL (which may
  carry ``measurement_id``); ``secret`` is the API secret. The event
  (``phone_call``) carries the visitor session's GA client id and the source.
* ``webhook`` / ``email``: see :mod:`calltracking.jobs.notify` (a webhook rule with a
  ``secret`` is signed like ``crm``).

HTTP targets: every connection — the first and after each redirect — goes only to public
addresses (:func:`public_address`) unless ``[notify] allow_private_targets``: the host is
resolved, every address checked, and the socket connected to a checked address (a DNS answer
that changes in between cannot slip a private address in). Environment proxy variables are
not used. A failed answer is recorded as its status line only, never its body.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import http
import ipaddress
import json
import logging
import smtplib
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage
from typing import Optional

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from calltracking import __version__
from calltracking.db import session_scope
from calltracking.models import Call, Delivery, NotificationRule, VisitorSession, utcnow

log = logging.getLogger(__name__)

RETRY_BASE = 30.0          # seconds before the first retry
RETRY_MAX = 3600.0         # longest wait between two attempts
MAX_ATTEMPTS = 8           # then the delivery is dead (dead-letter list)
HTTP_TIMEOUT = 10.0
FINISHED_LOOKBACK = dt.timedelta(hours=24)   # calls older than this are not sent to a new rule
FINISHED_GRACE = dt.timedelta(seconds=5)     # let the listener finish the record first
GA4_ENDPOINT = "https://www.google-analytics.com/mp/collect"
SIGNATURE_HEADER = "X-Calltracking-Signature"
SIGNED_CHANNELS = ("crm", "webhook")         # their rule's secret signs each attempt


class DeliveryError(Exception):
    def __init__(self, message: str, http_status: int | None = None):
        super().__init__(message)
        self.http_status = http_status


# -------------------------------------------------------------------- outbox
def enqueue(session: Session, channel: str, event: str, payload: dict, *, target: str = "",
            project_id=None, rule_id=None, call_id=None, dedup_key: str | None = None,
            now: dt.datetime | None = None) -> Optional[Delivery]:
    """Add a delivery unless one with ``dedup_key`` exists (then None)."""
    if dedup_key and session.scalar(select(Delivery.id).where(Delivery.dedup_key == dedup_key)):
        return None
    d = Delivery(channel=channel, event=event, payload=json.dumps(payload, ensure_ascii=False),
                 target=target[:1000], project_id=project_id, rule_id=rule_id, call_id=call_id,
                 dedup_key=dedup_key, status="pending", attempts=0, last_error="",
                 next_attempt_at=now or utcnow(), created_at=now or utcnow())
    session.add(d)
    session.flush()
    return d


def backoff(attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt."""
    return min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_MAX)


# ------------------------------------------------------------------ HTTP out
class RefusedTarget(OSError):
    """The target resolves to an address webhooks may not reach."""


def public_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for an address of the public internet. False for loopback, private (10/8,
    172.16/12, 192.168/16, fc00::/7), link-local (169.254/16 — cloud metadata —, fe80::/10),
    shared (100.64/10), multicast, reserved and unspecified (0.0.0.0, ::) addresses; an
    IPv4-mapped IPv6 address is judged as its IPv4 address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def allow_any(_ip) -> bool:
    return True


def target_policy(config):
    """Which addresses ``config`` lets webhooks reach (``[notify] allow_private_targets``)."""
    return allow_any if config.notify.allow_private_targets else public_address


def check_host(host: str, port: int, allowed=public_address) -> list:
    """``getaddrinfo`` of ``host``; RefusedTarget unless ``allowed`` accepts every address."""
    infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if not allowed(ip):
            shown = host if host == str(ip) else f"{host} ({ip})"
            raise RefusedTarget(f"{shown} is not a public address; webhooks reach private, loopback "
                                "and link-local addresses only with [notify] allow_private_targets = yes")
    return infos


def _guarded_create_connection(allowed):
    """A ``socket.create_connection`` that connects only to addresses ``allowed`` accepts."""

    def create(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None, *args, **kwargs):
        host, port = address
        error = None
        for family, type_, proto, _name, sockaddr in check_host(host, port, allowed):
            sock = socket.socket(family, type_, proto)
            try:
                if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
                    sock.settimeout(timeout)
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                return sock
            except OSError as e:
                error = e
                sock.close()
        raise error or OSError(f"{host}: no address")

    return create


def _guarded_connection(http_class, allowed, host, **kwargs):
    conn = http_class(host, **kwargs)
    conn._create_connection = _guarded_create_connection(allowed)
    return conn


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, allowed):
        super().__init__()
        self.allowed = allowed

    def do_open(self, http_class, req, **kwargs):
        return super().do_open(functools.partial(_guarded_connection, http_class, self.allowed), req, **kwargs)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, allowed):
        super().__init__()
        self.allowed = allowed

    def do_open(self, http_class, req, **kwargs):
        return super().do_open(functools.partial(_guarded_connection, http_class, self.allowed), req, **kwargs)


def _opener(allowed) -> urllib.request.OpenerDirector:
    """http and https only (a redirect elsewhere, e.g. ``ftp:``, fails), no proxies, every
    connection through the address check."""
    opener = urllib.request.OpenerDirector()
    for h in (_GuardedHTTPHandler(allowed), _GuardedHTTPSHandler(allowed),
              urllib.request.HTTPDefaultErrorHandler(), urllib.request.HTTPRedirectHandler(),
              urllib.request.HTTPErrorProcessor(), urllib.request.UnknownHandler()):
        opener.add_handler(h)
    return opener


def _status_line(code: int) -> str:
    try:
        return f"HTTP {code} {http.HTTPStatus(code).phrase}"
    except ValueError:
        return f"HTTP {code}"


def send_http(req: dict, allowed=public_address) -> int:
    """Send ``{"method", "url", "headers", "body"}``; 2xx or DeliveryError. Only addresses
    ``allowed`` accepts are connected to, redirects included; an error answer's body is not
    read into the error (it could carry what an internal service answered)."""
    url = req["url"]
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise DeliveryError(f"not an http(s) URL: {url!r}")
    body = req.get("body")
    data = body.encode("utf-8") if isinstance(body, str) else None
    r = urllib.request.Request(url, data=data, method=req.get("method") or ("POST" if data else "GET"))
    r.add_header("User-Agent", f"calltracking/{__version__}")
    for k, v in (req.get("headers") or {}).items():
        r.add_header(k, v)
    try:
        with _opener(allowed).open(r, timeout=HTTP_TIMEOUT) as resp:
            resp.read(65536)
            return resp.status
    except urllib.error.HTTPError as e:
        e.close()
        raise DeliveryError(_status_line(e.code), e.code) from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, RefusedTarget):
            raise DeliveryError(f"refused: {reason}") from None
        raise DeliveryError(f"cannot reach {urllib.parse.urlsplit(url).netloc}: {reason}") from None


def send_email(config, mail: dict) -> None:
    """Send ``{"to": [...], "subject", "text", "html"}`` with ``[notify] smtp_*``."""
    n = config.notify
    if not n.smtp_host:
        raise DeliveryError("[notify] smtp_host is not set")
    msg = EmailMessage()
    msg["From"] = n.smtp_from or f"calltracking@{n.smtp_host}"
    msg["To"] = ", ".join(mail["to"])
    msg["Subject"] = " ".join(mail["subject"].split())  # no header injection
    msg.set_content(mail["text"])
    if mail.get("html"):
        msg.add_alternative(mail["html"], subtype="html")
    try:
        with smtplib.SMTP(n.smtp_host, n.smtp_port, timeout=HTTP_TIMEOUT) as smtp:
            if n.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if n.smtp_user:
                smtp.login(n.smtp_user, n.smtp_password)
            smtp.send_message(msg)
    except smtplib.SMTPResponseException as e:
        raise DeliveryError(f"SMTP {e.smtp_code}: {e.smtp_error!r}") from None
    except (smtplib.SMTPException, OSError) as e:
        raise DeliveryError(f"SMTP {n.smtp_host}:{n.smtp_port}: {type(e).__name__}: {e}") from None


def attempt(config, d: Delivery, secret: str = "") -> int | None:
    """One attempt; returns the HTTP status (None for mail) or raises DeliveryError. An HTTP
    delivery is signed with ``secret`` now (:func:`sign`): each attempt has its own timestamp.
    One that was meant to be signed is not sent without a secret (its rule was deleted)."""
    payload = json.loads(d.payload)
    if d.channel == "email":
        send_email(config, payload)
        return None
    headers = dict(payload.get("headers") or {})
    meant_signed = payload.pop("signed", False) or SIGNATURE_HEADER in headers
    headers.pop(SIGNATURE_HEADER, None)
    if secret:
        body = payload.get("body")
        headers[SIGNATURE_HEADER] = sign(secret, body.encode("utf-8") if isinstance(body, str) else b"")
    elif meant_signed:
        raise DeliveryError("not sent: its rule (and so the signing secret) was deleted")
    payload["headers"] = headers
    return send_http(payload, target_policy(config))


def deliver_one(config, session_factory, delivery_id: int, now: dt.datetime | None = None) -> bool:
    """Try one delivery now and record the outcome; True when it was sent."""
    with session_scope(session_factory) as s:
        d = s.get(Delivery, delivery_id)
        if d is None or d.status == "sent":
            return d is not None
        channel, snapshot = d.channel, Delivery(channel=d.channel, payload=d.payload)
        rule = s.get(NotificationRule, d.rule_id) if d.rule_id and channel in SIGNED_CHANNELS else None
        secret = rule.secret if rule is not None else ""
    error, status = None, None
    try:
        status = attempt(config, snapshot, secret)
    except DeliveryError as e:
        error, status = str(e), e.http_status
    except Exception as e:  # a bug must not stop the other deliveries
        log.exception("delivery %s crashed", delivery_id)
        error = f"{type(e).__name__}: {e}"
    now = now or utcnow()
    with session_scope(session_factory) as s:
        d = s.get(Delivery, delivery_id)
        d.attempts += 1
        d.last_http_status = status
        if error is None:
            d.status, d.sent_at, d.last_error = "sent", now, ""
            return True
        d.last_error = error[:2000]
        if d.attempts >= MAX_ATTEMPTS:
            d.status = "dead"
            log.warning("delivery %s (%s) is dead after %s attempts: %s", d.id, channel, d.attempts, error)
        else:
            d.next_attempt_at = now + dt.timedelta(seconds=backoff(d.attempts))
            log.info("delivery %s (%s) failed, retry in %.0f s: %s", d.id, channel,
                     backoff(d.attempts), error)
        return False


def deliver_due(config, session_factory, now: dt.datetime | None = None,
                limit: int = 200) -> tuple[int, int, int]:
    """Send every pending delivery that is due; returns (sent, failed, dead)."""
    now = now or utcnow()
    with session_scope(session_factory) as s:
        ids = list(s.scalars(select(Delivery.id).where(Delivery.status == "pending",
                                                       Delivery.next_attempt_at <= now)
                             .order_by(Delivery.next_attempt_at, Delivery.id).limit(limit)))
    sent = failed = 0
    for i in ids:
        if deliver_one(config, session_factory, i, now):
            sent += 1
        else:
            failed += 1
    with session_scope(session_factory) as s:
        dead = len(s.scalars(select(Delivery.id).where(Delivery.id.in_(ids),
                                                       Delivery.status == "dead")).all()) if ids else 0
    return sent, failed - dead, dead


def dead_letters(session: Session, project_id: int | None = None, limit: int = 200) -> list[Delivery]:
    stmt = select(Delivery).where(Delivery.status == "dead")
    if project_id is not None:
        stmt = stmt.where(Delivery.project_id == project_id)
    return list(session.scalars(stmt.order_by(Delivery.created_at.desc()).limit(limit)))


def requeue(session: Session, delivery_id: int, now: dt.datetime | None = None) -> Delivery:
    """Put a dead (or pending) delivery back in the queue for an immediate attempt."""
    d = session.get(Delivery, delivery_id)
    if d is None:
        raise ValueError(f"delivery {delivery_id} not found")
    if d.status == "sent":
        raise ValueError(f"delivery {delivery_id} was already sent")
    d.status, d.attempts, d.next_attempt_at = "pending", 0, now or utcnow()
    return d


# ------------------------------------------------------------- call payloads
def _iso(t):
    return t.astimezone(dt.timezone.utc).isoformat() if t else None


def _num(v):
    return float(v) if v is not None else None


def recording_url(config, call: Call) -> Optional[str]:
    if not call.recording_file:
        return None
    base = (config.web.public_url or "").rstrip("/")
    return f"{base}/calls/{call.id}/recording" if base else f"/calls/{call.id}/recording"


def crm_payload(config, session: Session, call: Call) -> dict:
    vs = session.get(VisitorSession, call.session_id) if call.session_id else None
    return {
        "event": "call_finished",
        "call": {
            "id": call.id, "pbx_id": call.pbx_id, "linkedid": call.linkedid,
            "project": call.project.key if call.project else None,
            "did": call.did, "caller": call.caller_number, "caller_name": call.caller_name,
            "status": call.status, "missed_reason": call.missed_reason,
            "first_call": call.first_call, "queue": call.queue or None,
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


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """``t=<unix time>,v1=<hex>``: HMAC-SHA256, keyed with ``secret``, of ``"<t>."`` followed
    by the raw body. The receiver recomputes it and refuses an old ``t`` (a replay); the README
    shows the check."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode("utf-8"), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def crm_request(rule: NotificationRule, payload: dict) -> dict:
    """The request of a CRM delivery; signed at each attempt when the rule has a secret."""
    body = json.dumps(payload, ensure_ascii=False, sort_keys=True)
    headers = {"Content-Type": "application/json; charset=utf-8",
               "X-Calltracking-Event": payload.get("event", "call_finished")}
    return {"method": "POST", "url": rule.target, "headers": headers, "body": body,
            "signed": bool(rule.secret)}


def ga4_client_id(call: Call, vs: VisitorSession | None) -> str:
    """The visitor's GA client id; for calls without one a stable pseudonymous id."""
    if vs is not None and vs.ga_client_id:
        return vs.ga_client_id
    h = hashlib.sha256(f"calltracking:{call.project_id}:{call.caller_number}".encode()).hexdigest()
    return f"{int(h[:8], 16)}.{int(h[8:16], 16)}"


def ga4_url(rule: NotificationRule) -> str:
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
    vs = session.get(VisitorSession, call.session_id) if call.session_id else None
    params = {
        "source": call.source.name if call.source else "(none)",
        "campaign": call.campaign.name if call.campaign else (vs.utm_campaign if vs else "") or "(none)",
        "medium": (vs.utm_medium if vs else "") or (call.source.channel if call.source else "") or "(none)",
        "attribution": call.attribution,
        "call_status": call.status,
        "first_call": "yes" if call.first_call else "no",
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
    return {"method": "POST", "url": ga4_url(rule), "body": json.dumps(payload, ensure_ascii=False),
            "headers": {"Content-Type": "application/json"}}


def build_request(config, session: Session, rule: NotificationRule, call: Call) -> dict:
    if rule.channel == "crm":
        return crm_request(rule, crm_payload(config, session, call))
    if rule.channel == "ga4":
        return ga4_request(rule, ga4_payload(session, call))
    raise ValueError(f"channel {rule.channel!r} is not a call integration")


def enqueue_finished(config, session_factory, now: dt.datetime | None = None) -> int:
    """Queue the CRM/GA4/webhook deliveries of the calls that finished recently."""
    from calltracking.jobs import notify

    now = now or utcnow()
    queued = 0
    with session_scope(session_factory) as s:
        rules = s.scalars(select(NotificationRule).where(
            NotificationRule.enabled.is_(True), NotificationRule.event == "call_finished",
            NotificationRule.channel.in_(("crm", "ga4", "webhook", "email")))).all()
        for rule in rules:
            already = exists().where(Delivery.rule_id == rule.id, Delivery.call_id == Call.id)
            calls = s.scalars(select(Call).where(
                Call.project_id == rule.project_id, Call.status.in_(("answered", "missed")),
                Call.ended_at >= now - FINISHED_LOOKBACK, Call.ended_at <= now - FINISHED_GRACE,
                ~already).order_by(Call.ended_at).limit(500)).all()
            for call in calls:
                key = f"finished:r{rule.id}:c{call.id}"
                if rule.channel in ("crm", "ga4"):
                    payload, target = build_request(config, s, rule, call), rule.target
                else:
                    channel_payload = notify.rule_message(config, s, rule, call)
                    payload, target = channel_payload, rule.target
                if enqueue(s, rule.channel, "call_finished", payload, target=target,
                           project_id=rule.project_id, rule_id=rule.id, call_id=call.id,
                           dedup_key=key, now=now):
                    queued += 1
    return queued


# ----------------------------------------------------------------- send test
def sample_call(session: Session, project_id: int) -> Call:
    """The project's latest finished call, or a made-up one (not saved) for a test."""
    call = session.scalars(select(Call).where(Call.project_id == project_id,
                                              Call.status.in_(("answered", "missed")))
                           .order_by(Call.ended_at.desc()).limit(1)).first()
    if call is not None:
        return call
    from calltracking.models import Project

    now = utcnow()
    c = Call(id=0, pbx_id="test", linkedid="0000000000.0", project_id=project_id, did="+70000000000",
             caller_number="+70000000001", caller_name="Test caller", attribution="none",
             status="missed", missed_reason="abandoned", started_at=now - dt.timedelta(seconds=30),
             ended_at=now, wait_seconds=30, first_call=True, recording_file="")
    c.project = session.get(Project, project_id)
    c.tags = []
    return c


def send_test(config, session_factory, rule_id: int) -> tuple[bool, str]:
    """Build the rule's message for a sample call and send it at once (dead-letter on failure)."""
    from calltracking.jobs import notify

    with session_scope(session_factory) as s:
        rule = s.get(NotificationRule, rule_id)
        if rule is None:
            raise ValueError(f"rule {rule_id} not found")
        call = sample_call(s, rule.project_id)
        if rule.channel in ("crm", "ga4"):
            payload = build_request(config, s, rule, call)
        else:
            payload = notify.rule_message(config, s, rule, call)
        d = enqueue(s, rule.channel, "test", payload, target=rule.target, project_id=rule.project_id,
                    rule_id=rule.id, call_id=call.id or None)
        d.attempts = MAX_ATTEMPTS - 1  # one attempt: a failure goes straight to the dead letters
        did = d.id
    ok = deliver_one(config, session_factory, did)
    with session_scope(session_factory) as s:
        d = s.get(Delivery, did)
        return ok, "sent" if ok else d.last_error
