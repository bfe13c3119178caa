"""Constraints that protect the data, on the backend under test."""
import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from calltracking import entities as svc
from calltracking import enums
from calltracking.dni import useragent
from calltracking.interpret import FrameParser, Interpreter
from calltracking.models import (
    AdSpend, Call, CallLeg, Delivery, NotificationRule, NumberPool, OutboundCall, PoolReservation,
    RecordingInfo, TrackingNumber, User, VisitorSession,
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


# ---------------------------------------------------------------------- the enums are the columns
#: Every CHECK constraint that lists values, and the enum it must list exactly.
CHECKED = {
    "ck_calls_status": enums.CallStatus, "ck_calls_attribution": enums.AttributionKind,
    "ck_calls_missed_reason": enums.MissedReason, "ck_call_legs_outcome": enums.LegOutcome,
    "ck_outbound_calls_status": enums.CallStatus, "ck_tracking_numbers_kind": enums.NumberKind,
    "ck_tracking_numbers_kind_target": enums.NumberKind, "ck_users_role": enums.Role,
    "ck_notification_rules_channel": enums.NotificationChannel,
    "ck_notification_rules_event": enums.NotificationEvent,
    "ck_deliveries_channel": enums.NotificationChannel, "ck_deliveries_status": enums.DeliveryStatus,
    "ck_recording_info_status": enums.RecordingStatus,
    "ck_whisper_projects_voice": enums.WhisperVoice,
    "ck_callback_requests_status": enums.CallbackStatus, "ck_callback_attempts_result": enums.CallbackResult,
    "ck_transcripts_status": enums.TranscriptStatus, "ck_transcript_phrases_side": enums.TranscriptSide,
    "ck_keyword_mentions_side": enums.TranscriptSide,
}


def test_migrated_check_constraints_list_exactly_the_enums(engine):
    """The constraints as the migrations made them, read back from the database: a value the
    database allows and the enum lacks (or the other way round) fails here."""
    insp = inspect(engine)
    found = {}
    for table in insp.get_table_names():
        for ck in insp.get_check_constraints(table):
            values = set(re.findall(r"'([^']*)'", ck["sqltext"])) - {""}   # PostgreSQL adds ::text casts
            if values:
                found[ck["name"]] = values
    assert set(found) == set(CHECKED)
    for name, enum in CHECKED.items():
        assert found[name] == {m.value for m in enum}, name


def test_database_accepts_every_enum_value(session, project):
    p, src = project
    pool = svc.add_pool(session, p, "site")
    svc.add_number(session, p, "74950003001", pool=pool)
    for i, status in enumerate(enums.CallStatus):
        session.add(Call(pbx_id="pbx1", linkedid=f"10.{i}", project_id=p.id, status=status))
        session.add(OutboundCall(pbx_id="pbx1", linkedid=f"10.{i}", number="+74950000000", status=status))
    for i, reason in enumerate(enums.MissedReason):
        session.add(Call(pbx_id="pbx1", linkedid=f"11.{i}", status=enums.CallStatus.MISSED, missed_reason=reason))
    for i, kind in enumerate(enums.AttributionKind):
        session.add(Call(pbx_id="pbx1", linkedid=f"12.{i}", attribution=kind))
    call = Call(pbx_id="pbx1", linkedid="13.0")
    call.legs = [CallLeg(uniqueid=f"13.{i}", outcome=outcome, kind=list(enums.LegKind)[i % len(enums.LegKind)])
                 for i, outcome in enumerate(enums.LegOutcome)]
    session.add(call)
    session.add_all(User(username=f"u{i}", password_hash="h", role=role) for i, role in enumerate(enums.Role))
    for channel in enums.NotificationChannel:
        for event in enums.NotificationEvent:
            session.add(NotificationRule(project_id=p.id, channel=channel, event=event, target="x"))
        for i, status in enumerate(enums.DeliveryStatus):
            session.add(Delivery(channel=channel, event=list(enums.DeliveryEvent)[i], status=status))
    session.flush()
    session.add_all(RecordingInfo(call_id=c.id, status=st)
                    for c, st in zip(session.scalars(select(Call).order_by(Call.id)), enums.RecordingStatus))
    session.commit()
    session.expire_all()
    assert {c.status for c in session.scalars(select(Call))} == set(enums.CallStatus)
    assert {leg.outcome for leg in session.scalars(select(CallLeg))} == set(enums.LegOutcome)


def test_every_source_channel_accepted_and_no_other(session, project):
    p, _ = project
    for channel in enums.SourceChannel:
        assert svc.add_source(session, p, f"from {channel}", channel).channel == channel
    with pytest.raises(svc.ServiceError):
        svc.add_source(session, p, "TV", "tv")


@pytest.mark.parametrize("ua", [
    "", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 13; SM-T220) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (PlayStation 5 3.11) AppleWebKit/605.1.15",
])
def test_parsed_devices_are_device_values(ua):
    assert useragent.parse(ua).device in set(enums.Device)


FIXTURE_DIRS = [Path(__file__).parent / "fixtures" / "asterisk-22", Path(__file__).parent / "ami" / "fixtures"]


def _records():
    for path in sorted(f for d in FIXTURE_DIRS for f in d.rglob("*.ami")):
        it = Interpreter()
        for ev in FrameParser().feed(path.read_bytes()):
            if "Event" in ev and "ActionID" not in ev:
                it.feed(ev, float(ev.get("Timestamp") or 0))
        yield from (c.record() for c in it.take_dirty())


def test_recorded_calls_interpret_to_enum_values():
    """Every status, missed reason and leg kind/outcome the interpreter derives from the
    recordings of a real Asterisk is an enum value (so the database accepts it)."""
    recs = list(_records())
    assert len(recs) > 20
    assert {r["status"] for r in recs} <= set(enums.CallStatus)
    assert {r["missed_reason"] for r in recs} - {None} <= set(enums.MissedReason)
    legs = [leg for r in recs for leg in r["legs"]]
    assert {leg["kind"] for leg in legs} <= set(enums.LegKind)
    assert {leg["outcome"] for leg in legs} <= set(enums.LegOutcome)
    # the recordings hold answered and missed calls, rung and answered legs
    assert {enums.CallStatus.ANSWERED, enums.CallStatus.MISSED} <= {r["status"] for r in recs}
    assert {enums.LegOutcome.ANSWERED, enums.LegOutcome.NO_ANSWER} <= {leg["outcome"] for leg in legs}
