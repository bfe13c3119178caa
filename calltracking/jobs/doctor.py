"""`calltracking doctor` checks of the jobs: the scheduler and each job's last run, recordings,
deliveries (e-mail settings, dead letters)."""
from __future__ import annotations

import datetime as dt
import os

from sqlalchemy import func, select

from calltracking.doctor import FAIL, OK, WARN, Result, check
from calltracking.config import ConfigError
from calltracking.db import session_scope
from calltracking.models import Delivery, NotificationRule, RecordingInfo, SchedulerLease, utcnow


@check("scheduler")
def _doctor_scheduler(ctx):
    # imported here: the scheduler imports every job's module (jinja2, smtplib, ...: 80 ms),
    # which `calltracking --help` (importing this module to register the checks) does not need
    from calltracking.jobs.scheduler import LEASE_NAME, LEASE_SECONDS, default_jobs, job_statuses

    try:
        factory = ctx.sessionmaker
    except ConfigError:
        return []
    out = []
    now = utcnow()
    with session_scope(factory) as s:
        lease = s.get(SchedulerLease, LEASE_NAME)
        statuses = job_statuses(s)
    if lease is None or lease.heartbeat_at < now - dt.timedelta(seconds=LEASE_SECONDS):
        out.append(Result(WARN, "scheduler", "no scheduler is running (no recent heartbeat)",
                              "start `calltracking run` or `calltracking scheduler` (one process only)"))
    else:
        out.append(Result(OK, "scheduler", f"running in {lease.holder}, heartbeat "
                              f"{int((now - lease.heartbeat_at).total_seconds())} s ago"))
    known = {j.name for j in default_jobs()}
    seen = set()
    for st in statuses:
        seen.add(st.name)
        last = st.last_finished_at or st.last_started_at
        when = f"{int((now - last).total_seconds())} s ago" if last else "never"
        detail = f"last run {when}, {st.runs} run(s), {st.failures} failure(s)"
        if st.consecutive_failures:
            err = (st.last_error or "").splitlines()[0] if st.last_error else "?"
            out.append(Result(WARN, f"job {st.name}", f"{detail}; failing: {err}",
                                  "see the service log for the traceback; "
                                  "`calltracking jobs run NAME` runs it once in the foreground"))
        else:
            out.append(Result(OK, f"job {st.name}", f"{detail}; {st.last_result}"))
    for name in sorted(known - seen):
        out.append(Result(OK, f"job {name}", "never run yet"))
    return out


@check("recordings")
def _doctor_recordings(ctx):
    try:
        cfg, factory = ctx.config, ctx.sessionmaker
    except ConfigError:
        return []
    rec = cfg.recordings
    out = []
    if rec.format != "wav":
        from pydub.utils import which

        if which("ffmpeg") is None:
            out.append(Result(FAIL, "recordings", f"ffmpeg not found: cannot convert to {rec.format}",
                                  "install it (`apt-get install ffmpeg`) or set [recordings] format = wav"))
    if not os.path.isdir(rec.dir):
        out.append(Result(WARN, "recordings", f"{rec.dir} does not exist",
                              "set [recordings] dir to MixMonitor's directory"))
    elif not os.access(rec.dir, os.R_OK | os.X_OK):
        out.append(Result(FAIL, "recordings", f"cannot read {rec.dir}",
                              "add the calltracking user to the asterisk group"))
    elif rec.format != "wav" and not os.access(rec.dir, os.W_OK):
        out.append(Result(WARN, "recordings", f"cannot write to {rec.dir}: converted files and "
                              "retention need write access", "`chmod g+w` the directory (group asterisk)"))
    with session_scope(factory) as s:
        errors = s.scalar(select(func.count()).select_from(RecordingInfo).where(RecordingInfo.status == "error"))
    if errors:
        out.append(Result(WARN, "recordings", f"{errors} recording(s) could not be processed",
                              "`calltracking calls list --format json` / the call card shows the error"))
    if not out:
        out.append(Result(OK, "recordings", f"{rec.dir}, format {rec.format}, "
                              f"keep {rec.keep_days or 'forever'} day(s)"))
    return out


@check("deliveries")
def _doctor_deliveries(ctx):
    try:
        cfg, factory = ctx.config, ctx.sessionmaker
    except ConfigError:
        return []
    out = []
    with session_scope(factory) as s:
        dead = s.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "dead"))
        mail_rules = s.scalar(select(func.count()).select_from(NotificationRule).where(
            NotificationRule.channel == "email", NotificationRule.enabled.is_(True)))
        sms_rules = s.scalar(select(func.count()).select_from(NotificationRule).where(
            NotificationRule.channel == "sms", NotificationRule.enabled.is_(True)))
    if sms_rules and not cfg.notify.sms_provider:
        out.append(Result(FAIL, "notify", f"{sms_rules} SMS rule(s) but [notify] sms_provider is empty",
                          "set [notify] sms_provider and its credentials (sms_token, sms_account)"))
    if mail_rules and not cfg.notify.smtp_host:
        out.append(Result(FAIL, "notify", f"{mail_rules} e-mail rule(s) but [notify] smtp_host is empty",
                              "set [notify] smtp_host (and smtp_from, smtp_user/smtp_password if needed)"))
    if dead:
        out.append(Result(WARN, "deliveries", f"{dead} message(s) in the dead-letter list",
                              "Settings → Integrations, or `calltracking deliveries list` and "
                              "`calltracking deliveries retry --all-dead`"))
    else:
        out.append(Result(OK, "deliveries", "no dead letters"))
    return out
