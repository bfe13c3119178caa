"""Callback requests: acceptance, attribution, cooldown, hourly cap, schedule, widget config."""
import datetime as dt
from decimal import Decimal

import pytest

from calltracking import entities as svc
from calltracking.callbacks import create_request, schedule, settings, widget_config
from calltracking.models import CallbackRequest, VisitorSession

UTC = dt.timezone.utc
pytestmark = pytest.mark.db
# Wednesday 2026-03-04 12:00 Moscow = 09:00 UTC
NOON_MSK = dt.datetime(2026, 3, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
def project(session):
    p = svc.add_project(session, "acme", timezone="Europe/Moscow", default_queue="sales")
    src = svc.add_source(session, p, "Google Ads", "ads", "GA")
    camp = svc.add_campaign(session, src, "Spring", utm_campaign="spring")
    session.commit()
    return p, src, camp


def _enable(session, p, **values):
    settings.save(session, p.id, {"enabled": True, "outbound_context": "from-internal", **values})
    session.commit()


def _request(session, p, phone="+79161234567", visitor="v1", now=NOON_MSK):
    out = create_request(session, project_id=p.id, visitor_id=visitor, phone=phone, client_key="1.2.3.4", now=now)
    session.commit()
    return out


def test_disabled_project_refuses(session, project):
    p, _src, _c = project
    assert _request(session, p).reason == "disabled"
    settings.save(session, p.id, {"enabled": False, "outbound_context": "from-internal"})
    assert _request(session, p).status == "refused"
    assert session.query(CallbackRequest).count() == 0


def test_request_attributed_from_the_visit(session, project):
    p, src, camp = project
    _enable(session, p)
    vs = VisitorSession(project_id=p.id, visitor_id="v1", utm_source="google", utm_campaign="spring",
                        keyword="pizza", landing_page="https://acme.test/menu", source_id=src.id,
                        first_seen=NOON_MSK - dt.timedelta(seconds=95), last_seen=NOON_MSK)
    session.add(vs)
    session.commit()
    out = _request(session, p)
    assert (out.status, out.reason, out.at) == ("queued", "", NOON_MSK)
    req = session.get(CallbackRequest, out.request_id)
    assert req.session_id == vs.id and req.source_id == src.id
    assert req.campaign_id == camp.id
    assert req.time_on_site_seconds == Decimal("95.000")
    assert req.status == "pending" and req.next_attempt_at == NOON_MSK


def test_unknown_visitor_still_accepted_without_source(session, project):
    p, _src, _c = project
    _enable(session, p)
    out = _request(session, p, visitor=None)
    req = session.get(CallbackRequest, out.request_id)
    assert out.status == "queued" and req.session_id is None and req.source_id is None


def test_region_cooldown_and_hourly_cap(session, project):
    p, _src, _c = project
    _enable(session, p, max_calls_per_hour=2, cooldown_seconds=900)
    assert _request(session, p, phone="+77012345678").reason == "region"      # Kazakhstan, RU only
    assert _request(session, p).status == "queued"
    again = _request(session, p, now=NOON_MSK + dt.timedelta(seconds=899))
    assert again.reason == "cooldown"
    assert _request(session, p, phone="+79161234568", now=NOON_MSK + dt.timedelta(seconds=10)).status == "queued"
    capped = _request(session, p, phone="+79161234569", now=NOON_MSK + dt.timedelta(seconds=20))
    assert capped.reason == "hourly_limit"
    later = _request(session, p, phone="+79161234569", now=NOON_MSK + dt.timedelta(seconds=3601))
    assert later.status == "queued"
    settings.save(session, p.id, {"enabled": True, "outbound_context": "x", "allowed_regions": "RU,kz"})
    assert _request(session, p, phone="+77012345678", now=NOON_MSK + dt.timedelta(seconds=3700)).status == "queued"


def test_outside_hours_scheduled_for_next_opening(session, project):
    p, _src, _c = project
    _enable(session, p, schedule="mon-fri 09:00-18:00")
    evening = dt.datetime(2026, 3, 6, 16, 30, tzinfo=UTC)          # Friday 19:30 Moscow
    out = _request(session, p, now=evening)
    assert out.status == "scheduled"
    assert out.at == dt.datetime(2026, 3, 9, 6, 0, tzinfo=UTC)      # Monday 09:00 Moscow
    cfg = widget_config(session, p.id, evening)
    assert cfg["open_now"] is False and cfg["next_open"] == "2026-03-09T06:00:00+00:00"


def test_widget_config(session, project):
    p, _src, _c = project
    assert widget_config(session, p.id, NOON_MSK) is None
    _enable(session, p, widget_delay_seconds="45")
    assert widget_config(session, p.id, NOON_MSK) == {"enabled": True, "delay_seconds": 45,
                                                       "open_now": True, "next_open": None}


def test_schedule_rules():
    s = schedule.parse("mon-fri 09:00-13:00,14:00-18:00\n# lunch\nsun 00:00-24:00")
    msk = "Europe/Moscow"
    lunch = dt.datetime(2026, 3, 4, 10, 30, tzinfo=UTC)              # Wed 13:30 Moscow
    assert schedule.next_open(s, lunch, msk) == dt.datetime(2026, 3, 4, 11, 0, tzinfo=UTC)
    sat = dt.datetime(2026, 3, 7, 10, 0, tzinfo=UTC)
    assert schedule.next_open(s, sat, msk) == dt.datetime(2026, 3, 7, 21, 0, tzinfo=UTC)  # Sun 00:00
    assert schedule.parse("").always
    for bad in ("mon 18:00-09:00", "xyz 09:00-10:00", "mon", "mon 9-10", "mon 00:00-24:01"):
        with pytest.raises(schedule.ScheduleError):
            schedule.parse(bad)


def test_settings_validation(session, project):
    p, _src, _c = project
    with pytest.raises(settings.SettingsError, match="retries"):
        settings.save(session, p.id, {"retries": "99", "outbound_context": "x"})
    with pytest.raises(settings.SettingsError, match="outbound_context"):
        settings.save(session, p.id, {"outbound_context": "a,b\nc"})
    with pytest.raises(settings.SettingsError, match="allowed_regions"):
        settings.save(session, p.id, {"outbound_context": "x", "allowed_regions": "Russia"})


def test_hourly_cap_holds_under_concurrent_requests(engine, project):
    """Eight threads, each its own write transaction, ask at once: the cap (3) is counted in
    the database, so exactly three are accepted whatever the interleaving."""
    import threading

    from calltracking.db import make_sessionmaker, run_write

    p, _src, _c = project
    sm = make_sessionmaker(engine)
    with sm() as s:
        _enable(s, p, max_calls_per_hour=3)
    results, barrier = [], threading.Barrier(8)

    def ask(i):
        barrier.wait()
        out = run_write(sm, lambda s: create_request(s, project_id=p.id, visitor_id=None,
                                                     phone=f"+7916123450{i}", client_key="k", now=NOON_MSK))
        results.append(out.status)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == ["queued"] * 3 + ["refused"] * 5
    with sm() as s:
        assert s.query(CallbackRequest).count() == 3
