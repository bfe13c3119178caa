"""Fixtures for the DNI tests; the helpers live in dni_helpers.py."""
from __future__ import annotations

import pytest

from dni_helpers import LiveServer, make_project


@pytest.fixture
def acme(session_factory):
    return make_project(session_factory)


@pytest.fixture
def live(db_url, session_factory):
    srv = LiveServer(db_url, session_factory)
    yield srv
    srv.close()
