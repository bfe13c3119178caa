"""Fixtures for the web UI tests: a configured app on the test database, users of each role."""
from __future__ import annotations

import pytest

from calltracking import entities as svc
from support.config import make_config
from support.web import PASSWORD, login
from webui import create_app


@pytest.fixture(autouse=True)
def _fast_password_hashes(monkeypatch):
    """Real werkzeug hashes, with fewer rounds: the suite logs in hundreds of times."""
    import functools

    from werkzeug.security import generate_password_hash

    monkeypatch.setattr(svc, "generate_password_hash",
                        functools.partial(generate_password_hash, method="pbkdf2:sha256:2000"))


@pytest.fixture
def world(session_factory):
    """A project with a source, a campaign, a pool, an operator and three users."""
    s = session_factory()
    p = svc.add_project(s, "acme", "ACME", "Europe/Moscow", default_queue="sales")
    src = svc.add_source(s, p, "Google Ads", "ads")
    camp = svc.add_campaign(s, src, "brand")
    pool = svc.add_pool(s, p, "website")
    op = svc.add_operator(s, "Olga", "PJSIP/101", queues="sales")
    op2 = svc.add_operator(s, "Boris", "PJSIP/102", queues="sales")
    svc.add_user(s, "admin", PASSWORD, "admin")
    svc.add_user(s, "super", PASSWORD, "supervisor")
    svc.add_user(s, "oper", PASSWORD, "operator", operator=op)
    s.commit()
    ids = dict(project=p.id, source=src.id, campaign=camp.id, pool=pool.id, operator=op.id, operator2=op2.id)
    s.close()
    return ids


@pytest.fixture
def app(db_url, session_factory, world, tmp_path):
    cfg = make_config(db_url, recordings__dir=tmp_path)
    app = create_app(cfg, session_factory, testing=True)
    app.config["WTF_CSRF_ENABLED"] = False
    return app


@pytest.fixture
def csrf_app(db_url, session_factory, world):
    return create_app(make_config(db_url), session_factory, testing=True)


@pytest.fixture
def client_for(app):
    def make(role):
        c = app.test_client()
        if role:
            r = login(c, {"admin": "admin", "supervisor": "super", "operator": "oper"}[role])
            assert r.status_code == 302, r.data
        return c

    return make
