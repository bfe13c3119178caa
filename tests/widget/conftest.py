"""Fixtures of the callback widget's tests: a DNI project with callbacks on, and its listeners."""
from __future__ import annotations

import pytest

from support.callback_widget import SITE, enable_callbacks
from support.dni import make_project, start  # noqa: F401 - start: the fixture, on both listeners


@pytest.fixture
def project(session_factory):
    """Project ``acme`` (origins :data:`SITE`) with callbacks on, Russia and Kazakhstan allowed."""
    ids = make_project(session_factory, origins=SITE)
    enable_callbacks(session_factory, ids["project"], allowed_regions="RU,KZ", widget_delay_seconds=7)
    return ids
