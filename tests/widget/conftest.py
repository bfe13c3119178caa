"""Fixtures of the callback widget's tests: a DNI project with callbacks on, and its listeners."""
from __future__ import annotations

import pytest

from support.callback_widget import SITE, enable_callbacks
from support.dni import FastServer, make_project
from support.web import LiveServer


@pytest.fixture
def project(session_factory):
    """Project ``acme`` (origins :data:`SITE`) with callbacks on, Russia and Kazakhstan allowed."""
    ids = make_project(session_factory, origins=SITE)
    enable_callbacks(session_factory, ids["project"], allowed_regions="RU,KZ", widget_delay_seconds=7)
    return ids


@pytest.fixture(params=["waitress", "fast"])
def start(request, db_url, session_factory):
    """Start the listener under test (its own application) on the test database."""
    started = []

    def start_(config=None, **flask_config):
        cls = LiveServer if request.param == "waitress" else FastServer
        srv = cls(db_url, session_factory, config=config, **flask_config)
        started.append(srv)
        return srv

    yield start_
    for srv in started:
        srv.close()
