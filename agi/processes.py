"""Extra FastAGI server processes sharing the port (``[agi] processes``, Linux SO_REUSEPORT).

One Python process runs its hooks on one core at a time (the interpreter lock). With
``processes = N`` the port is served by N processes that each bind it with
SO_REUSEPORT; the kernel spreads Asterisk's connections over them. The first server
runs where it always does (``calltracking agi`` or ``calltracking run``); this module
starts the N - 1 others as ``calltracking agi --reuse-port`` children with the same
configuration, restarts one that dies (with back-off), and stops them with SIGTERM.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
from typing import Optional

log = logging.getLogger("calltracking.agi")


def child_command(config_path: Optional[str], overrides: dict, workers: int,
                  listen: Optional[str] = None) -> list[str]:
    cmd = [sys.executable, "-c", "from calltracking.cli import main; main()"]
    if config_path:
        cmd += ["--config", config_path]
    for key, value in (overrides or {}).items():
        cmd += ["--set", f"{key}={value}"]
    cmd += ["agi", "--reuse-port", "--processes", "1", "--workers", str(workers)]
    if listen:
        cmd += ["--listen", listen]
    return cmd


class Children:
    """``count`` child FastAGI processes, kept running until :meth:`stop`."""

    def __init__(self, command: list[str], count: int):
        self.command, self.count = command, count
        self.procs: list[Optional[subprocess.Popen]] = [None] * count
        self.restarts = 0
        self._stopping = False

    def _spawn(self, i: int) -> None:
        self.procs[i] = subprocess.Popen(self.command, stdin=subprocess.DEVNULL)
        log.info("FastAGI process %d started (pid %d)", i + 2, self.procs[i].pid)

    async def run(self, stop: asyncio.Event) -> None:
        """Start the children and keep them running until ``stop`` is set."""
        for i in range(self.count):
            self._spawn(i)
        delay = [1.0] * self.count
        try:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), 0.5)
                except asyncio.TimeoutError:
                    pass
                for i, p in enumerate(self.procs):
                    if p is not None and p.poll() is not None and not stop.is_set():
                        log.error("FastAGI process %d (pid %d) exited with %s; restarting in %.0f s",
                                  i + 2, p.pid, p.returncode, delay[i])
                        self.procs[i] = None
                        asyncio.get_running_loop().call_later(delay[i], self._respawn, i, stop)
                        delay[i] = min(delay[i] * 2, 30.0)
                        self.restarts += 1
        finally:
            await asyncio.get_running_loop().run_in_executor(None, self.stop)

    def _respawn(self, i: int, stop: asyncio.Event) -> None:
        if not stop.is_set() and not self._stopping and self.procs[i] is None:
            self._spawn(i)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        for p in self.procs:
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            if p is None:
                continue
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("FastAGI process %d did not stop; killing it", p.pid)
                p.kill()
                p.wait(2)
