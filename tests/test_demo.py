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
