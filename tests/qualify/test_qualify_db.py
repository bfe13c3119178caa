"""Target rules on a real database (SQLite and PostgreSQL): the ``qualify`` job picks up finished
calls once, re-applying recomputes a date range, the rules' tags land in call_tags, and the report
rollups count target calls exactly as a plain count over ``calls`` does."""
from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from calltracking import entities as svc
from calltracking.jobs import scheduler
from calltracking.models import Call, ReportDaily, Tag, call_tags, utcnow
from calltracking.qualify import apply as qualify_apply
from calltracking.qualify import settings as rule_settings
from calltracking.qualify import tags as tag_settings
from calltracking.reports import queries
from calltracking.reports.rollup import refresh_rollups
from calltracking.settings_rules import ServiceError
from support.config import make_config

pytestmark = pytest.mark.db
UTC = dt.timezone.utc


@pytest.fixture
def world(session_factory):
    with session_factory() as s:
        p = svc.add_project(s, "acme", "ACME", "Europe/Moscow", default_queue="sales")
        ga = svc.add_source(s, p, "Google Ads", "ads")
        bb = svc.add_source(s, p, "Billboard", "offline")
        lead = tag_settings.save_tag(s, p, name="lead", color_="#1E88E5", description="a real customer")
        vip = tag_settings.save_tag(s, p, name="vip", color_="#e53935")
        long_rule = rule_settings.save_rule(s, p, name="long talk", position=10, min_talk_seconds=60,
                                            add_tag_ids=[lead.id])
        first_ga = rule_settings.save_rule(s, p, name="first from Google", position=20, first_call_only=True,
                                           source_id=ga.id, mark_target=False, add_tag_ids=[vip.id])
        s.commit()
        return dict(project=p.id, ga=ga.id, bb=bb.id, lead=lead.id, vip=vip.id, long=long_rule.id,
                    first_ga=first_ga.id)


def add(session_factory, world, n, *, talk=None, source="ga", first=True, ended_ago=60, started=None,
        status=None):
    with session_factory() as s:
        ended = utcnow() - dt.timedelta(seconds=ended_ago)
        start = started or ended - dt.timedelta(seconds=(talk or 0) + 10)
        c = Call(pbx_id="pbx1", linkedid=f"170000.{n}", project_id=world["project"], did="+74950001001",
                 caller_number=f"+7495000{n:04d}", source_id=world[source] if source else None, queue="sales",
                 started_at=start, ended_at=start + dt.timedelta(seconds=(talk or 0) + 10), first_call=first,
                 status=status or ("answered" if talk is not None else "missed"),
                 wait_seconds=Decimal(10), talk_seconds=None if talk is None else Decimal(talk))
        s.add(c)
        s.commit()
        return c.id


def state(session_factory, cid):
    with session_factory() as s:
        c = s.get(Call, cid)
        return c.is_target, c.target_rule_id, sorted(t.name for t in c.tags), c.qualified_at, c.updated_at


def test_the_job_qualifies_finished_calls_once(session_factory, world):
    long_ga = add(session_factory, world, 1, talk=90)
    short_ga = add(session_factory, world, 2, talk=20)
    long_bb_repeat = add(session_factory, world, 3, talk=61, source="bb", first=False)
    missed = add(session_factory, world, 4)
    in_progress = add(session_factory, world, 5, talk=30, status="in_progress")
    just_ended = add(session_factory, world, 6, talk=120, ended_ago=1)         # within the grace
    old = add(session_factory, world, 7, talk=120, ended_ago=2 * 86400)       # beyond the lookback

    ok, result = scheduler.JobRunner(make_config(), session_factory).run_job("qualify", force=True)
    assert ok, result
    assert result.startswith("4 call(s) qualified, 2 target")
    assert state(session_factory, long_ga)[:3] == (True, world["long"], ["lead", "vip"])
    assert state(session_factory, short_ga)[:3] == (False, None, ["vip"])
    assert state(session_factory, long_bb_repeat)[:3] == (True, world["long"], ["lead"])
    assert state(session_factory, missed)[:3] == (False, None, ["vip"])
    for cid in (in_progress, just_ended, old):
        assert state(session_factory, cid)[3] is None, cid
    # a second run finds nothing new
    assert qualify_apply.apply_pending(session_factory).calls == 0


def test_an_unchanged_verdict_keeps_updated_at(session_factory, world):
    cid = add(session_factory, world, 1, talk=20, source="bb")
    before = state(session_factory, cid)
    assert qualify_apply.apply_pending(session_factory).changed == 0
    after = state(session_factory, cid)
    assert after[3] is not None and after[4] == before[4] and after[:3] == (False, None, [])


def test_reapply_recomputes_a_date_range_and_never_removes_tags(session_factory, world):
    day = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    inside = [add(session_factory, world, i, talk=40 + 10 * i, started=day + dt.timedelta(hours=i)) for i in range(4)]
    outside = add(session_factory, world, 9, talk=300, started=day - dt.timedelta(days=3))
    s1 = qualify_apply.reapply(session_factory, day, day + dt.timedelta(days=1))
    assert (s1.calls, s1.targets) == (4, 2)           # talk 60 and 70
    assert [state(session_factory, c)[0] for c in inside] == [False, False, True, True]
    assert state(session_factory, outside)[3] is None
    # the rule changes: 45 s is enough now; and the tag rule goes away
    with session_factory() as s:
        from calltracking.models import Project, TargetRule
        p = s.get(Project, world["project"])
        r = s.get(TargetRule, world["long"])
        rule_settings.save_rule(s, p, r, name=r.name, position=r.position, min_talk_seconds=45,
                                add_tag_ids=[world["lead"]])
        s.delete(s.get(TargetRule, world["first_ga"]))
        s.commit()
    s2 = qualify_apply.reapply(session_factory, day, day + dt.timedelta(days=1), project_id=world["project"])
    assert (s2.calls, s2.targets, s2.changed) == (4, 3, 1)
    assert [state(session_factory, c)[0] for c in inside] == [False, True, True, True]
    assert state(session_factory, inside[0])[2] == ["vip"]    # put by the deleted rule: kept
    # the rule disabled: nothing is a target call any more
    with session_factory() as s:
        from calltracking.models import TargetRule
        s.get(TargetRule, world["long"]).enabled = False
        s.commit()
    s3 = qualify_apply.reapply(session_factory, day, day + dt.timedelta(days=1))
    assert (s3.targets, s3.changed) == (0, 3)
    assert all(state(session_factory, c)[1] is None for c in inside)


def test_cli_calls_qualify(session_factory, world, run_cli):
    day = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    cid = add(session_factory, world, 1, talk=75, started=day)
    out = run_cli("calls", "qualify", "--since", "2026-03-02", "--until", "2026-03-02", "--project", "acme").output
    assert "1 call(s) qualified, 1 target" in out
    assert state(session_factory, cid)[0] is True
    assert "0 call(s) qualified" in run_cli("calls", "qualify", "--since", "2026-03-03").output
    bad = run_cli("calls", "qualify", "--since", "yesterday", ok=False)
    assert bad.exit_code != 0 and "invalid date" in bad.output


def test_rollups_count_target_calls_like_a_plain_count(session_factory, world):
    rnd = random.Random(17)
    base = dt.datetime(2026, 1, 20, 6, 0, tzinfo=UTC)
    for i in range(160):
        talk = rnd.choice([None, 15, 59, 60, 61, 200])
        add(session_factory, world, i, talk=talk, source=rnd.choice(["ga", "bb", None]),
            first=rnd.random() < 0.5, started=base + dt.timedelta(hours=7 * i + rnd.randrange(5)))
    qualify_apply.reapply(session_factory, base - dt.timedelta(days=1))
    with session_factory() as s:
        refresh_rollups(s, full=True)
    with session_factory() as s:
        from calltracking.models import Project
        p = s.get(Project, world["project"])
        f = queries.ReportFilter(p, dt.date(2026, 1, 1), dt.date(2026, 3, 31))
        rep = {r["key"]: r for r in queries.by_attribute(s, f, "source").as_dicts()}
        plain = dict(s.execute(select(Call.source_id, func.count()).where(Call.is_target.is_(True))
                               .group_by(Call.source_id)).all())
        assert plain and sum(plain.values()) > 10
        assert {k: r["targets"] for k, r in rep.items() if r["targets"]} == \
            {str(k or ""): n for k, n in plain.items()}
        # months and days read from rollups agree with the same count for a range cut mid-month
        f2 = queries.ReportFilter(p, dt.date(2026, 1, 25), dt.date(2026, 2, 20))
        lo, hi = f2.utc_range
        n2 = s.scalar(select(func.count()).where(Call.is_target.is_(True), Call.started_at >= lo,
                                                 Call.started_at < hi))
        assert sum(r["targets"] for r in queries.by_attribute(s, f2, "campaign").as_dicts()) == n2
        assert s.scalar(select(func.sum(ReportDaily.targets)).where(ReportDaily.dim == "all")) == sum(plain.values())
    # re-qualifying moves the rollups with it (the scheduler's incremental refresh)
    with session_factory() as s:
        from calltracking.models import TargetRule
        s.get(TargetRule, world["long"]).min_talk_seconds = 100
        s.commit()
    qualify_apply.reapply(session_factory, base - dt.timedelta(days=1))
    with session_factory() as s:
        refresh_rollups(s)
        n = s.scalar(select(func.count()).where(Call.is_target.is_(True)))
        assert s.scalar(select(func.sum(ReportDaily.targets)).where(ReportDaily.dim == "all")) == n


def test_cost_per_target_call(session_factory, world):
    from calltracking.models import AdSpend, Project
    day = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    for i, talk in enumerate((90, 90, 10, None)):
        add(session_factory, world, i, talk=talk, started=day + dt.timedelta(minutes=i))
    qualify_apply.reapply(session_factory, day - dt.timedelta(days=1))
    with session_factory() as s:
        s.add(AdSpend(project_id=world["project"], source_id=world["ga"], day=dt.date(2026, 3, 2),
                      amount=Decimal("1000.00"), currency="RUB"))
        s.commit()
        refresh_rollups(s, full=True)
        p = s.get(Project, world["project"])
        row = next(r for r in queries.by_attribute(s, queries.ReportFilter(p, dt.date(2026, 3, 2),
                                                                          dt.date(2026, 3, 2)), "source").as_dicts()
                   if r["key"] == str(world["ga"]))
        assert (row["calls"], row["targets"], row["cost_per_call"], row["cost_per_target"]) == (4, 2, 250.0, 500.0)


def test_rule_and_tag_validation(session_factory, world):
    with session_factory() as s:
        from calltracking.models import Project
        p = s.get(Project, world["project"])
        other = svc.add_project(s, "other", "Other", "UTC")
        foreign = svc.add_source(s, other, "Elsewhere", "ads")
        s.flush()
        for kw, msg in ((dict(name=" "), "name is empty"), (dict(name="x", min_talk_seconds="ten"), "whole number"),
                        (dict(name="x", min_talk_seconds=-1), "between 0"),
                        (dict(name="x", source_id=foreign.id), "unknown source"),
                        (dict(name="x", campaign_id="1 OR 1=1"), "unknown campaign"),
                        (dict(name="x", weekdays="8"), "weekdays"), (dict(name="x", time_from="25:00"), "HH:MM"),
                        (dict(name="x", mark_target=False), "does nothing")):
            with pytest.raises(ServiceError, match=msg):
                rule_settings.save_rule(s, p, **kw)
        for kw, msg in ((dict(name="lead"), "already exists"), (dict(name="x", color_="red"), "#rrggbb"),
                        (dict(name="x", color_='#000"><script>'), "#rrggbb"), (dict(name="x" * 101), "longer")):
            with pytest.raises(ServiceError, match=msg):
                tag_settings.save_tag(s, p, **kw)
        t = tag_settings.save_tag(s, p, name="  <b>hot</b> ", color_="#ABCDEF", offered=False)
        assert (t.name, t.color, t.offered) == ("<b>hot</b>", "#abcdef", False)
        s.rollback()
