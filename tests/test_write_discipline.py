"""Every writer of one `calltracking run` process at once on one database: nothing is lost to
"database is locked", and the FastAGI hooks still answer within their budget.

In one process, on one database (SQLite file, or PostgreSQL), at the same time: the FastAGI
server answering ``route`` and ``tag`` over real sockets, the AMI listener storing a burst of
recorded events from a fake Asterisk, the scheduler running its default jobs every few
hundred milliseconds, web API requests writing call comments, and a job that holds the
write lock for longer than a hook's whole budget (a long transaction: a first rollup build,
a big import). On the code before the write discipline this lost tags ("FastAGI: tag failed
(OperationalError: database is locked)") and job bookkeeping ("job ...: cannot record its
start/result").
"""
from __future__ import annotations

import logging
import threading
import time

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import OperationalError

from calltracking.jobs import scheduler as sched
from calltracking import entities as svc
from calltracking.models import Call, JobStatus, Tag, call_tags, utcnow
from support.agi_server import ServerThread
from support.ami_server import FakeAsterisk, event_count
from support.ami_streams import burst
from support.config import make_config
from support.fastagi_client import call, headers
from support.fixtures import queue_members
from support.listener import Listener

pytestmark = pytest.mark.db

HOG_SECONDS = 1.2           # the long write transaction: 4x the hooks' budget
TIMEOUT_MS = 300            # [agi] timeout_ms (the default)
HOOK_THREADS, CALLS_PER_THREAD = 4, 12
WEB_REQUESTS = 40
TAGS = ("callback", "vip")
#: the loggers of the writers under test (other parts' errors are their tests' business)
WRITERS = {"calltracking.jobs.scheduler", "calltracking.hooks", "calltracking.agi", "calltracking.ami",
           "calltracking.db", "webui", "flask.app"}


def _seed(session_factory, dids) -> tuple[list[int], str]:
    """A project owning the recorded DIDs, calls for the web to comment on, an API token."""
    from webui.auth import new_api_token

    with session_factory() as s, s.begin():
        p = svc.add_project(s, "acme", timezone="Europe/Moscow", default_queue="sales")
        src = svc.add_source(s, p, "Recorded", channel="ads")
        for did in dids:
            svc.add_number(s, p, did, source=src)
        web_calls = [Call(pbx_id="pbx1", linkedid=f"w.{i}", project_id=p.id, started_at=utcnow())
                     for i in range(5)]
        s.add_all(web_calls)
        user = svc.add_user(s, "api", "correct-horse-battery", "admin")
        s.flush()
        token = new_api_token(user)
        return [c.id for c in web_calls], token


def _hog(hold: float, dialect: str, holding: threading.Event):
    """A job whose one write transaction holds the lock for ``hold`` seconds (``holding`` is set
    once it has the lock)."""

    def job(config, session_factory, now):
        with session_factory() as s, s.begin():
            if dialect == "postgresql":
                # both tables at once or none: waiting for call_tags while holding calls would
                # deadlock with a tag write (its row in call_tags, then the FK check's lock on calls)
                while True:
                    try:
                        with s.begin_nested():
                            s.execute(text("LOCK TABLE calls, call_tags IN EXCLUSIVE MODE NOWAIT"))
                        break
                    except OperationalError:
                        time.sleep(0.01)
            else:   # the first write takes SQLite's write lock (begun IMMEDIATE or not)
                s.execute(update(JobStatus).where(JobStatus.name == "hog").values(last_result="hogging"))
            holding.set()
            time.sleep(hold)
        return "held"

    return job


def test_every_writer_at_once_loses_nothing(db_url, engine, session_factory, tmp_path, caplog):
    frames, expected = burst(1500)
    dids = sorted({e["did"] for e in expected.values()})
    web_calls, token = _seed(session_factory, dids)
    asterisk = FakeAsterisk(members=queue_members(), chunk=701).start()
    cfg = make_config(db_url, agi__timeout_ms=TIMEOUT_MS, agi__write_wait_ms=50,
                      ami__port=asterisk.port, ami__secret="ctsecret", ami__username="calltracking",
                      ami__ping_interval=1, recordings__dir=tmp_path, recordings__keep_days=30,
                      web__secret_key="k" * 40)
    caplog.set_level(logging.WARNING)

    ran, ran_lock = {}, threading.Lock()

    class Runner(sched.JobRunner):
        def run_job(self, name, force=False):
            out = super().run_job(name, force)
            with ran_lock:
                ran.setdefault(name, []).append(out)
            return out

    holding = threading.Event()
    jobs = sched.default_jobs() + [sched.JobSpec("hog", 2.0, _hog(HOG_SECONDS, engine.dialect.name, holding))]
    intervals = {"report_rollups": 0.1, "notifications": 0.2, "pool_release": 0.2, "digests": 0.3,
                 "recordings": 0.3, "retention": 0.5, "heartbeat": 0.5}
    runner = Runner(cfg, session_factory, jobs, intervals).start()
    listener = Listener(cfg, session_factory).start()
    agi = ServerThread(cfg, session_factory)
    from webui import create_app

    web = create_app(cfg, session_factory, testing=True).test_client()
    answers, web_done, errors = [], {}, []

    def hooks(t):
        # from the hog's first hold on (on a loaded machine the hooks could otherwise all be
        # answered before it, and none would meet the lock)
        holding.wait(30)
        for i in range(CALLS_PER_THREAD):
            lid = f"h{t}.{i}"
            for hook, args in [("route", ("74950001001", lid))] + [("tag", (lid, n)) for n in TAGS]:
                started = time.monotonic()
                v = call(agi.port, headers(hook, args=args)).vars
                answers.append((hook, lid, args[-1], v, time.monotonic() - started))
            time.sleep(0.05)

    def web_writes():
        # at least WEB_REQUESTS, and on until the hog has held the lock twice (on a fast run the
        # other writers can be done before its second turn): web writes overlap both
        n, deadline = 0, time.monotonic() + 60
        while n < WEB_REQUESTS or (len(ran.get("hog", ())) < 2 and time.monotonic() < deadline):
            n += 1
            cid = web_calls[n % len(web_calls)]
            r = web.patch(f"/api/calls/{cid}", json={"comment": f"web {n}"},
                          headers={"Authorization": f"Bearer {token}"})
            if r.status_code != 200:
                errors.append((n, r.status_code, r.get_data(as_text=True)[:200]))
            web_done[cid] = f"web {n}"
            time.sleep(0.05)

    def ami_events():
        for i in range(0, len(frames), 100):
            asterisk.add(frames[i:i + 100])
            asterisk.emit()
            time.sleep(0.05)

    try:
        threads = ([threading.Thread(target=hooks, args=(t,)) for t in range(HOOK_THREADS)]
                   + [threading.Thread(target=web_writes), threading.Thread(target=ami_events)])
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        listener.wait_idle(event_count(frames), timeout=60)
    finally:
        agi.stop()              # its writer writes what is still queued (the hog's turn may delay it)
        runner.shutdown()
        listener.stop()
        asterisk.stop()

    # the hooks answered, within their budget (never waiting for the long transaction); some
    # answered before their write was committed (it was handed to the writer thread)
    assert len(answers) == HOOK_THREADS * CALLS_PER_THREAD * (1 + len(TAGS))
    slowest = max(a[-1] for a in answers)
    assert slowest < TIMEOUT_MS / 1000 + 0.5 < HOG_SECONDS, slowest
    assert agi.server.env.writer.stats["late"] > 0
    tags_answered = [(lid, name) for hook, lid, name, v, _ in answers if hook == "tag"]
    assert all(v["CT_STATUS"] in ("ok", "fallback") for hook, lid, name, v, _ in answers)
    routed = [lid for hook, lid, _, v, _ in answers if hook == "route" and v["CT_STATUS"] == "ok"]
    with session_factory() as s:
        stored_tags = set(s.execute(select(Call.linkedid, Tag.name).join(call_tags, call_tags.c.call_id == Call.id)
                                    .join(Tag, Tag.id == call_tags.c.tag_id)).all())
        rows = {c.linkedid: c for c in s.scalars(select(Call))}
        statuses = {st.name: st for st in s.scalars(select(JobStatus))}
    # every tag is written, also those answered while the hog held the lock
    assert set(tags_answered) <= stored_tags, sorted(set(tags_answered) - stored_tags)[:10]
    assert all(rows[lid].via_agi and rows[lid].attribution == "static" for lid in routed)
    # the listener stored every recorded call
    assert set(expected) <= set(rows), sorted(set(expected) - set(rows))[:10]
    # every web request went through
    assert errors == []
    assert {rows[f"w.{i}"].id: rows[f"w.{i}"].comment for i in range(5)} == web_done
    # every job run succeeded and its start and result were recorded
    assert len(ran["hog"]) >= 2
    for name, results in ran.items():
        assert all(ok for ok, _ in results), (name, [r for ok, r in results if not ok][:1])
        st = statuses[name]
        assert (st.runs, st.failures) == (len(results), 0), name
        assert st.last_finished_at is not None and st.last_finished_at >= st.last_started_at
    # no write failed or was retried for a lock meanwhile
    problems = [f"{r.levelname} {r.name}: {r.getMessage()[:200]}" for r in caplog.records
                if "locked" in r.getMessage() or (r.levelno >= logging.ERROR and r.name in WRITERS)
                or "writing AMI state failed" in r.getMessage()]
    assert problems == []
