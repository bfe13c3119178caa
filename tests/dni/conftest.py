"""Fixtures of the DNI tests: a project with a pool, the real application served."""
from __future__ import annotations

import pytest

from support.dni import make_project
from support.web import LiveServer


@pytest.fixture
def acme(session_factory):
    return make_project(session_factory)


@pytest.fixture
def live(db_url, session_factory):
    srv = LiveServer(db_url, session_factory)
    yield srv
    srv.close()
