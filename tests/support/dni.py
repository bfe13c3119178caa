"""The DNI tests' project and servers: a project with a pool of numbers (:func:`make_project`) and
the asyncio DNI server of ``[dni] listen`` (:class:`FastServer`); the fixture :func:`start`, which
starts each test once on either listener (import it into a test module to use it)."""
from __future__ import annotations

import pytest

from calltracking import entities as svc
from calltracking.db import session_scope
from calltracking.dni import projects as dni
from support.config import make_config
from support.fixtures import ROOT
from support.web import LiveServer
from webui import create_app
from webui.dni_server import DniServer

POOL_BASE = 74950002000          # +7 495 000-20-00 … pool numbers
DEFAULT = "+74951234567"         # the site's own number (project default)
FALLBACK = "+74951230000"        # pool fallback
STATIC_BILLBOARD = "+74950001001"


def make_project(factory, key="acme", pool_size=20, hold_seconds=900, origins="", promo_mode="off",
                 base=POOL_BASE):
    """Project ``key`` (Moscow, queue ``sales``, site number :data:`DEFAULT`): sources Google Ads
    (campaign Brand) and Billboard (a static number), pool ``website`` of ``pool_size`` numbers
    from ``+base`` (fallback :data:`FALLBACK`); returns the ids."""
    with session_scope(factory) as s:
        p = svc.add_project(s, key, key.title(), "Europe/Moscow", "sales", DEFAULT)
        p.allowed_origins = origins
        google = svc.add_source(s, p, "Google Ads", "ads", "google")
        svc.add_campaign(s, google, "Brand", "brand_spring")
        billboard = svc.add_source(s, p, "Billboard", "offline", "billboard")
        svc.add_number(s, p, STATIC_BILLBOARD if base == POOL_BASE else f"+{base + 900}", source=billboard)
        pool = svc.add_pool(s, p, "website", hold_seconds=hold_seconds, fallback_number=FALLBACK)
        pool.promo_mode = promo_mode
        for i in range(pool_size):
            svc.add_number(s, p, f"+{base + i}", pool=pool)
        ids = {"project": p.id, "pool": pool.id, "google": google.id, "billboard": billboard.id}
    dni.invalidate_cache()
    return ids


#: The snippet the customer's site loads.
SNIPPET_ROOT = ROOT / "webui" / "static" / "dni.js"


class FastServer:
    """The asyncio DNI server ([dni] listen; webui.dni_server) on a free port, sharing the real
    application's DniApi (so ``flask_config`` such as DNI_RATE_BURST applies to both); ``config`` as
    :class:`support.web.LiveServer` takes it."""

    def __init__(self, db_url, factory, max_connections: int = 1000, config=None, **flask_config):
        self.app = create_app(make_config(db_url, **(config or {})), factory, testing=True)
        self.app.config.update(flask_config)
        self.api = self.app.extensions["dni_api"]
        self.server = DniServer(self.api, "127.0.0.1", 0, max_connections=max_connections).start()
        self.port = self.server.port
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self):
        self.server.close()


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
