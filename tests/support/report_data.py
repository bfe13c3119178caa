"""Known report data shared by the reports tests (loaded by path, not a test module)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from calltracking.models import (
    AdSpend, Call, CallLeg, Campaign, Operator, Project, Source, VisitorSession,
)

UTC = dt.timezone.utc
HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def t(s: str) -> dt.datetime:
    """A UTC time from 'YYYY-MM-DD HH:MM:SS'."""
    return dt.datetime.fromisoformat(s).replace(tzinfo=UTC)


_seq = [0]


def add_call(session, project, started, *, status="answered", wait=10, talk=60, source=None,
             campaign=None, operator=None, first=True, value=None, vs=None, ttc=None, legs=(),
             ended=None):
    _seq[0] += 1
    start = t(started) if isinstance(started, str) else started
    answered = start + dt.timedelta(seconds=wait) if status == "answered" else None
    if ended is None and status != "in_progress":
        ended = (answered + dt.timedelta(seconds=talk)) if answered else start + dt.timedelta(seconds=wait)
    c = Call(pbx_id="pbx1", linkedid=f"L{_seq[0]}", project_id=project.id, did="+74950000001",
             caller_number=f"+7916000{_seq[0]:04d}", started_at=start, answered_at=answered,
             ended_at=ended, status=status, missed_reason="abandoned" if status == "missed" else None,
             wait_seconds=Decimal(wait) if status != "in_progress" else None,
             talk_seconds=Decimal(talk) if status == "answered" else None,
             source_id=source.id if source else None, campaign_id=campaign.id if campaign else None,
             operator_id=operator.id if operator and status == "answered" else None,
             operator_name=operator.name if operator and status == "answered" else "",
             first_call=first, value=Decimal(value) if value is not None else None,
             session_id=vs.id if vs else None, attribution="dynamic" if vs else "static",
             time_to_call_seconds=Decimal(ttc) if ttc is not None else None)
    session.add(c)
    session.flush()
    for i, (op, outcome) in enumerate(legs):
        session.add(CallLeg(call_id=c.id, operator_id=op.id, operator_name=op.name,
                            uniqueid=f"{c.linkedid}.{i}", outcome=outcome, rung_at=start))
    session.flush()
    return c


def build(session, tz="America/New_York"):
    """A project with known calls. Returns a dict of the objects."""
    p = Project(key="acme", name="Acme", timezone=tz)
    session.add(p)
    session.flush()
    g = Source(project_id=p.id, name="Google Ads", channel="ads")
    h = Source(project_id=p.id, name=HOSTILE, channel="other")
    session.add_all([g, h])
    session.flush()
    brand = Campaign(project_id=p.id, source_id=g.id, name="brand")
    session.add(brand)
    o1 = Operator(name="Anna", interface="PJSIP/101")
    o2 = Operator(name="Boris", interface="PJSIP/102")
    session.add_all([o1, o2])
    session.flush()
    vs1 = VisitorSession(project_id=p.id, visitor_id="v1", keyword="buy widgets", device="mobile",
                         os="Android", browser="Chrome", first_seen=t("2026-03-02 14:00:00"),
                         last_seen=t("2026-03-02 14:05:00"))
    vs2 = VisitorSession(project_id=p.id, visitor_id="v2", utm_term=HOSTILE, device="desktop",
                         os="Windows", browser="Firefox", first_seen=t("2026-03-02 14:00:00"),
                         last_seen=t("2026-03-02 14:05:00"))
    session.add_all([vs1, vs2])
    session.flush()
    # 2026-03-02 is a Monday. 15:00 UTC = 10:00 in New York (EST, UTC-5).
    add_call(session, p, "2026-03-02 15:00:00", wait=10, talk=100, source=g, campaign=brand,
             operator=o1, value="1000.00", vs=vs1, ttc=120, legs=[(o2, "no_answer"), (o1, "answered")])
    add_call(session, p, "2026-03-02 15:01:00", wait=20, talk=200, source=g, campaign=brand,
             operator=o1, first=False, vs=vs2, ttc=30)
    add_call(session, p, "2026-03-02 15:02:00", status="missed", wait=30, source=g,
             legs=[(o2, "no_answer"), (o1, "no_answer")])
    add_call(session, p, "2026-03-03 02:30:00", wait=40, talk=300, source=h, operator=o2)
    # 2026-03-03 02:30 UTC is still Monday 2026-03-02 21:30 in New York.
    add_call(session, p, "2026-03-10 12:00:00", status="in_progress", source=g)
    session.add_all([
        AdSpend(project_id=p.id, source_id=g.id, campaign_id=None, day=dt.date(2026, 3, 2),
                amount=Decimal("150.00")),
        # another day: a campaign row beside its source's own row of the same day is not added
        # (calltracking/reports/adspend.py)
        AdSpend(project_id=p.id, source_id=g.id, campaign_id=brand.id, day=dt.date(2026, 3, 3),
                amount=Decimal("60.00")),
        AdSpend(project_id=p.id, source_id=g.id, campaign_id=None, day=dt.date(2026, 4, 1),
                amount=Decimal("999.00")),
    ])
    session.commit()
    return {"project": p, "google": g, "hostile": h, "brand": brand, "anna": o1, "boris": o2}


def reports_app(db_url: str, session_factory, tmp_path, **app_config):
    """The web application over :func:`build`'s data with a supervisor ``sup1`` / ``password1``
    (secure cookies off: the tests talk plain HTTP); ``app_config`` goes into Flask's config."""
    from calltracking import entities
    from calltracking.config import load_config
    from webui import create_app

    cfg = load_config(tmp_path / "none.ini", env={"CALLTRACKING_DATABASE_URL": db_url,
                                                  "CALLTRACKING_WEB_SECURE_COOKIES": "no"},
                      require_file=False)
    with session_factory() as s:
        build(s)
        entities.add_user(s, "sup1", "password1", "supervisor")
        s.commit()
    app = create_app(cfg, session_factory, testing=True)
    app.config.update(app_config)
    return app
