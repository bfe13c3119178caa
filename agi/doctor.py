"""`calltracking doctor` checks of the AGI part: the FastAGI port answers, the dialplan is included,
the call-row spool is usable and holds nothing a stopped server left."""
from __future__ import annotations

import os
import re
import socket

from calltracking.doctor import FAIL, OK, WARN, Result, check, reachable
from calltracking.hooks.spool import Spool

INCLUDE = "extensions_calltracking.conf"
_INCLUDE_RE = re.compile(r'^\s*#include\s+"?([^"\s;]*extensions_calltracking\.conf)"?', re.M)

PING_HEADER = ("agi_network: yes\nagi_network_script: ping\nagi_request: agi://doctor/ping\n"
               "agi_channel: doctor\nagi_uniqueid: doctor\n\n")


def fastagi_handshake(host: str, port: int, timeout: float = 2.0) -> str:
    """Talk AGI to the server like Asterisk would; returns the first command it sent."""
    with socket.create_connection((reachable(host), port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(PING_HEADER.encode())
        f = s.makefile("rb")
        line = f.readline(4096).decode("utf-8", "replace").strip()
        if not line:
            raise ConnectionError("the server closed the connection without a command")
        s.sendall(b"200 result=1\n")
        return line


@check("fastagi")
def _fastagi(ctx):
    host, port = ctx.config.agi.listen
    try:
        first = fastagi_handshake(host, port)
    except OSError as e:
        return [Result(FAIL, "fastagi", f"no FastAGI server answers on {host}:{port}: {e}",
                       "start it: `calltracking run` (or `calltracking agi`); check [agi] listen")]
    if first != 'SET VARIABLE CT_STATUS "ok"':
        return [Result(FAIL, "fastagi", f"{host}:{port} answered {first[:60]!r}, not calltracking's "
                       "FastAGI server", "another program uses the port; change [agi] listen "
                       "and the AGI() URLs in extensions_calltracking.conf")]
    return [Result(OK, "fastagi", f"FastAGI server answers on {host}:{port}")]


def include_status(config_dir: str) -> Result:
    conf = os.path.join(config_dir, "extensions.conf")
    ours = os.path.join(config_dir, INCLUDE)
    fix = f"add the line `#include {INCLUDE}` to {conf} (install.sh does) and run " \
          "`asterisk -rx 'dialplan reload'`"
    try:
        with open(conf, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except FileNotFoundError:
        return Result(WARN, "dialplan include", f"{conf} not found: is Asterisk installed here?",
                      "set [asterisk] config_dir to Asterisk's configuration directory")
    except OSError as e:
        return Result(FAIL, "dialplan include", f"cannot read {conf}: {e.strerror}",
                      "run doctor as a user that can read Asterisk's configuration")
    if not _INCLUDE_RE.search(text):
        return Result(FAIL, "dialplan include", f"{conf} does not include {INCLUDE}", fix)
    if not os.path.exists(ours):
        return Result(FAIL, "dialplan include", f"{conf} includes {INCLUDE} but {ours} is missing",
                      "copy dialplan/extensions_calltracking.conf there (run install.sh again)")
    return Result(OK, "dialplan include", f"{conf} includes {INCLUDE}")


@check("dialplan include")
def _dialplan(ctx):
    return [include_status(ctx.config.asterisk.config_dir)]


def spool_status(directory: str) -> Result:
    """``[agi] spool_dir``: set, writable, and no rows left by a server that stopped."""
    name = "agi spool"
    if not directory:
        return Result(WARN, name, "[agi] spool_dir is empty: a FastAGI server that is killed loses "
                      "the call rows it had not yet committed, and each hook waits for its commit",
                      "set [agi] spool_dir (default /var/lib/calltracking/agi-spool)")
    if not os.path.isdir(directory):
        return Result(OK, name, f"{directory} does not exist yet (the FastAGI server creates it)")
    if not os.access(directory, os.W_OK | os.X_OK):
        return Result(FAIL, name, f"{directory} is not writable by this user",
                      "make it the service user's (install.sh does: owner calltracking, mode 0700)")
    left = [(p, n) for p, n in Spool.left(directory) if n]
    if left:
        rows = sum(n for _, n in left)
        return Result(WARN, name, f"{rows} call row(s) left by a stopped FastAGI server in "
                      f"{len(left)} file(s) of {directory}, not yet in the database",
                      "start the FastAGI server (`calltracking run` or `calltracking agi`): it "
                      "writes them before it listens")
    return Result(OK, name, f"{directory}: nothing waiting to be written")


@check("agi spool")
def _spool(ctx):
    return [spool_status(ctx.config.agi.spool_dir)]
