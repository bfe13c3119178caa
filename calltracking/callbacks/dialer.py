"""The dialer: the scheduler job that calls requests back, and what each attempt's call meant.

Every run (:func:`run`, job ``callbacks``):

1. :func:`settle` gives each running attempt its result once its call has ended
   (:func:`result_of`), or ``lost`` when no call came for it within :data:`LOST_AFTER_SECONDS`
   (or its call never ended within :data:`STUCK_AFTER_SECONDS`).
   A reached attempt closes its request ``reached``; any other result makes the request wait
   ``retry_delay_seconds`` for the next attempt, or, after ``1 + retries`` attempts, closes it
   ``unreached``.
2. :func:`dial_due` takes the due ``pending`` requests. Outside the schedule a request moves
   to the next opening; when the project's attempts of the last hour reached
   ``max_calls_per_hour`` it waits until the oldest of them is an hour old. Otherwise the
   attempt row is committed (request ``dialing``) and only then the Originate is sent.

Restart rule: an attempt is committed before its Originate, and a ``dialing`` request is never
dialled again until its attempt is settled, so a restart can neither dial a request twice nor
lose it: after a restart the running attempt is settled from its call record (the listener
catches up on calls it missed), or ``lost`` and retried when the PBX never made a call for it.
A crash between the commit and the Originate is such a lost attempt.
"""
from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Callable, Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from calltracking.attribution import routing
from calltracking.callbacks import link, schedule, settings as cb_settings
from calltracking.calls import originate
from calltracking.db import session_scope
from calltracking.enums import CallbackResult, CallbackStatus
from calltracking.models import CallbackAttempt, CallbackRequest, Project, RoutingRule, VisitorSession

log = logging.getLogger(__name__)

#: an attempt with no call record this long after its Originate is lost (the queue rings for
#: at most ``QUEUE_TIMEOUT_SECONDS``; the rest is room for a listener catching up after a restart)
LOST_AFTER_SECONDS = 300
#: an attempt whose call has not ended this long after its Originate is lost too (a call record
#: the listener never saw end); a request is never left dialling for good
STUCK_AFTER_SECONDS = 6 * 3600
#: how long the operators' queue rings, and then the visitor's phone
QUEUE_TIMEOUT_SECONDS = 60
VISITOR_RING_SECONDS = 40
#: requests started per run at most (the hourly cap applies as well)
BATCH = 20


def result_of(att: CallbackAttempt) -> CallbackResult:
    """The result of an attempt whose call ended: ``reached`` when the visitor answered,
    ``no_answer`` when an operator answered and the visitor did not, else ``no_operator``."""
    if att.visitor_answered_at is not None:
        return CallbackResult.REACHED
    if att.operator_answered_at is not None:
        return CallbackResult.NO_ANSWER
    return CallbackResult.NO_OPERATOR


def close_attempt(session: Session, req: CallbackRequest, att: CallbackAttempt, result: CallbackResult,
                  now: dt.datetime) -> None:
    """Give ``att`` its result and move ``req`` on: reached, the next attempt, or unreached."""
    att.result = result
    att.ended_at = att.ended_at or now
    if result == CallbackResult.REACHED:
        req.status, req.call_id = CallbackStatus.REACHED, att.call_id
        req.reached_at = att.visitor_answered_at
        req.closed_at, req.next_attempt_at = now, None
        return
    row = cb_settings.get_or_default(session, req.project_id)
    if req.attempts > row.retries:
        req.status, req.closed_at, req.next_attempt_at = CallbackStatus.UNREACHED, now, None
    else:
        req.status = CallbackStatus.PENDING
        req.next_attempt_at = now + dt.timedelta(seconds=row.retry_delay_seconds)


def settle(session: Session, now: dt.datetime) -> int:
    """Settle the running attempts (module docstring, step 1); returns how many."""
    n = 0
    running = session.scalars(select(CallbackAttempt).where(CallbackAttempt.result.is_(None))
                              .order_by(CallbackAttempt.id)).all()
    for att in running:
        req = session.get(CallbackRequest, att.request_id)
        if att.call_id is not None and att.ended_at is not None:
            close_attempt(session, req, att, result_of(att), now)
        elif (att.call_id is None and att.started_at <= now - dt.timedelta(seconds=LOST_AFTER_SECONDS)) \
                or att.started_at <= now - dt.timedelta(seconds=STUCK_AFTER_SECONDS):
            close_attempt(session, req, att, CallbackResult.LOST, now)
        else:
            continue
        n += 1
    return n


def queue_for(session: Session, req: CallbackRequest, project: Project, override: str,
              general_queue: str, now: dt.datetime) -> str:
    """The operators' queue of a request: the settings' override, else the queue of the routing
    rule a call from the request's visit would match now, else the project's default queue."""
    if override:
        return override
    rules = [routing.Rule.from_row(r) for r in session.scalars(
        select(RoutingRule).where(RoutingRule.project_id == project.id))]
    vs = session.get(VisitorSession, req.session_id) if req.session_id else None
    rule = routing.choose(rules, routing.CallFacts.of(routing.local_now(now, project.timezone),
                                                      req.source_id, req.campaign_id, vs))
    return routing.queue_for(rule, routing.default_queue(project.default_queue, general_queue)) or "default"


def _hour_full(session: Session, project_id: int, cap: int, now: dt.datetime) -> Optional[dt.datetime]:
    """None when the project may start an attempt now, else when it may next."""
    since = now - dt.timedelta(hours=1)
    q = (select(CallbackAttempt.started_at).join(CallbackRequest, CallbackRequest.id == CallbackAttempt.request_id)
         .where(CallbackRequest.project_id == project_id, CallbackAttempt.started_at > since))
    count = session.scalar(select(func.count()).select_from(q.subquery()))
    if count < cap:
        return None
    oldest = session.scalar(select(func.min(q.subquery().c.started_at)))
    return oldest + dt.timedelta(hours=1, seconds=1)


def _start(session: Session, config, now: dt.datetime) -> list[dict]:
    """Claim the due requests (module docstring, step 2): the Originates to send."""
    out = []
    due = session.scalars(select(CallbackRequest).where(
        CallbackRequest.status == CallbackStatus.PENDING, CallbackRequest.next_attempt_at <= now)
        .order_by(CallbackRequest.next_attempt_at, CallbackRequest.id).limit(BATCH)).all()
    for req in due:
        row = cb_settings.get(session, req.project_id)
        if row is None or not row.enabled:
            continue                               # switched off: kept until switched on
        project = session.get(Project, req.project_id)
        at = schedule.next_open(schedule.parse(row.schedule), now, project.timezone)
        if at is None or at > now:
            req.next_attempt_at = at or now + dt.timedelta(days=1)
            continue
        later = _hour_full(session, req.project_id, row.max_calls_per_hour, now)
        if later is not None:
            req.next_attempt_at = later
            continue
        queue = queue_for(session, req, project, row.queue, config.general.default_queue, now)
        att = CallbackAttempt(request_id=req.id, number=req.attempts + 1, token=uuid.uuid4().hex,
                              queue=queue, started_at=now)
        session.add(att)
        req.attempts += 1
        req.status, req.queue = CallbackStatus.DIALING, queue
        session.flush()
        out.append(dict(attempt_id=att.id, token=att.token, phone=req.phone, queue=queue,
                        context=row.outbound_context))
    return out


def originate_fields(job: dict) -> dict:
    """The Originate's channel, extension and variables for a claimed attempt: the ``;2`` half of
    ``Local/s@calltracking-callback-request`` rings the queue; when an operator answers, the
    ``;1`` half continues at ``visitor`` and dials the visitor through the outbound context."""
    return dict(channel=f"Local/s@{link.CONTEXT}/n", number="visitor", context=link.CONTEXT,
                caller_id=f"Callback <{job['phone']}>",
                variables={link.REQUEST_VAR: job["token"], "CT_QUEUE": job["queue"],
                           "CT_VISITOR": job["phone"], "CT_OUTBOUND_CONTEXT": job["context"],
                           "CT_QUEUE_TIMEOUT": QUEUE_TIMEOUT_SECONDS, "CT_RING_SECONDS": VISITOR_RING_SECONDS})


Send = Callable[..., str]


def dial_due(config, session_factory, now: dt.datetime, send: Optional[Send] = None) -> int:
    """Start the due requests' attempts (module docstring, step 2); returns the Originates sent."""
    if not config.ami.originate:
        return 0
    with session_scope(session_factory) as s:
        jobs = _start(s, config, now)
    send = send or originate.originate
    sent = 0
    for job in jobs:
        f = originate_fields(job)
        try:
            send(config.ami.host, config.ami.port, config.ami.username, config.ami.secret, f["channel"],
                 f["number"], caller_id=f["caller_id"], context=f["context"], variables=f["variables"],
                 timeout=5.0, ring_timeout_ms=(QUEUE_TIMEOUT_SECONDS + 5) * 1000)
            sent += 1
        except originate.OriginateError as e:
            log.warning("callback attempt %s: %s", job["attempt_id"], e)
            with session_scope(session_factory) as s:
                att = s.get(CallbackAttempt, job["attempt_id"])
                att.error = str(e)[:300]
                close_attempt(s, s.get(CallbackRequest, att.request_id), att, CallbackResult.FAILED, now)
    return sent


def run(config, session_factory, now: dt.datetime, send: Optional[Send] = None) -> str:
    """One run of the ``callbacks`` job: settle, then dial."""
    with session_scope(session_factory) as s:
        settled = settle(s, now)
    return f"settled {settled}, dialled {dial_due(config, session_factory, now, send)}"
