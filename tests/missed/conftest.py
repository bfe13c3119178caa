"""Fixtures for the missed-calls worklist tests: a project, users, the web UI."""
from __future__ import annotations

import pytest

from calltracking import entities as svc
from support.config import make_config
from support.web import PASSWORD, login
from webui import create_app


@pytest.fixture
def world(session_factory):
    s = session_factory()
    p = svc.add_project(s, "acme", "ACME", "Europe/Moscow", default_queue="sales")
    p2 = svc.add_project(s, "other", "Other", "Europe/Moscow")
    op = svc.add_operator(s, "Olga", "PJSIP/101", queues="sales")
    svc.add_user(s, "super", PASSWORD, "supervisor")
    svc.add_user(s, "sveta", PASSWORD, "supervisor", language="ru")
    s.commit()
    ids = dict(project=p.id, other=p2.id, operator=op.id)
    s.close()
    return ids


@pytest.fixture
def client_for(db_url, session_factory, world):
    app = create_app(make_config(db_url), session_factory, testing=True)
    app.config["WTF_CSRF_ENABLED"] = False

    def make(username="super"):
        c = app.test_client()
        assert login(c, username).status_code == 302
        return c

    return make
