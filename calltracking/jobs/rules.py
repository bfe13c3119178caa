"""Notification rules: which deliveries each rule queues, and when.

A rule (``notification_rules``) belongs to a project and has an *event* and a *channel*.
Its messages are built by :mod:`calltracking.jobs.notify` (channels ``email``, ``webhook``)
and :mod:`calltracking.jobs.integrations` (``crm``, ``ga4``) — :func:`call_message` picks
one — and go into the outbox (:mod:`calltracking.jobs.outbox`), once per rule and call or
period (a ``dedup_key``), to be sent and retried there. An SMS rule queues one delivery per
recipient (:func:`queue_message`), each with its own key and retries: a number the gateway
refused is retried alone, and one it acknowledged never gets the message again.

* ``missed_call`` (``email``, ``webhook``, ``sms``): a call that ended as missed within the last
  ``MISSED_LOOKBACK`` (:func:`enqueue_missed`). The scheduler's ``notifications`` job queues
  and sends in the same run (every 10 s), so an alert leaves well within a minute. A rule
  whose message cannot be built (a bad address) gets a dead delivery saying why.
* ``call_finished`` (``crm``, ``ga4``, ``webhook``, ``email``): an answered or missed call
  that ended between ``FINISHED_LOOKBACK`` and ``FINISHED_GRACE`` ago
  (:func:`enqueue_finished`; the grace lets the AMI listener finish the record first). A rule
  created later is not sent calls older than the lookback. A rule with ``target_only`` sends only
  target calls (``calls.is_target``, :mod:`calltracking.qualify`): a finished call that is not a
  target call is not sent, and one that becomes a target call later (the ``qualify`` job, or
  the rules re-applied) is sent then: when it ended *or was qualified* within the lookback.
* ``callback_unreached`` (``email``, ``webhook``, ``sms``): a website callback request closed
  unreached within the last ``MISSED_LOOKBACK`` (:func:`enqueue_callback_unreached`, in the
  ``notifications`` job).
* ``digest_daily`` / ``digest_weekly`` (``email``, ``sms``): once per period, from ``DIGEST_HOUR``
  o'clock in the project's time zone on (:func:`enqueue_digests`; the ``digests`` job runs
  every 5 min).

:func:`send_test` sends a rule's message for the project's latest finished call (or a
made-up one) at once, a failure going straight to the dead letters.

:func:`check_rule` is what a valid rule is; the CLI and the web UI both apply it.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

import urllib.parse

from calltracking.callbacks import alerts as callback_alerts
from calltracking.db import session_scope
from calltracking.enums import NotificationChannel, NotificationEvent
from calltracking.jobs import integrations, notify, outbox, transport
from calltracking.settings_rules import ServiceError
from calltracking.sms import numbers as sms_numbers
from calltracking.models import Call, CallbackRequest, Delivery, NotificationRule, Project, utcnow

MISSED_LOOKBACK = dt.timedelta(hours=1)
FINISHED_LOOKBACK = dt.timedelta(hours=24)   # calls older than this are not sent to a new rule
FINISHED_GRACE = dt.timedelta(seconds=5)     # let the listener finish the record first
DIGEST_HOUR = 7


class RuleRefused(ServiceError):
    """A notification rule that :func:`check_rule` refuses; ``code`` names the rule broken (the
    web UI shows its own translated text for it, the CLI the English message)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def check_rule(channel: str, event: str, target: str, allowed=transport.public_address,
               region: str = "RU") -> str:
    """A valid notification rule, returning its target without surrounding blanks (an ``sms``
    rule's: its numbers in E.164, comma-separated):

    * ``channel`` and ``event`` are known values (``choice``) and the target is given (``target``);
    * an ``email`` target is a list of addresses (``email``, the parser's own message);
      an ``sms`` target a list of phone numbers read with ``region`` (``phone``, the message
      names the bad number); a ``webhook`` or ``crm`` target an ``http://`` or ``https://`` URL (``url``) with a host
      (``host``) that resolves only to addresses ``allowed`` accepts (``refused``: by default the
      public internet, ``[notify] allow_private_targets`` widens it; a host that does not resolve
      now is accepted: its deliveries fail and are retried, and every delivery checks again);
    * ``crm`` and ``ga4`` rules fire on ``call_finished`` (``event``); ``sms`` rules on a missed
      call or a digest (``sms-event``);
    * digests go by ``email`` or ``sms`` (``digest``).
    """
    target = (target or "").strip()
    if channel not in tuple(NotificationChannel) or event not in tuple(NotificationEvent):
        raise RuleRefused("choice", f"unknown channel {channel!r} or event {event!r}")
    if not target:
        raise RuleRefused("target", "the target is required")
    if channel == NotificationChannel.EMAIL:
        try:
            notify.recipients(target)
        except ValueError as e:
            raise RuleRefused("email", str(e)) from None
    elif channel == NotificationChannel.SMS:
        try:
            target = ", ".join(sms_numbers.recipients(target, region))
        except sms_numbers.BadRecipients as e:
            refused = RuleRefused("phone", str(e))
            refused.number = e.number          # the web UI quotes it in the user's language
            raise refused from None
    elif channel in (NotificationChannel.WEBHOOK, NotificationChannel.CRM) \
            and not target.startswith(("http://", "https://")):
        raise RuleRefused("url", f"the target of a {channel} rule must be an http(s) URL, got {target!r}")
    if channel != NotificationChannel.EMAIL and target.startswith(("http://", "https://")):
        try:
            parts = urllib.parse.urlsplit(target)
            host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as e:
            raise RuleRefused("url", str(e)) from None
        if not host:
            raise RuleRefused("host", f"the target URL {target!r} has no host")
        try:
            transport.check_host(host, port, allowed)
        except transport.RefusedTarget as e:
            raise RuleRefused("refused", str(e)) from None
        except (OSError, UnicodeError):
            pass
    if channel in (NotificationChannel.CRM, NotificationChannel.GA4) and event != NotificationEvent.CALL_FINISHED:
        raise RuleRefused("event", f"{channel} rules take the event call_finished")
    if channel == NotificationChannel.SMS and event == NotificationEvent.CALL_FINISHED:
        raise RuleRefused("sms-event", "sms rules take the event missed_call or a digest")
    if event.startswith("digest") and channel not in (NotificationChannel.EMAIL, NotificationChannel.SMS):
        raise RuleRefused("digest", "digests are sent by e-mail or SMS")
    return target


def call_message(config, session: Session, rule: NotificationRule, call: Call) -> dict:
    """The delivery payload of ``rule`` for one call, whatever its channel; ValueError when the
    rule cannot send one (a bad address, an unknown channel)."""
    if rule.channel in integrations.CHANNELS:
        return integrations.build_request(config, session, rule, call)
    return notify.rule_message(config, session, rule, call)


def queue_message(s: Session, rule: NotificationRule, event: str, payload: dict, *, dedup_key: str | None,
                  call_id=None, now: dt.datetime | None = None) -> list[Delivery]:
    """The new deliveries of one message of ``rule``: one, or for an SMS rule one per recipient
    (``<dedup_key>:<number>``, the number as the target). A payload ``{"error": …}`` (the
    message could not be built: a bad address) becomes a dead delivery saying why."""
    if rule.channel == NotificationChannel.SMS and "error" not in payload:
        items = [(f"{dedup_key}:{m['to']}" if dedup_key else None, m, m["to"]) for m in payload["messages"]]
    else:
        items = [(dedup_key, payload, rule.target)]
    out = []
    for key, message, target in items:
        d = outbox.enqueue(s, rule.channel, event, message, target=target, project_id=rule.project_id,
                           rule_id=rule.id, call_id=call_id, dedup_key=key, now=now)
        if d is not None:
            if "error" in message:
                d.status, d.last_error = "dead", message["error"]
            out.append(d)
    return out


# -------------------------------------------------------------------- calls
def _enabled_rules(s, event: str, channels) -> list[NotificationRule]:
    """The enabled notification rules of ``event`` on one of ``channels``."""
    return list(s.scalars(select(NotificationRule).where(
        NotificationRule.enabled.is_(True), NotificationRule.event == event,
        NotificationRule.channel.in_(channels))))


def enqueue_missed(config, session_factory, now: dt.datetime | None = None) -> int:
    """Queue an alert per (rule, missed call) for calls missed in the last hour."""
    now = now or utcnow()
    queued = 0
    with session_scope(session_factory) as s:
        rules = _enabled_rules(s, "missed_call", notify.CHANNELS)
        for rule in rules:
            done = select(Delivery.call_id).where(Delivery.rule_id == rule.id, Delivery.call_id.is_not(None))
            calls = s.scalars(select(Call).where(
                Call.project_id == rule.project_id, Call.status == "missed",
                Call.ended_at >= now - MISSED_LOOKBACK, Call.id.not_in(done))
                .order_by(Call.ended_at).limit(200)).all()
            for call in calls:
                try:
                    payload = call_message(config, s, rule, call)
                except ValueError as e:  # a broken rule: keep the error visible as a dead letter
                    payload = {"error": str(e)}
                queued += len(queue_message(s, rule, "missed_call", payload, call_id=call.id,
                                            dedup_key=f"missed:r{rule.id}:c{call.id}", now=now))
    return queued


def enqueue_finished(config, session_factory, now: dt.datetime | None = None) -> int:
    """Queue the CRM/GA4/webhook/e-mail deliveries of the calls that finished recently."""
    now = now or utcnow()
    queued = 0
    with session_scope(session_factory) as s:
        rules = _enabled_rules(s, "call_finished", integrations.CHANNELS + notify.CHANNELS)
        for rule in rules:
            already = exists().where(Delivery.rule_id == rule.id, Delivery.call_id == Call.id)
            recent = Call.ended_at >= now - FINISHED_LOOKBACK
            if rule.target_only:
                recent = and_(Call.is_target.is_(True),
                              or_(recent, Call.qualified_at >= now - FINISHED_LOOKBACK))
            calls = s.scalars(select(Call).where(
                Call.project_id == rule.project_id, Call.status.in_(("answered", "missed")),
                recent, Call.ended_at <= now - FINISHED_GRACE,
                ~already).order_by(Call.ended_at).limit(500)).all()
            for call in calls:
                queued += len(queue_message(s, rule, "call_finished", call_message(config, s, rule, call),
                                            call_id=call.id, dedup_key=f"finished:r{rule.id}:c{call.id}", now=now))
    return queued


def enqueue_callback_unreached(config, session_factory, now: dt.datetime | None = None) -> int:
    """Queue an alert per (rule, website callback request) closed unreached in the last hour
    (:mod:`calltracking.callbacks.alerts` builds it)."""
    now = now or utcnow()
    queued = 0
    with session_scope(session_factory) as s:
        rules = _enabled_rules(s, "callback_unreached", notify.CHANNELS)
        for rule in rules:
            requests = s.scalars(select(CallbackRequest).where(
                CallbackRequest.project_id == rule.project_id, CallbackRequest.status == "unreached",
                CallbackRequest.closed_at >= now - MISSED_LOOKBACK).order_by(CallbackRequest.closed_at)).all()
            for req in requests:
                try:
                    payload = callback_alerts.message(config, rule, req)
                except ValueError as e:
                    payload = {"error": str(e)}
                queued += len(queue_message(s, rule, "callback_unreached", payload,
                                            dedup_key=f"callback:r{rule.id}:q{req.id}", now=now))
    return queued


# ------------------------------------------------------------------ digests
def enqueue_digests(config, session_factory, now: dt.datetime | None = None) -> int:
    """Queue the digests that are due (once per rule and period)."""
    now = now or utcnow()
    queued = 0
    with session_scope(session_factory) as s:
        rules = s.scalars(select(NotificationRule).where(
            NotificationRule.enabled.is_(True), NotificationRule.channel.in_(("email", "sms")),
            NotificationRule.event.in_(("digest_daily", "digest_weekly")))).all()
        for rule in rules:
            project = s.get(Project, rule.project_id)
            local = now.astimezone(ZoneInfo(project.timezone))
            if local.hour < DIGEST_HOUR:
                continue
            first, end = notify.digest_period(rule.event, local)
            key = f"digest:r{rule.id}:{first.isoformat()}"
            if s.scalar(select(Delivery.id).where(   # an SMS digest's keys are "<key>:<number>"
                    or_(Delivery.dedup_key == key, Delivery.dedup_key.like(f"{key}:%"))).limit(1)):
                continue
            build = notify.digest_sms if rule.channel == "sms" else notify.digest_email
            try:
                payload = build(config, s, rule, rule.event, first, end)
            except ValueError as e:
                payload = {"error": str(e)}
            queued += len(queue_message(s, rule, rule.event, payload, dedup_key=key, now=now))
    return queued


# ---------------------------------------------------------------- send test
def sample_call(session: Session, project_id: int) -> Call:
    """The project's latest finished call, or a made-up one (not saved) for a test."""
    call = session.scalars(select(Call).where(Call.project_id == project_id,
                                              Call.status.in_(("answered", "missed")))
                           .order_by(Call.ended_at.desc()).limit(1)).first()
    if call is not None:
        return call
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
    with session_scope(session_factory) as s:
        rule = s.get(NotificationRule, rule_id)
        if rule is None:
            raise ValueError(f"rule {rule_id} not found")
        call = sample_call(s, rule.project_id)
        ds = queue_message(s, rule, "test", call_message(config, s, rule, call), dedup_key=None,
                           call_id=call.id or None)
        for d in ds:
            d.attempts = outbox.MAX_ATTEMPTS - 1  # one attempt: a failure goes straight to the dead letters
        ids = [d.id for d in ds]
    results = [outbox.deliver_one(config, session_factory, i) for i in ids]
    with session_scope(session_factory) as s:
        errors = [f"{d.target}: {d.last_error}" if len(ids) > 1 else d.last_error
                  for d in (s.get(Delivery, i) for i in ids) if d.status != "sent"]
        return all(results), "sent" if all(results) else "; ".join(errors)
