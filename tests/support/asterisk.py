"""A private, real Asterisk for tests: its own run tree, config and ports.

The Asterisk binary comes from ``ASTERISK_PREFIX`` (default ``/opt/asterisk``,
the prefix Asterisk was configured with). Nothing here touches that prefix: every
writable directory (``etc var spool run log agi-bin``) lives under the run
directory given to :class:`Asterisk`. The base configuration beside this file
(``asterisk_etc/``: directories, modules, logger with queue_log, CDR to CSV and
to AMI, CEL) is copied first, then the test's own files (``extensions.conf``,
``queues.conf``, ``manager.conf`` …) over it.

Several instances can run at once when each has its own AMI port (``manager.conf``)
and FastAGI port (in its dialplan). The paths of Asterisk's own ground truth are
properties: :attr:`Asterisk.queue_log`, :attr:`Asterisk.cdr_csv`,
:attr:`Asterisk.monitor_dir`.

    ast = Asterisk(tmp / "ast")
    ast.start({"extensions.conf": ..., "manager.conf": manager_conf(5038, {...})})
    ast.cli("queue show")
    ast.stop()
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

BASE_ETC = Path(__file__).resolve().parent / "asterisk_etc"


def prefix() -> Path:
    return Path(os.environ.get("ASTERISK_PREFIX", "/opt/asterisk"))


def binary() -> Path:
    return prefix() / "sbin" / "asterisk"


def missing_reason() -> str:
    """Why no real Asterisk can run here ('' when one can)."""
    if not os.access(binary(), os.X_OK):
        return (f"no Asterisk at {binary()} (set ASTERISK_PREFIX to the prefix of an "
                f"Asterisk 22 build; CI installs one when it can)")
    return ""


def manager_conf(port: int, users: dict[str, str], *, timestampevents: bool = True) -> str:
    """``manager.conf`` on loopback ``port``; ``users`` maps a name to its section body."""
    out = ["[general]", "enabled = yes", f"port = {port}", "bindaddr = 127.0.0.1",
           f"timestampevents = {'yes' if timestampevents else 'no'}", ""]
    for name, body in users.items():
        out += [f"[{name}]", body.strip(), ""]
    return "\n".join(out)


class Asterisk:
    """One private instance: :meth:`start`, :meth:`cli`, :meth:`restart`, :meth:`stop`."""

    def __init__(self, run_dir: Path | str):
        self.run = Path(run_dir).resolve()
        self.conf = self.run / "etc" / "asterisk.conf"
        self.pidfile = self.run / "run" / "asterisk.pid"

    # --- ground truth written by Asterisk itself -------------------------------------
    @property
    def queue_log(self) -> Path:
        return self.run / "log" / "queue_log"

    @property
    def cdr_csv(self) -> Path:
        return self.run / "log" / "cdr-csv" / "Master.csv"

    @property
    def monitor_dir(self) -> Path:
        return self.run / "spool" / "monitor"

    @property
    def messages(self) -> Path:
        return self.run / "log" / "messages.log"

    # --- life cycle -------------------------------------------------------------------
    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def start(self, files: dict[str, str], timeout: float = 30.0) -> "Asterisk":
        """Write the run tree (base config, then ``files``) and start; wait until fully booted."""
        reason = missing_reason()
        if reason:
            raise RuntimeError(reason)
        for d in ("etc", "var", "spool/monitor", "run", "agi-bin", "log/cdr-csv"):
            (self.run / d).mkdir(parents=True, exist_ok=True)
        for f in BASE_ETC.glob("*.conf"):
            shutil.copy(f, self.run / "etc" / f.name)
        for name, text in files.items():
            (self.run / "etc" / name).write_text(text)
        self.conf.write_text(self.conf.read_text().replace("@RUN@", str(self.run))
                             .replace("@PREFIX@", str(prefix())))
        subprocess.run([str(binary()), "-C", str(self.conf)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_booted(timeout)
        return self

    def wait_booted(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = subprocess.run([str(binary()), "-C", str(self.conf), "-rx", "core waitfullybooted"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if r.returncode == 0 and "fully booted" in r.stdout.lower():
                return
            time.sleep(0.1)
        raise RuntimeError(f"Asterisk did not boot within {timeout:.0f} s; see {self.messages}")

    def cli(self, command: str, timeout: float = 15.0) -> str:
        """Run one CLI command on the running instance (``asterisk -rx``); return its output."""
        r = subprocess.run([str(binary()), "-C", str(self.conf), "-rx", command],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"asterisk -rx {command!r}: {r.stdout.strip()}")
        return r.stdout

    def restart(self, timeout: float = 30.0) -> None:
        """``core restart now``: every call is dropped, the process re-executes itself."""
        old = self.pid()
        try:
            self.cli("core restart now")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass        # the console connection may be cut by the restart itself
        deadline = time.monotonic() + timeout
        time.sleep(0.5)
        while time.monotonic() < deadline:
            try:
                self.wait_booted(1.0)
                if self.pid() is not None:
                    return
            except RuntimeError:
                pass
        raise RuntimeError(f"Asterisk (pid {old}) did not come back after core restart")

    def stop(self, timeout: float = 10.0) -> None:
        pid = self.pid()
        if pid is None:
            return
        try:
            self.cli("core stop now", timeout=timeout)
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                return
            time.sleep(0.1)
        os.kill(pid, 9)
