"""The scheduler: a failing job does not stop it; one process runs the jobs; doctor lists them."""
from __future__ import annotations

import threading
import time

import pytest

from calltracking.jobs import scheduler
from calltracking.models import JobStatus, SchedulerLease
from support.config import make_config


def wait_for(cond, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def status(session_factory, name):
    with session_factory() as s:
        return s.get(JobStatus, name)


def test_a_job_that_raises_does_not_stop_the_scheduler(session_factory):
    ticks = []

    def boom(config, sf, now):
        raise RuntimeError("the SMTP server is on fire")

    def tick(config, sf, now):
        ticks.append(now)
        return f"tick {len(ticks)}"

    jobs = [scheduler.JobSpec("boom", 0.2, boom), scheduler.JobSpec("tick", 0.2, tick)]
    runner = scheduler.start_scheduler(make_config(), session_factory, jobs=jobs)
    try:
        assert runner.is_leader
        assert wait_for(lambda: (status(session_factory, "boom") or JobStatus(failures=0)).failures >= 3
                        and len(ticks) >= 3)
        assert runner.running
        b = status(session_factory, "boom")
        assert b.consecutive_failures == b.failures >= 3
        assert b.last_error.startswith("RuntimeError: the SMTP server is on fire")
        assert b.last_ok_at is None
        t = status(session_factory, "tick")
        assert t.failures == 0 and t.last_ok_at is not None and t.last_result.startswith("tick ")

        # a second scheduler (another process or host) stands by: its jobs do not run
        other_ticks = []
        second = scheduler.JobRunner(make_config(), session_factory,
                                 jobs=[scheduler.JobSpec("tick", 0.2, lambda c, s, n: other_ticks.append(n))])
        assert second.acquire_lease() is False
        assert second.run_job("tick") == (True, "standby") and other_ticks == []
    finally:
        runner.shutdown()
    assert not runner.running
    with session_factory() as s:
        assert s.get(SchedulerLease, scheduler.LEASE_NAME) is None  # released: another may take over
    assert second.acquire_lease() is True
    second.release_lease()


def test_run_job_never_raises_even_without_database(tmp_path):
    """Bookkeeping failures (no tables, database down) are logged, never raised."""
    from calltracking.db import make_engine, make_sessionmaker

    calls = []
    broken = make_sessionmaker(make_engine(f"sqlite:///{tmp_path / 'empty.db'}"))
    runner = scheduler.JobRunner(make_config(), broken,
                             jobs=[scheduler.JobSpec("ok", 1, lambda c, s, n: calls.append(n) or "fine")])
    runner._heartbeat()
    assert runner.is_leader is False
    assert runner.run_job("ok", force=True) == (True, "fine") and len(calls) == 1


def test_default_jobs_run_on_an_empty_database(session_factory, tmp_path):
    cfg = make_config(recordings__dir=tmp_path, recordings__keep_days=10)
    runner = scheduler.JobRunner(cfg, session_factory)
    assert set(runner.jobs) == {"pool_release", "report_rollups", "notifications", "digests",
                                "recordings", "retention", "whisper", "qualify", "callbacks", "transcripts"}
    for name in runner.jobs:
        ok, result = runner.run_job(name, force=True)
        assert ok, f"{name}: {result}"


def test_doctor_and_jobs_list_show_failures(run_cli, db_url):
    from calltracking.db import make_engine, make_sessionmaker

    sf = make_sessionmaker(make_engine(db_url))

    def boom(config, s, now):
        raise ValueError("bad template")

    runner = scheduler.JobRunner(make_config(), sf, jobs=[scheduler.JobSpec("digests", 1, boom)])
    runner.run_job("digests", force=True)
    out = run_cli("doctor", ok=False).output
    assert "no scheduler is running" in out
    assert "job digests" in out and "1 failure(s)" in out and "ValueError: bad template" in out
    assert "job retention: never run yet" in out
    assert "deliveries: no dead letters" in out
    assert "recordings:" in out
    res = run_cli("jobs", "list", "--format", "json")
    import json

    rows = {r["job"]: r for r in json.loads(res.output)}
    assert rows["digests"]["failures"] == 1 and rows["digests"]["last"] == "ValueError: bad template"
    res = run_cli("jobs", "run", "retention")
    assert "purged 0 recording(s)" in res.output
    with pytest.raises(AssertionError):
        run_cli("jobs", "run", "nosuch")


def test_scheduler_command_stops_on_sigterm(run_cli, monkeypatch):
    """`calltracking scheduler` runs until SIGTERM and then releases the lease."""
    import signal

    from calltracking.cli import jobs as jobs_cli

    handlers = {}
    monkeypatch.setattr(jobs_cli.signal, "signal", lambda sig, fn: handlers.__setitem__(sig, fn))
    started = threading.Event()
    real_start = scheduler.start_scheduler

    def start(cfg, sf):
        r = real_start(cfg, sf, jobs=[])
        started.set()
        return r

    monkeypatch.setattr(scheduler, "start_scheduler", start)
    threading.Thread(target=lambda: started.wait(20) and handlers[signal.SIGTERM](signal.SIGTERM, None),
                     daemon=True).start()
    res = run_cli("scheduler")
    assert "scheduler running (active)" in res.output


def test_a_run_that_went_fine_writes_no_log_line(session_factory, caplog):
    """report_rollups runs every 2 s: APScheduler's two INFO lines per run were ~86,000 lines a
    day in the journal. A run that went fine writes nothing (its result is in job_status); a
    failure is an ERROR with its traceback, a run longer than its interval a WARNING."""
    import logging

    runs = []

    def fine(config, sf, now):
        runs.append(now)
        return f"fine {len(runs)}"

    def boom(config, sf, now):
        raise RuntimeError("no route to the SMTP server")

    def slow(config, sf, now):
        time.sleep(0.4)
        return "slept"

    # "fine" every 0.5 s: its run and bookkeeping took up to 0.2 s on a loaded machine with
    # PostgreSQL, and a shorter interval made a fine run a slow one
    jobs = [scheduler.JobSpec("fine", 0.5, fine), scheduler.JobSpec("boom", 0.5, boom),
            scheduler.JobSpec("slow", 0.2, slow)]
    caplog.set_level(logging.INFO)
    runner = scheduler.start_scheduler(make_config(), session_factory, jobs=jobs)
    try:
        assert wait_for(lambda: len(runs) >= 5 and (status(session_factory, "slow") or JobStatus()).runs
                        and (status(session_factory, "boom") or JobStatus()).failures)
    finally:
        runner.shutdown()
    lines = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    startup = ("Added job", "scheduler started with jobs")      # once, at start
    assert not [line for line in lines if "fine" in line[2] and not line[2].startswith(startup)], lines
    assert not [line for line in lines if line[0].startswith("apscheduler.executors")], lines
    boom_lines = [r for r in caplog.records if "boom" in r.getMessage()
                  and not r.getMessage().startswith(startup)]
    assert boom_lines and boom_lines[0].levelname == "ERROR" and boom_lines[0].exc_info is not None
    assert any(lvl == "WARNING" and msg.startswith("job slow took 0.") and "longer than its interval"
               in msg for _, lvl, msg in lines), lines
    st = status(session_factory, "fine")
    assert st.runs >= 5 and st.failures == 0 and st.last_result.startswith("fine ")
