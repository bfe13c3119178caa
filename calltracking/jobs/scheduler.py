"""The scheduler: periodic jobs, run by exactly one process.

``calltracking scheduler`` (alone) and ``calltracking run`` (with the other
services) call :func:`start_scheduler`; web workers never do. On top of that a
*lease* row in ``scheduler_lease`` (renewed by a heartbeat) makes sure that
only one process runs the jobs even when several hosts share a PostgreSQL
database: a second scheduler stays on standby and takes over when the first
one's heartbeat stops for ``LEASE_SECONDS``.

The jobs, their intervals and functions are listed in one table, :func:`default_jobs`.
Every module a job needs is imported with this one: a broken module stops the scheduler
from starting (and makes ``calltracking doctor``'s scheduler check fail) instead of
turning a job into a no-op.

Every job run goes through :meth:`JobRunner.run_job`, which never raises: a
failure is logged and counted in ``job_status`` (listed by ``calltracking
doctor`` and ``calltracking jobs list``) and the next run happens as usual.

Writes: the jobs get a session factory whose SQLite transactions begin IMMEDIATE
(:func:`calltracking.db.write_sessionmaker`), so a job that reads and then writes
waits for its turn instead of failing with "database is locked" when the FastAGI
server, the AMI listener or the web UI committed meanwhile; the lease and the
``job_status`` bookkeeping are written with :func:`calltracking.db.run_write`
(retried while the database stays locked).

Logs: a run that went fine writes no line (its result is in ``job_status``; DEBUG
shows it); a failure is an ERROR with its traceback, a run slower than the job's
interval a WARNING. APScheduler's own two INFO lines per run are not written.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from typing import Callable, Optional

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from calltracking.callbacks import dialer as callback_dialer
from calltracking.db import RETRY_SECONDS, run_write, session_scope, write_scope, write_sessionmaker
from calltracking.dni.holds import release_expired
from calltracking.jobs import outbox, recording_retention, recordings, rules
from calltracking.jobs import transcripts as transcript_job
from calltracking.models import JobStatus, SchedulerLease, utcnow
from calltracking.qualify import apply as qualify_apply
from calltracking.reports.rollup import refresh_rollups
from calltracking.whisper import files as whisper_files

log = logging.getLogger(__name__)

LEASE_NAME = "main"
LEASE_SECONDS = 90
HEARTBEAT_SECONDS = 20

#: a job function: ``fn(config, session_factory, now) -> short result text``; the factory's
#: sessions take SQLite's write lock at BEGIN (keep file and network work outside them)
JobFn = Callable[[object, object, dt.datetime], Optional[str]]


@dataclass
class JobSpec:
    """A job: its name (in ``job_status`` and ``calltracking jobs run NAME``), its interval in
    seconds, its function and a line saying what it does."""

    name: str
    seconds: float
    fn: JobFn
    doc: str = ""


# ----------------------------------------------------------------------- jobs
def default_jobs() -> list[JobSpec]:
    """The jobs: name, interval in seconds (``intervals`` of :class:`JobRunner` overrides it),
    function, what it does."""
    return [
        JobSpec("pool_release", 15, job_pool_release, "release expired pool numbers (DNI)"),
        JobSpec("report_rollups", 2, job_report_rollups, "keep report rollups current"),
        JobSpec("notifications", 10, job_notifications,
                "missed-call alerts, CRM webhook, GA4 events, retries of every delivery"),
        JobSpec("digests", 300, job_digests, "daily and weekly digest e-mails"),
        JobSpec("recordings", 30, job_recordings, "convert and measure new recordings"),
        JobSpec("retention", 3600, job_retention, "delete recordings older than keep_days"),
        JobSpec("whisper", 300, job_whisper, "make the operator's whisper files the settings need"),
        JobSpec("transcripts", 30, job_transcripts, "transcribe recorded calls and spot keywords "
                "(worker processes at low CPU priority)"),
        JobSpec("qualify", qualify_apply.INTERVAL, job_qualify, "apply the target rules to finished calls"),
        JobSpec("callbacks", 5, job_callbacks, "call website callback requests back, settle their attempts"),
    ]


def job_pool_release(config, session_factory, now):
    return f"released {release_expired(session_factory, now)}"


def job_report_rollups(config, session_factory, now):
    with session_scope(session_factory) as s:
        n = refresh_rollups(s, now=now)
    return f"{n} day(s) recomputed"


def job_notifications(config, session_factory, now):
    queued = rules.enqueue_missed(config, session_factory, now)
    queued += rules.enqueue_finished(config, session_factory, now)
    queued += rules.enqueue_callback_unreached(config, session_factory, now)
    sent, failed, dead = outbox.deliver_due(config, session_factory, now)
    return f"queued {queued}, sent {sent}, failed {failed}, dead {dead}"


def job_digests(config, session_factory, now):
    return f"queued {rules.enqueue_digests(config, session_factory, now)} digest(s)"


def job_recordings(config, session_factory, now):
    stats = recordings.process_pending(config, session_factory, now)
    return ", ".join(f"{k} {v}" for k, v in stats.items()) or "nothing to do"


def job_whisper(config, session_factory, now):
    with session_scope(session_factory) as s:
        wanted = whisper_files.plan(s)
    result = whisper_files.apply(wanted, config.asterisk.whisper_dir)
    if result.errors:
        raise RuntimeError("; ".join(f"{k}: {v}" for k, v in sorted(result.errors.items())))
    return result.summary()


def job_callbacks(config, session_factory, now):
    return callback_dialer.run(config, session_factory, now)


def job_qualify(config, session_factory, now):
    return qualify_apply.apply_pending(session_factory, now).text()


def job_transcripts(config, session_factory, now):
    stats = transcript_job.process_pending(config, session_factory)
    return ", ".join(f"{k} {v}" for k, v in stats.items()) or "nothing to do"


def job_retention(config, session_factory, now):
    return f"purged {recording_retention.apply_retention(config, session_factory, now)} recording(s)"


# -------------------------------------------------------------- job status
def _record_start(session_factory, name: str, now: dt.datetime) -> None:
    def write(s):
        row = s.get(JobStatus, name)
        if row is None:
            row = JobStatus(name=name, runs=0, failures=0, consecutive_failures=0, last_error="",
                            last_result="")
            s.add(row)
        row.runs = (row.runs or 0) + 1
        row.last_started_at = now

    run_write(session_factory, write, RETRY_SECONDS, f"job {name}: its start")


def _record_end(session_factory, name: str, ok: bool, result: str, started: float) -> None:
    end = utcnow()
    duration_ms = int((time.monotonic() - started) * 1000)

    def write(s):
        row = s.get(JobStatus, name)
        if row is None:  # the start could not be written (database down): nothing to update
            return
        row.last_finished_at = end
        row.last_duration_ms = duration_ms
        if ok:
            row.last_ok_at = end
            row.consecutive_failures = 0
            row.last_result = (result or "")[:200]
        else:
            row.failures = (row.failures or 0) + 1
            row.consecutive_failures = (row.consecutive_failures or 0) + 1
            row.last_error_at = end
            row.last_error = result[-4000:]

    run_write(session_factory, write, RETRY_SECONDS, f"job {name}: its result")


def job_statuses(session) -> list[JobStatus]:
    return list(session.scalars(select(JobStatus).order_by(JobStatus.name)))


# ---------------------------------------------------------------- the runner
class JobRunner:
    """APScheduler's BackgroundScheduler plus the lease and the job bookkeeping."""

    def __init__(self, config, session_factory, jobs: list[JobSpec] | None = None,
                 intervals: dict[str, float] | None = None):
        self.config = config
        self.session_factory = write_sessionmaker(session_factory)   # what the jobs get
        self.jobs = {j.name: j for j in (default_jobs() if jobs is None else jobs)}
        self.intervals = dict(intervals or {})
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.is_leader = False
        self._lock = threading.Lock()
        self._scheduler = None

    # --- lease -------------------------------------------------------------
    def acquire_lease(self, now: dt.datetime | None = None, retry_for: float = HEARTBEAT_SECONDS) -> bool:
        """Take or renew the lease; True when this process runs the jobs. A locked database
        is retried for ``retry_for`` seconds (one heartbeat interval)."""
        now = now or utcnow()
        stale = now - dt.timedelta(seconds=LEASE_SECONDS)

        def take(s) -> bool:
            res = s.execute(update(SchedulerLease)
                            .where(SchedulerLease.name == LEASE_NAME,
                                   or_(SchedulerLease.holder == self.holder,
                                       SchedulerLease.heartbeat_at < stale))
                            .values(holder=self.holder, heartbeat_at=now))
            if res.rowcount == 1:
                return True
            if s.get(SchedulerLease, LEASE_NAME) is not None:
                return False
            s.add(SchedulerLease(name=LEASE_NAME, holder=self.holder, acquired_at=now,
                                 heartbeat_at=now))
            s.flush()
            return True

        try:
            got = run_write(self.session_factory, take, retry_for, "scheduler lease")
        except IntegrityError:  # another process inserted it first
            got = False
        if got and not self.is_leader:
            log.info("scheduler: this process (%s) now runs the jobs", self.holder)
        elif not got and self.is_leader:
            log.warning("scheduler: lost the lease to another process; standing by")
        self.is_leader = got
        return got

    def release_lease(self) -> None:
        try:
            with write_scope(self.session_factory) as s:
                s.execute(delete(SchedulerLease).where(SchedulerLease.name == LEASE_NAME,
                                                       SchedulerLease.holder == self.holder))
        except Exception:  # shutting down: the lease expires by itself
            log.warning("scheduler: could not release the lease", exc_info=True)
        self.is_leader = False

    def _heartbeat(self, retry_for: float = HEARTBEAT_SECONDS) -> None:
        try:
            self.acquire_lease(retry_for=retry_for)
        except Exception:
            log.exception("scheduler: heartbeat failed (database unreachable?)")
            self.is_leader = False

    # --- jobs --------------------------------------------------------------
    def run_job(self, name: str, force: bool = False) -> tuple[bool, str]:
        """Run one job now; never raises. Returns (ok, result or error).

        Logs nothing when the run went fine (DEBUG: its result); a failure is an ERROR
        with the traceback, a run that took longer than the job's interval a WARNING."""
        spec = self.jobs[name]
        if not (self.is_leader or force):
            return True, "standby"
        now = utcnow()
        started = time.monotonic()
        try:
            _record_start(self.session_factory, name, now)
        except Exception:
            log.exception("job %s: cannot record its start", name)
        try:
            result = spec.fn(self.config, self.session_factory, now) or "done"
            ok = True
        except Exception as e:
            log.exception("job %s failed", name)
            result = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=6)}"
            ok = False
        took = time.monotonic() - started
        interval = self.intervals.get(name, spec.seconds)
        if took > interval:
            log.warning("job %s took %.1f s, longer than its interval (%g s): %s", name, took,
                        interval, result.splitlines()[0] if result else "")
        elif ok:
            log.debug("job %s: %s (%.0f ms)", name, result, took * 1000)
        try:
            _record_end(self.session_factory, name, ok, result, started)
        except Exception:
            log.exception("job %s: cannot record its result", name)
        return ok, result

    def add_job(self, spec: JobSpec) -> None:
        self.jobs[spec.name] = spec
        if self._scheduler is not None:
            self._schedule(spec, 0)

    def _schedule(self, spec: JobSpec, index: int) -> None:
        seconds = self.intervals.get(spec.name, spec.seconds)
        first = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=min(seconds, 1 + index))
        self._scheduler.add_job(self.run_job, "interval", seconds=seconds, args=[spec.name],
                                id=spec.name, name=spec.name, next_run_time=first,
                                replace_existing=True)

    def start(self) -> "JobRunner":
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        # "Running job ..." and "... executed successfully" (INFO) for every run: with
        # report_rollups every 2 s, ~86,000 lines a day. Its WARNINGs (a run time missed)
        # and errors stay; run_job logs what matters (see its docstring).
        logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
        self._scheduler = BackgroundScheduler(
            timezone=dt.timezone.utc,
            # the heartbeat has its own thread: long jobs must not let the lease expire
            executors={"default": ThreadPoolExecutor(max_workers=4), "lease": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60})
        self._heartbeat(retry_for=0)    # start() may run on an event loop: one attempt only
        if not self.is_leader:
            log.warning("scheduler: another process holds the lease; standing by")
        self._scheduler.add_job(self._heartbeat, "interval",
                                seconds=self.intervals.get("heartbeat", HEARTBEAT_SECONDS),
                                id="heartbeat", name="heartbeat", executor="lease")
        for i, spec in enumerate(self.jobs.values()):
            self._schedule(spec, i)
        self._scheduler.start()
        log.info("scheduler started with jobs: %s", ", ".join(self.jobs))
        return self

    @property
    def running(self) -> bool:
        return bool(self._scheduler and self._scheduler.running)

    def shutdown(self, wait: bool = True) -> None:
        transcript_job.shutdown_pool(terminate=True)    # a transcription never delays the stop
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=wait)
        self.release_lease()


def start_scheduler(config, sessionmaker, jobs: list[JobSpec] | None = None,
                    intervals: dict[str, float] | None = None) -> JobRunner:
    """Start the jobs in background threads of this process; call ``.shutdown()`` to stop."""
    return JobRunner(config, sessionmaker, jobs, intervals).start()
