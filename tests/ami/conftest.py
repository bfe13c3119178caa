"""Fixtures for the AMI listener tests: a real AMI server, the real listener in a thread."""
from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from amiserver import FakeAsterisk, load, queue_members_from_conf  # noqa: E402

from amipaths import FIXTURES, OWN, event_count  # noqa: E402,F401 (fixtures' helpers)
DIDS = ["74950001001", "74950001002", "74950001003", "74950001004", "74950001005", "74950001006",
        "74950001008", "74950001009", "74950001010", "74951110007", "74950001011", "74950001012"]


def members():
    return queue_members_from_conf(FIXTURES / "queues.conf")


def make_config(db_url: str, port: int, **extra):
    from calltracking.config import load_config

    overrides = {"database.url": db_url, "ami.port": str(port), "ami.secret": "ctsecret",
                 "ami.username": "calltracking", "ami.ping_interval": "1", "ami.reconnect_max": "1",
                 "general.default_region": "RU", "general.pbx_id": "pbx1"}
    overrides.update(extra)
    return load_config("/nonexistent/calltracking.ini", env={}, overrides=overrides, require_file=False)


class Listener:
    """run_ami in its own thread and event loop, as `calltracking run` would run it."""

    def __init__(self, config, session_factory):
        self.config, self.factory = config, session_factory
        self.stats: dict = {}
        self.loop = None
        self.stop_event = None
        self.ready = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self):
        from ami_listener import run_ami

        async def main():
            self.loop = asyncio.get_running_loop()
            self.stop_event = asyncio.Event()
            ready = asyncio.Event()

            async def relay():
                await ready.wait()
                self.ready.set()

            t = asyncio.create_task(relay())
            await run_ami(self.config, self.factory, self.stop_event, ready, stats=self.stats)
            t.cancel()

        try:
            asyncio.run(main())
        except BaseException as e:  # surfaced by stop()
            self.error = e
            self.ready.set()

    def start(self, wait=True):
        self.thread.start()
        if wait:
            assert self.ready.wait(15), "listener not ready"
            if self.error:
                raise self.error
        return self

    def wait_idle(self, events: int = 0, timeout: float = 30.0):
        deadline = time.time() + timeout
        while True:
            w, p = self.stats.get("writer"), self.stats.get("processor")
            if w is not None and w.idle and p.counts["events"] >= events:
                time.sleep(0.05)
                if w.idle:
                    return
            if time.time() > deadline:
                raise AssertionError(f"listener not idle: {p.counts if p else None}")
            time.sleep(0.02)

    def stop(self):
        if self.loop is not None and self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(30)
        assert not self.thread.is_alive(), "listener did not stop"
        if self.error:
            raise self.error


@pytest.fixture
def tracked(session_factory):
    """A project whose source owns every DID of the recordings."""
    from calltracking import entities as svc

    with session_factory() as s, s.begin():
        p = svc.add_project(s, "acme", timezone="Europe/Moscow")
        src = svc.add_source(s, p, "Recorded", channel="ads")
        for did in DIDS:
            svc.add_number(s, p, did, source=src)
    return "acme"


@pytest.fixture
def asterisk():
    srv = FakeAsterisk(members=members(), chunk=701).start()
    yield srv
    srv.stop()


@pytest.fixture
def listener(db_url, session_factory, asterisk):
    made = []

    def start(wait=True, **extra):
        lst = Listener(make_config(db_url, asterisk.port, **extra), session_factory).start(wait)
        made.append(lst)
        return lst

    yield start
    for lst in made:
        if lst.thread.is_alive():
            lst.stop()


@pytest.fixture
def calls(run_cli):
    def get():
        return json.loads(run_cli("calls", "list", "--format", "json").output)

    return get


__all__ = ["FakeAsterisk", "load", "FIXTURES", "OWN", "event_count", "make_config", "Listener"]
