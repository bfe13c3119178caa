"""The real AMI listener (``ami_listener.run_ami``) in a thread, as ``calltracking run`` runs it."""
from __future__ import annotations

import asyncio
import threading
import time

from ami_listener import run_ami
from support.polling import poll


class Listener:
    """``run_ami`` on its own event loop in a thread: :meth:`start` (waits until it is logged in
    and synchronised), :meth:`wait_idle` (every event read is written), :meth:`stop`. ``stats``
    is the dict the listener keeps its writer, processor and counters in."""

    def __init__(self, config, session_factory, run=asyncio.run):
        self.config, self.factory = config, session_factory
        self.run = run              # the event loop's runner (``uvloop.run``: as ``calltracking run``)
        self.stats: dict = {}
        self.loop = None
        self.stop_event = None
        self.ready = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self):
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
            self.run(main())
        except BaseException as e:  # surfaced by start() and stop()
            self.error = e
            self.ready.set()

    def start(self, wait=True, timeout: float = 20.0):
        self.thread.start()
        if wait:
            assert self.ready.wait(timeout), "listener not ready"
            if self.error:
                raise self.error
        return self

    def wait_idle(self, events: int = 0, timeout: float = 30.0):
        """Until the listener has processed ``events`` events and its writer has nothing pending."""
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

    def wait_resyncs(self, n: int, timeout: float = 15.0):
        """Until the reconciliation of the ``n``-th login has been applied. (Logged in is not
        enough: a script emitted before the resync's answers were given runs ahead of them.)"""
        poll(lambda: self.error is not None or self.stats.get("resyncs", 0) >= n, timeout,
             what=f"the listener's resync number {n}", interval=0.01)
        if self.error:
            raise self.error

    def stop(self):
        if self.loop is not None and self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(30)
        assert not self.thread.is_alive(), "listener did not stop"
        if self.error:
            raise self.error
