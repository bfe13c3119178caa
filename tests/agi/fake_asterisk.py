"""An Asterisk-like FastAGI client and a FastAGI server on a real loopback socket (test helpers)."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import threading
from pathlib import Path

from agi.server import AgiServer
from calltracking.config import load_config

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "asterisk-22"
RECORDED = json.loads((FIXTURES / "fastagi_route_session.json").read_text())[0]
HEADERS = RECORDED["asterisk_sent_headers"]


def make_config(db_url: str, **settings):
    overrides = {"database.url": db_url, "agi.listen": "127.0.0.1:0",
                 "general.default_queue": "general-q", "general.pbx_id": "pbx1",
                 "general.default_region": "RU",
                 # functional tests must not flake on a loaded machine; budget tests set 200 ms
                 "agi.timeout_ms": "3000"}
    overrides.update({k.replace("__", "."): str(v) for k, v in settings.items()})
    return load_config("/nonexistent/calltracking.ini", env={}, overrides=overrides, require_file=False)


def headers(hook="route", args=("74950001001", "1795391970.0"), **fields) -> list[str]:
    """The header Asterisk 22 sent (fixture), with another hook, arguments or fields."""
    out = []
    for line in HEADERS:
        key = line.split(":", 1)[0]
        if key.startswith("agi_arg_"):
            continue
        if key == "agi_network_script":
            line = f"agi_network_script: {hook}"
        elif key == "agi_request":
            line = f"agi_request: agi://127.0.0.1:4573/{hook}"
        elif key in fields:
            line = f"{key}: {fields[key]}"
        out.append(line)
    out += [f"agi_arg_{i}: {a}" for i, a in enumerate(args, 1)]
    return out


class CallResult:
    def __init__(self):
        self.commands: list[str] = []
        self.vars: dict[str, str] = {}
        self.closed = False


def unquote(arg: str) -> str:
    """What res_agi's parser makes of a quoted argument."""
    assert arg.startswith('"') and arg.endswith('"'), arg
    out, esc = [], False
    for ch in arg[1:-1]:
        if esc:
            out.append(ch)
            esc = False
        elif ch == "\\":
            esc = True
        else:
            assert ch != '"', f"unescaped quote in {arg!r}"
            out.append(ch)
    return "".join(out)


def _answer(cmd: str, res: CallResult, digits: list[str]) -> str:
    res.commands.append(cmd)
    if cmd.startswith("SET VARIABLE "):
        name, _, value = cmd[len("SET VARIABLE "):].partition(" ")
        res.vars[name] = unquote(value)
        return "200 result=1"
    if cmd.startswith("GET DATA "):
        typed = digits.pop(0) if digits else ""
        return f"200 result={typed}" + ("" if typed else " (timeout)")
    if cmd.startswith("STREAM FILE"):
        return "200 result=0 endpos=1000"
    return "200 result=1"


def call(port: int, lines: list[str], digits=(), timeout=10.0) -> CallResult:
    """One FastAGI request the way Asterisk makes it (blocking socket)."""
    res, digits = CallResult(), list(digits)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(("\n".join(lines) + "\n\n").encode())
        f = s.makefile("rb")
        while True:
            raw = f.readline()
            if not raw:
                res.closed = True
                return res
            s.sendall((_answer(raw.decode().rstrip("\n"), res, digits) + "\n").encode())


async def acall(port: int, lines: list[str], digits=()) -> CallResult:
    res, digits = CallResult(), list(digits)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(("\n".join(lines) + "\n\n").encode())
    while True:
        raw = await reader.readline()
        if not raw:
            break
        writer.write((_answer(raw.decode().rstrip("\n"), res, digits) + "\n").encode())
    writer.close()
    res.closed = True
    return res


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
    def __init__(self, when: dt.datetime):
        self.now = when

    def __call__(self):
        return self.now
