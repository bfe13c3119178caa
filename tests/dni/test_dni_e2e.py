"""End to end: visitor → number (HTTP) → call through FastAGI (agi.server.run_agi) → attributed."""
from __future__ import annotations

import asyncio
import json
import socket
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from agi.server import run_agi
from calltracking.config import load_config
from calltracking.db import session_scope
from calltracking.models import Call, VisitorSession

from conftest import LiveServer, make_project, post_json

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "asterisk-22"
HEADERS = json.loads((FIXTURES / "fastagi_route_session.json").read_text())[0]["asterisk_sent_headers"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Agi:
    """run_agi (the production entry point) on its own event loop in a thread."""

    def __init__(self, db_url, factory):
        self.port = _free_port()
        cfg = load_config("/nonexistent.ini", env={}, require_file=False, overrides={
            "database.url": db_url, "agi.listen": f"127.0.0.1:{self.port}", "general.pbx_id": "pbx1",
            "agi.timeout_ms": "3000"})
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def main():
            self.stop = asyncio.Event()
            started = asyncio.Event()
            task = asyncio.create_task(run_agi(cfg, factory, self.stop, started))
            await started.wait()
            ready.set()
            await task

        self.thread = threading.Thread(target=lambda: self.loop.run_until_complete(main()), daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def close(self):
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)

    def call(self, hook: str, args: tuple, digits=()) -> dict:
        """Behave like Asterisk 22 (headers from the recording): answer commands, collect variables."""
        lines = []
        for line in HEADERS:
            key = line.split(":", 1)[0]
            if key.startswith("agi_arg_"):
                continue
            if key == "agi_network_script":
                line = f"agi_network_script: {hook}"
            elif key == "agi_request":
                line = f"agi_request: agi://127.0.0.1:{self.port}/{hook}"
            lines.append(line)
        lines += [f"agi_arg_{i}: {a}" for i, a in enumerate(args, 1)]
        out, digits = {}, list(digits)
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(("\n".join(lines) + "\n\n").encode())
            f = s.makefile("rb")
            while True:
                raw = f.readline()
                if not raw:
                    return out
                cmd = raw.decode().rstrip("\n")
                reply = "200 result=1"
                if cmd.startswith("SET VARIABLE "):
                    name, _, value = cmd[len("SET VARIABLE "):].partition(" ")
                    out[name] = value.strip('"').replace('\\"', '"').replace("\\\\", "\\")
                elif cmd.startswith("GET DATA "):
                    typed = digits.pop(0) if digits else ""
                    reply = f"200 result={typed}" + ("" if typed else " (timeout)")
                s.sendall((reply + "\n").encode())


@pytest.fixture
def servers(db_url, session_factory):
    make_project(session_factory, pool_size=2, origins="https://shop.example", promo_mode="exhausted")
    web = LiveServer(db_url, session_factory)
    agi = Agi(db_url, session_factory)
    yield web, agi
    agi.close()
    web.close()


def test_session_number_call_attributed(servers, session_factory):
    web, agi = servers
    st, a, _ = post_json(web.url + "/api/dni/assign", {
        "project": "acme", "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "brand_spring",
        "utm_term": "pizza near me", "gclid": "g-1"}, {"Origin": "https://shop.example"})
    assert st == 200 and a["kind"] == "pool"
    st, b, _ = post_json(web.url + "/api/dni/assign", {"project": "acme", "utm_source": "billboard-flyer",
                                                       "utm_term": "other"}, {"Origin": "https://shop.example"})
    assert b["number"] != a["number"]
    v = agi.call("route", (a["number"].lstrip("+"), "e2e.1"))
    assert v["CT_ATTRIBUTION"] == "dynamic" and v["CT_PROJECT"] == "acme"
    assert v["CT_SOURCE"] == "Google Ads" and v["CT_CONFIDENCE"] == "1.000"
    with session_scope(session_factory) as s:
        call = s.scalars(select(Call).where(Call.linkedid == "e2e.1")).one()
        assert call.session_id == a["session"] and call.attribution == "dynamic"
        vs = s.get(VisitorSession, call.session_id)
        assert (vs.utm_source, vs.utm_campaign, vs.keyword, vs.gclid) == (
            "google", "brand_spring", "pizza near me", "g-1")
        assert call.time_to_call_seconds is not None and call.time_to_call_seconds >= 0


def test_exhausted_pool_promo_code_typed_in_ivr(servers, session_factory):
    web, agi = servers
    for i in range(2):
        post_json(web.url + "/api/dni/assign", {"project": "acme", "utm_term": f"k{i}"})
    st, c, _ = post_json(web.url + "/api/dni/assign", {"project": "acme", "utm_source": "google",
                                                       "utm_term": "late visitor"})
    assert c["kind"] == "fallback" and c["promo"]
    v = agi.call("route", (c["number"].lstrip("+"), "e2e.2"))
    assert v["CT_ATTRIBUTION"] == "none"                      # the fallback number alone says nothing
    v = agi.call("promo", ("e2e.2",), digits=[c["promo"]])
    assert v["CT_PROMO"] == "valid" and v["CT_ATTRIBUTION"] == "promo" and v["CT_SOURCE"] == "Google Ads"
    with session_scope(session_factory) as s:
        call = s.scalars(select(Call).where(Call.linkedid == "e2e.2")).one()
        assert call.session_id == c["session"] and call.attribution == "promo"
        assert s.get(VisitorSession, call.session_id).keyword == "late visitor"
