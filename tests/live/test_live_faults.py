"""Live: the PBX keeps working when we fail, and no record is lost, doubled or wrong after a
restart of either side.

Each test leaves ``calltracking run`` running again, as the next test expects.
"""
from __future__ import annotations

import signal
import time

import pytest
from sqlalchemy import select

from calltracking.db import make_engine
from calltracking.hooks.spool import Spool, read_rows
from calltracking.models import Call
from support.db_locks import WriteLock
from support.live_verdict import check, ts

pytestmark = pytest.mark.live


def restart_run(world, *args):
    world.stop_run()
    world.start_run(*args)


def test_fastagi_down_sends_calls_to_the_default_queue(world):
    """No FastAGI server: the dialplan's AGI fails at once, the call goes to the default queue
    (``CALLTRACKING_DEFAULT_QUEUE``), and the listener still records it, attributed by its DID."""
    w = world
    restart_run(w, "--without", "agi")
    try:
        w.db_put(**{"ring/106": 1, "talk/106": 3})
        c = w.call("74950001001", "79160000401", tag="agi-down", stay=30)
        w.wait_hungup([c])
        vars_ = w.driver.find(lambda e: e.get("Event") == "VarSet" and e.get("Linkedid") == c.linkedid
                              and e.get("Variable") == "AGISTATUS")
        assert vars_ and vars_[0]["Value"] == "FAILURE", vars_
        rec = w.records([c]).get(c.linkedid)
        bad = check(w, c, rec, status="answered", operator="Fedor", queue="sales", source="Google Ads",
                    attribution="static", legs=[("Fedor", 3)], talk=3)
        assert not bad, "\n".join(bad)

        # the IVR's promo hook is down too: CT_PROMO=error, and the caller still reaches the queue
        ivr = w.call("74950002007", "79160000408", tag="agi-down-ivr", context="from-trunk-ivr",
                     dtmf="4242", stay=30)
        w.wait_hungup([ivr])
        promo = w.driver.find(lambda e: e.get("Event") == "VarSet" and e.get("Linkedid") == ivr.linkedid
                              and e.get("Variable") == "CT_PROMO")
        assert promo and promo[-1]["Value"] == "error", promo
        rec = w.records([ivr]).get(ivr.linkedid)
        bad = check(w, ivr, rec, status="answered", operator="Fedor", queue="sales", source="Billboard",
                    attribution="static", context="from-trunk-ivr", legs=[("Fedor", 3)])
        assert not bad, "\n".join(bad)
    finally:
        restart_run(w)


def test_listener_killed_mid_call_and_restarted(world):
    """SIGKILL while the operator rings, back 3 s later while they talk: the record is exact."""
    w = world
    w.db_put(**{"ring/141": 2, "talk/141": 6})
    c = w.call("74950001011", "79160000402", tag="killed", stay=30)
    time.sleep(1.0)
    w.stop_run(signal.SIGKILL)
    time.sleep(3.0)
    w.start_run()
    w.wait_hungup([c])
    rec = w.records([c]).get(c.linkedid)
    bad = check(w, c, rec, status="answered", operator="Roman", queue="q_restart", legs=[("Roman", 6)],
                talk=6, wait=2)
    assert not bad, "\n".join(bad)


def test_run_killed_while_the_database_refuses_writes(world):
    """Another transaction holds the database's write lock when a call arrives: the route hook
    answers at once (its row in the spool, not committed), ``calltracking run`` is killed with
    SIGKILL while the operator rings, the lock is released, and the next run writes that row
    once: one record, exact, carrying what the hook decided."""
    w = world
    w.db_put(**{"ring/101": 2, "talk/101": 4})
    spool_dir = w.tmp / "agi-spool"
    eng = make_engine(w.db_url)
    try:
        with WriteLock(eng):
            c = w.call("74950001001", "79160000409", tag="killed-locked", stay=30)
            status = w.driver.wait_event(lambda e: e.get("Event") == "VarSet" and e.get("Linkedid") == c.linkedid
                                         and e.get("Variable") == "CT_STATUS" and e.get("Value"), timeout=10)
            assert status["Value"] == "ok", status
            born = min(float(e["Timestamp"]) for e in w.channels_of(c.linkedid))
            assert float(status["Timestamp"]) - born < 0.5          # the caller did not wait for the lock
            answer = {e["Variable"]: e["Value"] for e in w.driver.find(
                lambda e: e.get("Event") == "VarSet" and e.get("Linkedid") == c.linkedid
                and e.get("Variable", "").startswith("CT_"))}
            # its routing rule's queue (the dialplan's fallback would be 'sales')
            assert (answer["CT_SOURCE"], answer["CT_QUEUE"]) == ("Google Ads", "q_answer"), answer
            w.operator_channel(c.linkedid, "101")                    # ringing
            assert w.stop_run(signal.SIGKILL) == -signal.SIGKILL
            spooled = [r for p in spool_dir.glob("*.spool") for r in read_rows(p.read_bytes())]
            assert [r[1]["linkedid"] for r in spooled] == [c.linkedid], spooled
        if w.db_url.startswith("sqlite"):       # only the spool has it (on PostgreSQL the dead writer's
            with w.session() as s:              # statement, queued behind the lock in its backend, may
                # still run once the lock goes: the replay then merges with it)
                assert s.scalars(select(Call).where(Call.linkedid == c.linkedid)).all() == []
        w.start_run()
        assert "writing 1 call row(s) left in 1 spool file(s)" in w.run_log(w.runs)
        w.wait_hungup([c])
        rec = w.records([c]).get(c.linkedid)
        bad = check(w, c, rec, status="answered", operator="Anna", queue="q_answer", source="Google Ads",
                    attribution="static", legs=[("Anna", 4)], talk=4, wait=2)
        assert not bad, "\n".join(bad)
        with w.session() as s:
            rows = s.scalars(select(Call).where(Call.linkedid == c.linkedid)).all()
            assert [(r.via_agi, r.caller_number) for r in rows] == [(True, "+79160000409")]
        assert Spool.left(spool_dir) == []           # replayed and removed; only the new run's own file
    finally:
        eng.dispose()


def test_listener_started_after_the_call_began(world):
    """The whole service is down when the call arrives (default queue) and starts 1 s later."""
    w = world
    w.stop_run()
    w.db_put(**{"ring/106": 2, "talk/106": 4})
    c = w.call("74950001012", "79160000403", tag="late-start", stay=30)
    time.sleep(1.0)
    w.start_run()
    w.wait_hungup([c])
    rec = w.records([c]).get(c.linkedid)
    bad = check(w, c, rec, status="answered", operator="Fedor", queue="sales", legs=[("Fedor", 4)],
                talk=4, wait=2)
    assert not bad, "\n".join(bad)


def test_run_stopped_with_sigterm_during_calls(world):
    """SIGTERM while two calls ring and talk; started again 2 s later."""
    w = world
    w.db_put(**{"ring/141": 1, "talk/141": 5, "ring/142": 1, "talk/142": 5})
    a = w.call("74950001013", "79160000404", tag="sigterm-a", stay=30)
    w.wait_answered_by(a.linkedid, "141")          # Roman first (linear), so b goes to Sofia
    b = w.call("74950001014", "79160000405", tag="sigterm-b", stay=30)
    w.driver.wait_event(lambda e: e.get("Event") == "AgentCalled" and e.get("Linkedid") == b.linkedid,
                        timeout=20)
    assert w.stop_run(signal.SIGTERM) == 0
    time.sleep(2.0)
    w.start_run()
    w.wait_hungup([a, b])
    records = w.records([a, b])
    bad = check(w, a, records.get(a.linkedid), status="answered", operator="Roman", queue="q_restart",
                legs=[("Roman", 5)], talk=5)
    bad += check(w, b, records.get(b.linkedid), status="answered", operator="Sofia", queue="q_restart",
                 legs=[("Sofia", 5)], talk=5)
    assert not bad, "\n".join(bad)


def test_asterisk_restarted_under_the_listener(world):
    """``core restart now`` cuts a call while the operator talks; the listener reconnects and the
    next call is recorded as usual."""
    w = world
    w.db_put(**{"ring/141": 1, "talk/141": 20})
    cut = w.call("74950001011", "79160000406", tag="cut-by-restart", stay=30)
    w.wait_answered_by(cut.linkedid, "141")
    time.sleep(2.0)
    restarted_at = time.time()
    w.restart_asterisk()
    rec = w.records([cut], timeout=30).get(cut.linkedid)
    assert rec is not None and rec["status"] == "answered" and rec["operator"] == "Roman", rec
    assert rec["ended_at"] is not None and abs(ts(rec["ended_at"]) - restarted_at) <= 1.5, rec
    assert abs(rec["talk_seconds"] - 2.0) <= 1.5, rec
    assert [leg["operator"] for leg in rec["legs"] if leg["answered_at"]] == ["Roman"], rec["legs"]

    w.db_put(**{"ring/141": 1, "talk/141": 3})
    after = w.call("74950001011", "79160000407", tag="after-restart", stay=30)
    w.wait_hungup([after], timeout=60)
    rec = w.records([after]).get(after.linkedid)
    bad = check(w, after, rec, status="answered", operator="Roman", queue="q_restart", legs=[("Roman", 3)],
                talk=3, wait=1)
    assert not bad, "\n".join(bad)
