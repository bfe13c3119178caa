"""The demo seeder produces data that obeys the call-record contract."""
import datetime as dt
from collections import Counter
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from calltracking.demo import seed
from calltracking.models import Call

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_demo_seed_is_plausible_and_consistent(session_factory, tmp_path):
    with session_factory() as s:
        stats = seed(s, days=14, per_day=40, recordings_dir=str(tmp_path / "rec"), now=NOW)
        s.commit()
    with session_factory() as s:
        calls = s.scalars(select(Call).options(selectinload(Call.legs))).all()
    assert len(calls) == stats["calls"] > 300
    assert all(c.started_at < NOW for c in calls)
    status = Counter(c.status for c in calls)
    assert 0.05 < status["missed"] / len(calls) < 0.35
    assert set(status) == {"answered", "missed"}
    # wait/talk/hold follow the contract's definitions
    for c in calls:
        if c.status == "answered":
            assert c.operator_name and c.missed_reason is None
            assert abs(Decimal((c.answered_at - c.started_at).total_seconds()) - c.wait_seconds) < Decimal("0.002")
            span = Decimal((c.ended_at - c.answered_at).total_seconds())
            assert abs(span - c.talk_seconds - c.hold_seconds) < Decimal("0.003")
            assert [leg.outcome for leg in c.legs][-1] == "answered"
        else:
            assert c.missed_reason in {"abandoned", "timeout", "no_operators"}
            assert abs(Decimal((c.ended_at - c.started_at).total_seconds()) - c.wait_seconds) < Decimal("0.002")
    # one first call per caller, and it is the earliest
    by_caller = {}
    for c in sorted(calls, key=lambda c: c.started_at):
        by_caller.setdefault(c.caller_number, []).append(c)
    assert any(len(v) > 1 for v in by_caller.values())
    for v in by_caller.values():
        assert [c.first_call for c in v] == [True] + [False] * (len(v) - 1)
    # dynamic calls carry a session and a time to call
    dyn = [c for c in calls if c.attribution == "dynamic"]
    assert dyn and all(c.session_id and c.time_to_call_seconds > 0 for c in dyn)
    # weekdays are busier than weekends (Moscow time)
    from zoneinfo import ZoneInfo

    msk = ZoneInfo("Europe/Moscow")
    days = Counter(c.started_at.astimezone(msk).date() for c in calls)
    wk = [n for d, n in days.items() if d.isoweekday() < 6]
    we = [n for d, n in days.items() if d.isoweekday() >= 6]
    assert sum(wk) / len(wk) > 1.3 * sum(we) / len(we)
    recs = [c for c in calls if c.recording_file]
    assert recs and all((tmp_path / "rec").joinpath(c.recording_file.rsplit("/", 1)[1]).exists() for c in recs)


def test_demo_is_deterministic(session_factory, db_factory):
    from calltracking.db import make_engine, make_sessionmaker

    other = make_engine(db_factory.migrated())
    try:
        counts = []
        for factory in (session_factory, make_sessionmaker(other)):
            with factory() as s:
                counts.append(seed(s, days=5, per_day=20, now=NOW)["calls"])
                s.commit()
        assert counts[0] == counts[1]
    finally:
        other.dispose()


def test_demo_runs_up_to_now(session_factory):
    """The last day is today: calls up to now, each one finished by then (the dashboard is not empty)."""
    from zoneinfo import ZoneInfo

    from calltracking.models import Project
    from calltracking.reports.queries import live_snapshot

    now = dt.datetime(2026, 11, 30, 13, 0, tzinfo=UTC)     # 16:00 in Moscow
    with session_factory() as s:
        seed(s, days=3, per_day=60, now=now)
        s.commit()
    with session_factory() as s:
        calls = s.scalars(select(Call)).all()
        today = live_snapshot(s, s.scalars(select(Project)).one(), now=now)["today"]
    msk = ZoneInfo("Europe/Moscow")
    days = Counter(c.started_at.astimezone(msk).date() for c in calls)
    assert sorted(days) == [dt.date(2026, 11, 28), dt.date(2026, 11, 29), dt.date(2026, 11, 30)]
    assert days[dt.date(2026, 11, 30)] >= 10
    assert all(c.ended_at <= now and c.status in ("answered", "missed") for c in calls)
    assert max(c.started_at for c in calls) > now - dt.timedelta(hours=2)
    assert today["calls"] == days[dt.date(2026, 11, 30)] and today["answered"] > 0


def test_demo_command_analyses_the_recordings(run_cli, tmp_path):
    """`calltracking demo` runs the recordings job: every seeded recording is measured, so the
    operators report's talk figures are filled."""
    from calltracking.db import make_engine, make_sessionmaker
    from calltracking.models import RecordingInfo

    db = tmp_path / "demo.db"
    out = run_cli("demo", "--db", str(db), "--days", "4", "--calls-per-day", "60", "--no-serve").output
    engine = make_engine(f"sqlite:///{db}")
    try:
        with make_sessionmaker(engine)() as s:
            recorded = s.scalars(select(Call).where(Call.recording_file != "")).all()
            infos = s.scalars(select(RecordingInfo)).all()
    finally:
        engine.dispose()
    assert recorded and len(infos) == len(recorded)
    assert all(i.status == "ok" and i.talk_ratio is not None for i in infos)
    assert f"{len(recorded)} recordings analysed" in out


def test_demo_serves_with_the_scheduler_running(tmp_path):
    """`calltracking demo` (serving) runs the scheduler's jobs beside the web UI."""
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    from calltracking.db import make_engine, make_sessionmaker
    from calltracking.models import JobStatus
    from support.net import free_port
    from support.polling import poll

    db, port = tmp_path / "demo.db", free_port()
    env = dict(os.environ, CALLTRACKING_CONFIG=str(tmp_path / "none.ini"))
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "calltracking"), "demo", "--db", str(db), "--days", "2",
                             "--calls-per-day", "20", "--listen", f"127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    engine = None
    try:
        def up():
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2).status == 200
            except OSError:
                return False

        poll(up, timeout=90, what="the demo's web UI", interval=0.5)
        engine = make_engine(f"sqlite:///{db}")
        factory = make_sessionmaker(engine)

        def ran():
            with factory() as s:
                return {j.name for j in s.scalars(select(JobStatus)) if j.runs} >= {
                    "report_rollups", "recordings", "pool_release"}

        poll(ran, timeout=30, what="the scheduler's first runs of its jobs", interval=0.5)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if engine is not None:
            engine.dispose()



def test_demo_command_makes_the_whispers(run_cli, tmp_path):
    """`calltracking demo` turns the whisper on and makes the 8 kHz files with espeak-ng: one per
    source, one per campaign (the default template names it); the billboard's has its own text."""
    import wave

    from calltracking.db import make_engine, make_sessionmaker
    from calltracking.whisper import files as whisper_files

    db = tmp_path / "demo.db"
    out = run_cli("demo", "--db", str(db), "--days", "2", "--calls-per-day", "20", "--no-serve").output
    made = sorted((tmp_path / "demo-whispers").glob("*.wav"))
    assert made, out
    assert f"whispers made {len(made)}, kept 0, removed 0, errors 0" in out
    for path in made:
        with wave.open(str(path)) as w:
            assert (w.getframerate(), w.getnchannels()) == (8000, 1) and w.getnframes() > 4000
    engine = make_engine(f"sqlite:///{db}")
    try:
        with make_sessionmaker(engine)() as s:
            texts = {spec.text for spec in whisper_files.plan(s).values()}
    finally:
        engine.dispose()
    assert "Billboard on Tverskaya" in texts and "Google Ads, brand" in texts
    assert len(made) == len(texts)


def test_demo_has_target_rules_coloured_tags_and_target_calls_in_reports(session_factory):
    """Two target rules (talk ≥ 60 s; the first call from Google Ads) applied to every demo call,
    predefined coloured tags in the picker, and the sources report with target calls and their cost."""
    from calltracking.models import Project, Source, Tag, TargetRule
    from calltracking.reports import queries
    from calltracking.reports.rollup import refresh_rollups

    with session_factory() as s:
        stats = seed(s, days=10, per_day=40, now=NOW)
        s.commit()
    with session_factory() as s:
        rules = s.scalars(select(TargetRule).order_by(TargetRule.position)).all()
        assert [(r.min_talk_seconds, r.first_call_only, r.mark_target) for r in rules] == \
            [(60, False, True), (None, True, True)]
        google = s.scalars(select(Source).where(Source.name == "Google Ads")).one()
        assert rules[1].source_id == google.id and [t.name for t in rules[1].add_tags] == ["new client"]
        tags = s.scalars(select(Tag)).all()
        assert len(tags) >= 5 and all(t.offered and t.color.startswith("#") and t.description for t in tags)
        calls = s.scalars(select(Call).options(selectinload(Call.tags))).all()
        for c in calls:
            long_talk = c.talk_seconds is not None and c.talk_seconds >= 60
            first_google = c.first_call is True and c.source_id == google.id
            assert c.is_target == (long_talk or first_google), c.id
            assert ("new client" in {t.name for t in c.tags}) == first_google
            assert c.qualified_at is not None
        targets = sum(c.is_target for c in calls)
        assert stats["targets"] == targets and 0.2 * len(calls) < targets < len(calls)
        refresh_rollups(s, full=True)
        p = s.scalars(select(Project)).one()
        f = queries.ReportFilter(p, (NOW - dt.timedelta(days=12)).date(), NOW.date())
        rows = {r["name"]: r for r in queries.by_attribute(s, f, "source").as_dicts()}
        g = rows["Google Ads"]
        assert g["targets"] == sum(1 for c in calls if c.is_target and c.source_id == google.id) > 0
        assert g["cost_per_target"] == round(g["spend"] / g["targets"], 2)
        assert sum(r["targets"] for r in rows.values()) == targets
