"""Constraints that protect the data, on the backend under test."""
import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from calltracking import entities as svc
from calltracking.models import (
    AdSpend, Call, CallLeg, NumberPool, PoolReservation, TrackingNumber, User, VisitorSession,
)

UTC = dt.timezone.utc


@pytest.fixture
def project(session):
    p = svc.add_project(session, "acme", timezone="Europe/Moscow", default_queue="sales")
    src = svc.add_source(session, p, "Google Ads", "ads", "GA")
    session.commit()
    return p, src


def test_duplicate_active_did_rejected(session, project):
    p, src = project
    svc.add_number(session, p, "8 (495) 000-10-01", source=src)
    session.commit()
    with pytest.raises(IntegrityError):
        session.add(TrackingNumber(project_id=p.id, number="+74950001001", kind="static", source_id=src.id))
        session.flush()
    session.rollback()
    with pytest.raises(svc.ServiceError, match=r"\+74950001001 is already mapped"):
        svc.add_number(session, p, "74950001001", source=src)


def test_retired_did_can_be_remapped(session, project):
    p, src = project
    svc.add_number(session, p, "74950001001", source=src)
    svc.retire_number(session, "74950001001")
    other = svc.add_source(session, p, "Billboard", "offline")
    svc.add_number(session, p, "74950001001", source=other)
    session.commit()
    rows = session.scalars(select(TrackingNumber).where(TrackingNumber.number == "+74950001001")).all()
    assert sorted(r.active for r in rows) == [False, True]


def test_static_number_cannot_have_pool(session, project):
    p, src = project
    pool = NumberPool(project_id=p.id, name="site")
    session.add(pool)
    session.flush()
    session.add(TrackingNumber(project_id=p.id, number="+74950001009", kind="static", pool_id=pool.id))
    with pytest.raises(IntegrityError):
        session.flush()


def test_call_unique_by_pbx_and_linkedid(session, project):
    p, _ = project
    t = dt.datetime(2026, 11, 22, 23, 59, 30, 701262, tzinfo=UTC)
    session.add(Call(pbx_id="pbx1", linkedid="1795391970.0", project_id=p.id, started_at=t))
    session.add(Call(pbx_id="pbx2", linkedid="1795391970.0", project_id=p.id, started_at=t))
    session.commit()
    session.add(Call(pbx_id="pbx1", linkedid="1795391970.0", project_id=p.id, started_at=t))
    with pytest.raises(IntegrityError):
        session.flush()


def test_times_utc_and_money_decimal(session, project):
    p, _ = project
    msk = dt.timezone(dt.timedelta(hours=3))
    t = dt.datetime(2026, 11, 23, 2, 59, 30, 701262, tzinfo=msk)
    c = Call(pbx_id="pbx1", linkedid="1.1", project_id=p.id, started_at=t, value=Decimal("1234.56"),
             wait_seconds=Decimal("2.026"))
    session.add(c)
    session.commit()
    session.expire_all()
    got = session.scalars(select(Call).where(Call.linkedid == "1.1")).one()
    assert got.started_at == t and got.started_at.tzinfo is not None
    assert got.started_at.utcoffset() == dt.timedelta(0)
    assert got.started_at.hour == 23
    assert got.value == Decimal("1234.56") and isinstance(got.value, Decimal)
    assert got.wait_seconds == Decimal("2.026")


def test_naive_datetime_refused(session, project):
    p, _ = project
    session.add(Call(pbx_id="pbx1", linkedid="1.2", project_id=p.id, started_at=dt.datetime(2026, 1, 1)))
    with pytest.raises(Exception, match="naive datetime"):
        session.flush()


def test_status_and_reason_checked(session, project):
    p, _ = project
    session.add(Call(pbx_id="pbx1", linkedid="1.3", project_id=p.id, status="lost"))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()
    session.add(Call(pbx_id="pbx1", linkedid="1.4", project_id=p.id, status="missed", missed_reason="bored"))
    with pytest.raises(IntegrityError):
        session.flush()


def test_leg_unique_per_call(session, project):
    p, _ = project
    c = Call(pbx_id="pbx1", linkedid="1.5", project_id=p.id)
    session.add(c)
    session.flush()
    session.add(CallLeg(call_id=c.id, uniqueid="1.7", operator_name="Anna"))
    session.flush()
    session.add(CallLeg(call_id=c.id, uniqueid="1.7", operator_name="Anna"))
    with pytest.raises(IntegrityError):
        session.flush()


def test_one_live_reservation_per_pool_number(session, project):
    p, src = project
    pool = svc.add_pool(session, p, "site", hold_seconds=600)
    tn = svc.add_number(session, p, "74950002001", pool=pool)
    v1 = VisitorSession(project_id=p.id, visitor_id="a")
    v2 = VisitorSession(project_id=p.id, visitor_id="b")
    session.add_all([v1, v2])
    session.commit()
    session.add(PoolReservation(pool_id=pool.id, tracking_number_id=tn.id, session_id=v1.id))
    session.flush()
    session.add(PoolReservation(pool_id=pool.id, tracking_number_id=tn.id, session_id=v2.id))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()
    # a released reservation does not block a new live one
    session.add(PoolReservation(pool_id=pool.id, tracking_number_id=tn.id, session_id=v1.id,
                                released_at=dt.datetime.now(UTC)))
    session.add(PoolReservation(pool_id=pool.id, tracking_number_id=tn.id, session_id=v2.id))
    session.flush()
    assert len(session.scalars(select(PoolReservation)).all()) == 2


def test_role_checked_and_spend_positive(session, project):
    p, src = project
    session.add(User(username="x", password_hash="h", role="root"))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()
    session.add(AdSpend(project_id=p.id, source_id=src.id, day=dt.date(2026, 11, 1), amount=Decimal("-1")))
    with pytest.raises(IntegrityError):
        session.flush()


def test_foreign_keys_enforced(session):
    session.add(Call(pbx_id="pbx1", linkedid="9.9", project_id=424242))
    with pytest.raises(IntegrityError):
        session.flush()
