"""The outbox: every message leaves through the ``deliveries`` table, with retries.

A message (an e-mail, a text message to one number, a webhook or integration request) is written first as a ``pending``
:class:`~calltracking.models.Delivery` row (:func:`enqueue`, at most one per ``dedup_key``), then
sent by :func:`deliver_due` (the scheduler's ``notifications`` job, every 10 s). A failed attempt
is retried with exponential backoff (``RETRY_BASE`` × 2^(attempt-1), at most ``RETRY_MAX``:
30 s, 1, 2, 4, 8, 16, 32 min); after ``MAX_ATTEMPTS`` the delivery is *dead* — the dead-letter
list (:func:`dead_letters`, Settings → Integrations, ``calltracking deliveries list``), from where
:func:`requeue` sends it again.

An HTTP delivery of a ``crm`` or ``webhook`` rule with a ``secret`` is signed at each attempt
(:func:`calltracking.jobs.transport.sign`: each attempt has its own timestamp); one that was meant
to be signed is not sent once its rule (and so the secret) was deleted.

What goes into the outbox, and when: :mod:`calltracking.jobs.rules`; how it leaves:
:mod:`calltracking.jobs.transport`.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from calltracking.db import session_scope
from calltracking.jobs.transport import (SIGNATURE_HEADER, DeliveryError, send_email, send_http, sign,
                                         target_policy)
from calltracking.models import Delivery, NotificationRule, utcnow
from calltracking.sms import providers as sms_providers

log = logging.getLogger(__name__)

RETRY_BASE = 30.0          # seconds before the first retry
RETRY_MAX = 3600.0         # longest wait between two attempts
MAX_ATTEMPTS = 8           # then the delivery is dead (dead-letter list)
SIGNED_CHANNELS = ("crm", "webhook")         # their rule's secret signs each attempt


# -------------------------------------------------------------------- queue
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


# ------------------------------------------------------------------ sending
def attempt(config, d: Delivery, secret: str = "") -> int | None:
    """One attempt; returns the HTTP status (None for mail) or raises DeliveryError. An HTTP
    delivery is signed with ``secret`` now (:func:`sign`): each attempt has its own timestamp.
    One that was meant to be signed is not sent without a secret (its rule was deleted)."""
    payload = json.loads(d.payload)
    if d.channel == "email":
        send_email(config, payload)
        return None
    if d.channel == "sms":   # one number; the gateway and its credentials come from [notify] now
        return sms_providers.send(config, payload, target_policy(config))
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


# ------------------------------------------------------------- dead letters
def dead_letters(session: Session, project_id: int | None = None, limit: int = 200) -> list[Delivery]:
    """The dead deliveries (of one project, or all), newest first."""
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
