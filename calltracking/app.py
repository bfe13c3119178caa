"""`calltracking run`: every service in one supervised process.

The FastAGI server and the AMI listener run as asyncio tasks on one loop, the
scheduler (APScheduler) in its own thread, the web UI in a waitress server
thread and, next to it, the public DNI endpoints on an event loop thread of their
own (``[dni] listen``; a failure to start it is logged: the web port serves them
too). A component that crashes is logged and restarted with back-off; the
others keep running. SIGTERM/SIGINT stop everything within ``STOP_TIMEOUT``
seconds; the AMI listener drains its queue of events before it returns.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import threading
from dataclasses import dataclass, field
from typing import Awaitable, Callable

log = logging.getLogger("calltracking.run")
STOP_TIMEOUT = 5.0
COMPONENTS = ("agi", "ami", "scheduler", "web")


@dataclass
class Supervisor:
    config: object
    sessionmaker: object
    enabled: tuple = COMPONENTS
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    ready: dict = field(default_factory=dict)
    restarts: dict = field(default_factory=dict)
    _web_server: object = None
    _web_thread: threading.Thread | None = None
    _dni_server: object = None
    _scheduler: object = None
    config_path: str | None = None          # for the extra FastAGI processes ([agi] processes)
    overrides: dict = field(default_factory=dict)

    # --- asyncio components -------------------------------------------------
    async def _supervise(self, name: str, factory: Callable[[asyncio.Event], Awaitable[None]]):
        delay = 1.0
        while not self.stop.is_set():
            ready = self.ready.setdefault(name, asyncio.Event())
            try:
                await factory(ready)
                return  # returned because stop was set
            except asyncio.CancelledError:
                raise
            except Exception:
                self.restarts[name] = self.restarts.get(name, 0) + 1
                log.exception("%s crashed; restarting in %.0f s", name, delay)
                try:
                    await asyncio.wait_for(self.stop.wait(), delay)
                except asyncio.TimeoutError:
                    pass
                delay = min(delay * 2, 30.0)

    def _agi(self, ready):
        from agi.server import run_agi

        return run_agi(self.config, self.sessionmaker, self.stop, ready,
                       reuse_port=self.config.agi.processes > 1)

    async def _agi_children(self, ready):
        """``[agi] processes`` > 1: the other FastAGI processes on the same port."""
        from agi.processes import Children, child_command

        ready.set()
        await Children(child_command(self.config_path, self.overrides, 4),
                       self.config.agi.processes - 1).run(self.stop)

    def _ami(self, ready):
        from ami_listener import run_ami

        return run_ami(self.config, self.sessionmaker, self.stop, ready)

    # --- thread components ----------------------------------------------------
    def _start_scheduler(self):
        from calltracking.jobs.scheduler import start_scheduler

        self._scheduler = start_scheduler(self.config, self.sessionmaker)

    def _start_web(self):
        from webui.server import make_server

        self._web_server = make_server(self.config, self.sessionmaker)
        self._web_thread = threading.Thread(target=self._web_server.run, name="web", daemon=True)
        self._web_thread.start()
        from webui.dni_server import start_next_to

        self._dni_server = start_next_to(self._web_server, self.config, self.sessionmaker)

    def _stop_threads(self):
        if self._dni_server is not None:
            try:
                self._dni_server.close()
            except Exception:
                log.exception("stopping the DNI server failed")
        if self._web_server is not None:
            try:
                self._web_server.close()
            except Exception:
                log.exception("stopping the web server failed")
        if self._scheduler is not None:
            try:
                self._scheduler.shutdown(wait=False)
            except Exception:
                log.exception("stopping the scheduler failed")
        if self._web_thread is not None:
            self._web_thread.join(STOP_TIMEOUT)

    async def run(self, install_signals: bool = True):
        loop = asyncio.get_running_loop()
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop.set)
        tasks = []
        if "agi" in self.enabled:
            tasks.append(asyncio.create_task(self._supervise("agi", self._agi), name="agi"))
            if self.config.agi.processes > 1:
                tasks.append(asyncio.create_task(self._supervise("agi-processes", self._agi_children),
                                                 name="agi-processes"))
        if "ami" in self.enabled:
            tasks.append(asyncio.create_task(self._supervise("ami", self._ami), name="ami"))
        try:
            if "scheduler" in self.enabled:
                self._start_scheduler()
            if "web" in self.enabled:
                self._start_web()
            log.info("calltracking running: %s", ", ".join(self.enabled))
            await self.stop.wait()
            log.info("stopping")
        finally:
            self.stop.set()
            await asyncio.get_running_loop().run_in_executor(None, self._stop_threads)
            if tasks:
                done, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
                for t in pending:
                    log.warning("%s did not stop in %.0f s; cancelling", t.get_name(), STOP_TIMEOUT)
                    t.cancel()
                if pending:
                    await asyncio.wait(pending, timeout=1.0)
            if install_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
        log.info("stopped")


def enabled_components(config, only: tuple[str, ...] = (), skip: tuple[str, ...] = ()) -> tuple:
    names = only or COMPONENTS
    out = [n for n in names if n not in skip]
    if "ami" in out and not only and not config.ami.enabled:
        out.remove("ami")
    return tuple(out)


def check_startup(config, enabled) -> None:
    """Refuse to start with missing secrets (raises ConfigError)."""
    if "web" in enabled:
        config.require_web_secret()
    if "ami" in enabled:
        config.require_ami_secret()
