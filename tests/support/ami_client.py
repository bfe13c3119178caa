"""A small synchronous AMI client for driving a real Asterisk in tests.

Not the product's listener: the tests' own hands on the PBX (``Originate``,
``DBPut``, ``Atxfer``, ``BlindTransfer``, ``Hangup``…) and their own eyes (every
event, kept in order, and the raw bytes exactly as received, so a live run can be
saved as a recorded stream under ``tests/``). A reader thread parses frames; an
action waits for the response that carries its ``ActionID``.
"""
from __future__ import annotations

import itertools
import socket
import threading
import time
from typing import Callable, Optional


class AmiError(RuntimeError):
    pass


class AmiClient:
    def __init__(self, port: int, username: str, secret: str, host: str = "127.0.0.1",
                 events: bool = True, timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(None)
        self.raw = bytearray()                # everything received, CRLF framing kept
        self.events: list[dict] = []
        self._responses: dict[str, dict] = {}
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._closed = False
        self._reader = threading.Thread(target=self._read, name="ami-test-client", daemon=True)
        self._reader.start()
        r = self.action("Login", Username=username, Secret=secret, Events="on" if events else "off")
        if r.get("Response") != "Success":
            raise AmiError(f"AMI login as {username!r} failed: {r.get('Message')}")

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                with self._cond:
                    self._closed = True
                    self._cond.notify_all()
                return
            with self._cond:
                self.raw += data
            buf += data
            while b"\r\n\r\n" in buf:
                frame, buf = buf.split(b"\r\n\r\n", 1)
                msg: dict = {}
                for line in frame.decode("utf-8", "replace").split("\r\n"):
                    k, sep, v = line.partition(":")
                    if sep:
                        msg.setdefault(k.strip(), v.strip())
                with self._cond:
                    if "Event" in msg:         # OriginateResponse has a Response header too
                        self.events.append(msg)
                    elif "Response" in msg and "ActionID" in msg:
                        self._responses[msg["ActionID"]] = msg
                    self._cond.notify_all()

    def action(self, name: str, timeout: float = 10.0, **headers) -> dict:
        """Send one action; return its response frame (``Response: Success|Error``)."""
        aid = f"t{next(self._ids)}"
        lines = [f"Action: {name}", f"ActionID: {aid}"]
        for k, v in headers.items():
            for item in (v if isinstance(v, (list, tuple)) else [v]):
                lines.append(f"{k}: {item}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        deadline = time.monotonic() + timeout
        with self._cond:
            while aid not in self._responses:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise AmiError(f"no response to {name} within {timeout} s")
                self._cond.wait(left)
            return self._responses.pop(aid)

    def wait_event(self, match: Callable[[dict], bool], timeout: float = 30.0,
                   since: int = 0) -> dict:
        """The first event (from index ``since``) for which ``match`` is true."""
        deadline = time.monotonic() + timeout
        i = since
        with self._cond:
            while True:
                while i < len(self.events):
                    if match(self.events[i]):
                        return self.events[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise AmiError("expected event did not arrive")
                self._cond.wait(left)

    def find(self, match: Callable[[dict], bool]) -> list[dict]:
        with self._cond:
            return [e for e in self.events if match(e)]

    def db_put(self, family: str, key: str, value) -> None:
        r = self.action("DBPut", Family=family, Key=key, Val=str(value))
        if r.get("Response") != "Success":
            raise AmiError(f"DBPut {family}/{key}: {r.get('Message')}")

    def close(self) -> None:
        try:
            self.action("Logoff", timeout=2)
        except (AmiError, OSError):
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def channel_of(events: list[dict], linkedid: str, prefix: str) -> Optional[str]:
    """The name of the first channel of ``linkedid`` whose name starts with ``prefix``."""
    for e in events:
        if e.get("Event") == "Newchannel" and e.get("Linkedid") == linkedid \
                and e.get("Channel", "").startswith(prefix):
            return e["Channel"]
    return None
