"""/metrics: Prometheus text format, admins only."""
import datetime as dt

import pytest
from prometheus_client.parser import text_string_to_metric_families

from calltracking import metrics
from calltracking import entities as svc
from calltracking.config import load_config
from calltracking.models import Call, VisitorSession, PoolReservation

UTC = dt.timezone.utc


@pytest.fixture
def app_and_tokens(db_url, session_factory, tmp_path):
    from webui import create_app
    from webui.auth import new_api_token

    cfg = load_config(tmp_path / "none.ini", env={"CALLTRACKING_DATABASE_URL": db_url}, require_file=False)
    with session_factory() as s:
        p = svc.add_project(s, "acme")
        pool = svc.add_pool(s, p, "site")
        numbers = [svc.add_number(s, p, f"7495000200{i}", pool=pool) for i in range(3)]
        v = VisitorSession(project_id=p.id, visitor_id="v1")
        s.add(v)
        s.flush()
        s.add(PoolReservation(pool_id=pool.id, tracking_number_id=numbers[0].id, session_id=v.id))
        pool.exhausted_count = 4
        now = dt.datetime.now(UTC)
        s.add_all([Call(pbx_id="pbx1", linkedid=f"1.{i}", project_id=p.id, started_at=now,
                        status=st) for i, st in enumerate(["answered", "answered", "missed", "in_progress"])])
        from calltracking.models import JobStatus

        s.add(JobStatus(name="retention", runs=10, failures=3, last_ok_at=now))
        admin = svc.add_user(s, "root1", "password1", "admin")
        sup = svc.add_user(s, "sup1", "password1", "supervisor")
        tokens = new_api_token(admin), new_api_token(sup)
        s.commit()
    app = create_app(cfg, session_factory, testing=True)
    return app, tokens


def test_metrics_parse_and_values(app_and_tokens):
    app, (admin_token, _) = app_and_tokens
    metrics.AGI_LATENCY.labels("route").observe(0.002)
    metrics.AGI_REQUESTS.labels("route", "ok").inc()
    metrics.AMI_RECONNECTS.inc()
    res = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {admin_token}"})
    assert res.status_code == 200
    assert res.mimetype == "text/plain"
    fams = {f.name: f for f in text_string_to_metric_families(res.get_data(as_text=True))}
    calls = {s.labels["status"]: s.value for s in fams["calltracking_calls"].samples if s.name.endswith("_total")}
    assert calls == {"answered": 2, "missed": 1, "in_progress": 1}
    used = {s.labels["pool"]: s.value for s in fams["calltracking_pool_numbers_in_use"].samples}
    size = {s.labels["pool"]: s.value for s in fams["calltracking_pool_numbers"].samples}
    assert list(used.values()) == [1] and list(size.values()) == [3]
    exh = [s.value for s in fams["calltracking_pool_exhausted"].samples if s.name.endswith("_total")]
    assert exh == [4]
    assert "calltracking_agi_latency_seconds" in fams
    buckets = [s for s in fams["calltracking_agi_latency_seconds"].samples if s.name.endswith("_count")]
    assert buckets and buckets[0].value >= 1
    assert [s.value for s in fams["calltracking_database_up"].samples] == [1]
    fails = {s.labels["job"]: s.value for s in fams["calltracking_job_failures"].samples
             if s.name.endswith("_total")}
    assert fails == {"retention": 3}


def test_metrics_access_control(app_and_tokens):
    app, (_, sup_token) = app_and_tokens
    c = app.test_client()
    assert c.get("/metrics").status_code == 401
    assert c.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/metrics", headers={"Authorization": f"Bearer {sup_token}"}).status_code == 403
