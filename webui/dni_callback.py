"""``POST /api/dni/callback``: a website visitor asks to be called back; and the callback
widget's settings in the assign answer (thin adapter over :mod:`calltracking.callbacks`).

:class:`CallbackDesk` is part of :class:`webui.dni.DniApi`, so both DNI listeners serve the
endpoint with the same CORS, body limits, client keys (``[web] trusted_proxies``) and request
rate as ``assign``. Body: ``{"project", "visitor_id", "phone"}``. On top of the shared rate,
in this order:

1. per client key: ``[dni] callback_per_client`` requests an hour (a token bucket), whatever
   the answer — ``429 {"error": "client_limit"}``;
2. the visitor id must be one the server signed (the snippet's) — else ``422 visitor_id``;
3. the project's callbacks must be on — else ``422 disabled``;
4. the number must pass :func:`calltracking.callbacks.intake.check` — else ``422 <reason>``;
5. per visitor id: ``[dni] callback_per_visitor`` well-formed requests an hour —
   ``429 {"error": "visitor_limit"}``;
6. :func:`calltracking.callbacks.create_request` (the per-number cooldown and the project's
   hourly cap of outbound calls): ``202 {"status": "queued", "at": null}`` (called now) or
   ``202 {"status": "scheduled", "at": "2026-12-07T06:00:00Z"}`` (the next opening, UTC); the
   hourly cap gives ``429 {"error": "hourly_limit"}``.

A number inside its cooldown gets the answer a new request would get at that moment (queued
now, or scheduled at the next opening): the answer never tells whether someone asked for that
number before. The refusals of these checks are ``{"error": code, "message": English text}``
(the shared checks before them answer as for ``assign``).
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from calltracking import callbacks
from calltracking.callbacks import intake
from calltracking.db import write_scope
from calltracking.dni import guard as dni_guard
from calltracking.dni.guard import RateLimiter
from calltracking.dni.projects import CACHE_TTL
from calltracking.dni.transactions import engine_key
from calltracking.models import CallbackSettings

log = logging.getLogger(__name__)

#: code -> message of the refusals that are not the number's (those are intake.REASONS)
MESSAGES = {
    "client_limit": "too many callback requests from this network; try again later",
    "visitor_limit": "too many callback requests from this visitor; try again later",
    "hourly_limit": "no more callbacks can be made this hour; try again later",
    "visitor_id": "field 'visitor_id' must be the visitor id the number request returned",
    "disabled": "callback requests are off for this project",
    "phone": "field 'phone' must be a string",
}
#: seconds the hourly cap's refusal tells the visitor to wait
RETRY_AFTER = "600"


def _iso(value):
    """A UTC time as ``2026-12-07T06:00:00Z`` (from a datetime or an ISO string); None stays None."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    return value


class Widget:
    """A project's callback settings as the endpoints need them, loaded in one read."""

    __slots__ = ("config", "regions", "loaded")

    def __init__(self, config, regions: str, loaded: float):
        self.config, self.regions, self.loaded = config, regions, loaded

    def public(self):
        """The assign answer's ``widget_config``: None when callbacks are off."""
        c = self.config
        if not c or not c.get("enabled"):
            return None
        return {"enabled": True, "delay_seconds": c.get("delay_seconds"), "open_now": bool(c.get("open_now")),
                "next_open": _iso(c.get("next_open"))}


def load_widget(engine, project_id: int) -> Widget:
    """Read a project's widget settings and allowed regions (a database step)."""
    now = dt.datetime.now(dt.timezone.utc)
    with Session(engine) as s:
        config = callbacks.widget_config(s, project_id, now)
        regions = s.scalar(select(CallbackSettings.allowed_regions)
                           .where(CallbackSettings.project_id == project_id)) or ""
    return Widget(config, regions, time.monotonic())


def _unreadable() -> Widget:
    """What a project whose settings cannot be read gets: no widget (read again after CACHE_TTL)."""
    return Widget(None, "", time.monotonic())


def _refill(per_hour: int) -> str:
    """Seconds until a bucket of ``per_hour`` requests an hour has one request again."""
    return str(math.ceil(3600 / per_hour))


def _error(status: int, code: str, headers=()):
    return status, {"error": code, "message": MESSAGES.get(code) or intake.REASONS.get(code, code)}, list(headers)


class CallbackDesk:
    """The callback endpoint and the widget settings of :class:`webui.dni.DniApi` (``api``;
    ``step``: its class of blocking database steps, ``step(fn, *args)``; ``reload``: its class of
    cache reloads, ``reload(stale, fn, engine, key)``, answered with ``stale`` at once by the
    asyncio server while the reload runs)."""

    def __init__(self, api, step, reload):
        self.api, self.step, self.reload = api, step, reload
        self.clients = RateLimiter()
        self.visitors = RateLimiter()
        self._widgets: dict = {}         # (database, project id) -> Widget

    def widget(self, engine, project_id: int):
        """Generator (DniApi steps): the project's :class:`Widget`, cached :data:`CACHE_TTL`
        seconds; one without settings when they cannot be read (the assign answer goes on
        without a widget)."""
        w = self._widgets.get((engine_key(engine), project_id))
        if w is None or time.monotonic() - w.loaded >= CACHE_TTL:
            try:
                w = yield self.reload(w, self._load, engine, ("callback", project_id))
            except Exception:             # the asyncio server gave up waiting: no widget this time
                w = _unreadable()
        return w

    def _load(self, engine, key) -> Widget:
        """Read and cache the project's :class:`Widget` (``key``: ``("callback", project id)``)."""
        try:
            w = load_widget(engine, key[1])
        except Exception as e:
            log.warning("DNI: could not read the callback settings of project %s: %s", key[1], e)
            w = _unreadable()
        self._widgets[(engine_key(engine), key[1])] = w
        return w

    def handle(self, engine, info, data: dict, client: str):
        """Generator (DniApi steps): ``(status, payload, headers)`` of a callback request."""
        api = self.api
        per_client = api.cfg("DNI_CALLBACK_PER_CLIENT")
        if not self.clients.allow(client, per_client / 60.0, per_client):
            dni_guard.count_rejected("callback_client_limit")
            return _error(429, "client_limit", [("Retry-After", _refill(per_client))])
        visitor_id, raw = data.get("visitor_id"), data.get("phone")
        if not api.signer.valid(visitor_id):
            dni_guard.count_rejected("callback_visitor_id")
            return _error(422, "visitor_id")
        if raw is not None and not isinstance(raw, str):
            return _error(422, "phone")
        w = yield from self.widget(engine, info.id)
        if w.public() is None:
            return _error(422, "disabled")
        region = api.cfg("DNI_DEFAULT_REGION")
        number = intake.check(raw, default_region=region, allowed_regions=w.regions or region)
        if not number.ok:
            return _error(422, number.reason)
        per_visitor = api.cfg("DNI_CALLBACK_PER_VISITOR")
        if not self.visitors.allow(visitor_id, per_visitor / 60.0, per_visitor):
            dni_guard.count_rejected("callback_visitor_limit")
            return _error(429, "visitor_limit", [("Retry-After", _refill(per_visitor))])
        out = yield self.step(_create, engine, info.id, visitor_id, number.phone, client, region)
        if out.status == "queued":
            return 202, {"status": "queued", "at": None}, []
        if out.status == "scheduled":
            return 202, {"status": "scheduled", "at": _iso(out.at)}, []
        if out.reason == "cooldown":
            return 202, self._as_new(w), []
        if out.reason == "hourly_limit":
            dni_guard.count_rejected("callback_hourly_limit")
            return _error(429, "hourly_limit", [("Retry-After", RETRY_AFTER)])
        return _error(422, out.reason if out.reason in intake.REASONS else "disabled")

    @staticmethod
    def _as_new(w: Widget) -> dict:
        c = w.config or {}
        if c.get("open_now"):
            return {"status": "queued", "at": None}
        return {"status": "scheduled", "at": _iso(c.get("next_open"))}


def _create(engine, project_id: int, visitor_id: str, phone: str, client: str, region: str):
    with write_scope(engine, wait=1.0) as s:
        return callbacks.create_request(s, project_id=project_id, visitor_id=visitor_id, phone=phone,
                                        client_key=client, now=dt.datetime.now(dt.timezone.utc),
                                        default_region=region)
