"""The FastAGI server under test, in a thread: :class:`ServerThread` (an ``AgiServer`` with the
test's clock and catalogue) and :class:`Agi` (``run_agi``, the production entry point)."""
from __future__ import annotations

import asyncio
import datetime as dt
import threading

from agi.server import AgiServer, run_agi
from support import fastagi_client
from support.config import make_config
from support.net import free_port


class ServerThread:
    """An AgiServer on its own event loop in a thread (as `calltracking agi` runs it)."""

    def __init__(self, config, sessionmaker, **kwargs):
        self.loop = asyncio.new_event_loop()
        self.server = AgiServer(config, sessionmaker, **kwargs)
        started = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.server.start())
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert started.wait(10)
        self.port = self.server.port

    def stop(self):
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class Clock:
    """A clock the test sets (``clock.now = ...``); the server asks it for the time."""

    def __init__(self, when: dt.datetime):
        self.now = when

    def __call__(self):
        return self.now


class Agi:
    """``run_agi`` (as ``calltracking agi`` runs it) on a free port, its own event loop in a thread."""

    def __init__(self, db_url, factory):
        self.port = free_port()
        cfg = make_config(db_url, agi__listen=f"127.0.0.1:{self.port}")
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
        """A call as Asterisk 22 makes it (the recorded header): the variables the hook set."""
        return fastagi_client.call(self.port, fastagi_client.headers(hook, args), digits).vars
