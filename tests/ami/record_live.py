"""Records the fixtures of tests/ami/fixtures/recorded/ from a live Asterisk 22.

    python tests/ami/record_live.py RUN_DIR SCENARIO [SCENARIO...] [--port 5105] [--out DIR]

Asterisk runs with the configuration in tests/ami/fixtures/recorded/ (its ``manager.conf``
listens on ``--port``); RUN_DIR is its run tree (``log/queue_log``, ``log/cdr-csv/Master.csv``).
For each scenario one AMI session logged in with ``Events: on`` is saved byte for byte as
``SCENARIO.ami``; the scenario drives the PBX with actions (``DBPut``, ``Originate``, ``Atxfer``,
``BlindTransfer``) and waits until every channel it made has hung up. The queue_log and CDR lines
written meanwhile are appended to ``queue_log`` and ``cdr_master.csv`` (Asterisk's own figures:
the ground truth the replay tests compare with).
"""
from __future__ import annotations

import argparse
import itertools
import re
import socket
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "fixtures" / "recorded"


class Session:
    """A raw AMI session: every byte received is kept; events are parsed as they arrive."""

    def __init__(self, port: int, username: str = "ct", secret: str = "ctsecret"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.raw = bytearray()
        self.events: list[dict] = []
        self.responses: dict[str, dict] = {}
        self.cond = threading.Condition()
        self.ids = itertools.count(1)
        threading.Thread(target=self._read, daemon=True).start()
        r = self.action("Login", Username=username, Secret=secret, Events="on")
        assert r.get("Response") == "Success", r

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:          # closed by us
                data = b""
            if not data:
                return
            with self.cond:
                self.raw += data
                buf += data
                while b"\r\n\r\n" in buf:
                    frame, buf = buf.split(b"\r\n\r\n", 1)
                    msg: dict = {}
                    for line in frame.decode("utf-8", "replace").split("\r\n"):
                        k, sep, v = line.partition(": ")
                        if sep:
                            msg.setdefault(k, v)
                    if "Event" in msg:
                        self.events.append(msg)
                    elif "ActionID" in msg:
                        self.responses[msg["ActionID"]] = msg
                self.cond.notify_all()

    def action(self, name: str, **headers) -> dict:
        aid = f"rec{next(self.ids)}"
        lines = [f"Action: {name}", f"ActionID: {aid}"] + [f"{k}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        with self.cond:
            assert self.cond.wait_for(lambda: aid in self.responses, 10), f"no answer to {name}"
            return self.responses[aid]

    def wait(self, pred, timeout: float = 60.0, start: int = 0) -> dict:
        """The first event from index ``start`` on that satisfies ``pred``."""
        seen = start
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for ev in self.events[seen:]:
                    if pred(ev):
                        return ev
                seen = len(self.events)
                left = deadline - time.monotonic()
                assert left > 0, "timed out waiting for an event"
                self.cond.wait(left)

    def idle(self, timeout: float = 120.0) -> None:
        """Wait until every channel created in this session has hung up (and the CDRs are out)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.cond:
                made = {e["Uniqueid"] for e in self.events if e.get("Event") == "Newchannel"}
                gone = {e["Uniqueid"] for e in self.events if e.get("Event") == "Hangup"}
            if made and made <= gone:
                time.sleep(1.0)
                return
            time.sleep(0.2)
        raise AssertionError("channels still up")

    def db(self, **values) -> None:
        for key, value in values.items():
            family, _, k = key.partition("__")
            if value is None:
                self.action("DBDel", Family=family, Key=k)
            else:
                self.action("DBPut", Family=family, Key=k, Val=str(value))

    def chan(self, pattern: str, start: int = 0, event: str = "BridgeEnter") -> str:
        """Name of the first channel matching ``pattern`` seen in an ``event``."""
        rx = re.compile(pattern)
        ev = self.wait(lambda e: e.get("Event") == event and rx.fullmatch(e.get("Channel", "")), start=start)
        return ev["Channel"]


def caller(s: Session, did: str, number: str, stay: int = 40) -> None:
    s.action("Originate", Channel=f"Local/{did}@from-trunk", Context="caller", Exten="stay", Priority="1",
             CallerID=f'"Caller {number[-4:]}" <{number}>', Variable=f"CALLER_STAY={stay}", Timeout="30000",
             Async="true")


RESET = dict(phone__101="201", phone__102="202", fwd__201=None, fwd__202=None, scenario__dial=None,
             cust__busy=None, cust__ring=None, cust__talk=None, ring__201=2, talk__201=5, ring__202=2,
             talk__202=5)


# ------------------------------------------------------------------ scenarios
def queue_phone(s: Session) -> None:
    """sales: Anna's route (Local/101@operators) rings her phone 201, which answers after 2 s
    and talks 5 s; the route optimises away."""
    s.db(**RESET)
    caller(s, "74950001021", "79161110021")


def queue_forwarded(s: Session) -> None:
    """sales: Anna's phone 201 forwards to 202 (Boris's phone), which answers after 2 s, talks 5 s."""
    s.db(**dict(RESET, fwd__201="202"))
    caller(s, "74950001022", "79161110022")


def dial_phone(s: Session) -> None:
    """No queue: Dial(Local/102@operators) (no /n) rings Boris's phone 202: 2 s, talk 4 s."""
    s.db(**dict(RESET, scenario__dial="Local/102@operators", talk__202=4))
    caller(s, "74950001023", "79161110023")


def attended(s: Session) -> None:
    """Anna (phone 201) talks 3 s, attended-transfers (Atxfer) to route 102: Boris's phone 202
    rings 2 s, they consult ~3 s, Anna's phone hangs up (the transfer completes), Boris talks on."""
    s.db(**dict(RESET, talk__201=8, talk__202=9))
    mark = len(s.events)
    caller(s, "74950001024", "79161110024")
    phone = s.chan(r"Local/201@phones-[0-9a-f]+;1", mark)
    time.sleep(3.0)
    r = s.action("Atxfer", Channel=phone, Exten="102", Context="operators")
    assert r.get("Response") == "Success", r


def blind(s: Session) -> None:
    """Anna (phone 201) talks 3 s, blind-transfers (BlindTransfer) to route 102: Boris's phone 202
    rings 2 s and talks 4 s."""
    s.db(**dict(RESET, talk__201=30, talk__202=4))
    mark = len(s.events)
    caller(s, "74950001025", "79161110025")
    phone = s.chan(r"Local/201@phones-[0-9a-f]+;1", mark)
    time.sleep(3.0)
    r = s.action("BlindTransfer", Channel=phone, Exten="102", Context="operators")
    assert r.get("Response") == "Success", r


def _click(s: Session, channel: str, number: str, context: str, variables: str = "") -> None:
    fields = dict(Channel=channel, Context=context, Exten=number, Priority="1",
                  CallerID='"Callback" <74950001021>', Timeout="30000", Async="true")
    if variables:
        fields["Variable"] = variables
    s.action("Originate", **fields)


def click_busy(s: Session) -> None:
    """Our click-to-call as the web UI sends it: Originate of Anna's interface (her route
    Local/101@operators, which rings her phone 201) into calltracking-callback with
    CT_CALLBACK_FOR; the phone answers after 2 s; the customer is busy."""
    s.db(**dict(RESET, cust__busy=1, talk__201=20))
    _click(s, "Local/101@operators", "89161234567", "calltracking-callback", "CT_CALLBACK_FOR=42")


def click_answered(s: Session) -> None:
    """As click_busy, but the customer rings 3 s, answers and talks 10 s, then hangs up."""
    s.db(**dict(RESET, talk__201=40, cust__ring=3, cust__talk=10))
    _click(s, "Local/101@operators", "89161234568", "calltracking-callback", "CT_CALLBACK_FOR=43")


def click_crm(s: Session) -> None:
    """Another program's click-to-dial: Originate of Anna's phone Local/201@phones straight into
    from-internal (no variable); the customer answers after 3 s and talks 6 s."""
    s.db(**dict(RESET, talk__201=40, cust__ring=3, cust__talk=6))
    _click(s, "Local/201@phones", "89161234569", "from-internal")


SCENARIOS = {f.__name__: f for f in (queue_phone, queue_forwarded, dial_phone, attended, blind, click_busy,
                                     click_answered, click_crm)}


def _tail(path: Path, start: int) -> bytes:
    return path.read_bytes()[start:] if path.exists() else b""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("scenario", nargs="+", choices=sorted(SCENARIOS))
    ap.add_argument("--port", type=int, default=5105)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--name", default="", help="file name instead of the scenario's (one scenario)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    qlog, cdr = args.run_dir / "log" / "queue_log", args.run_dir / "log" / "cdr-csv" / "Master.csv"
    for name in args.scenario:
        q0, c0 = (qlog.stat().st_size if qlog.exists() else 0), (cdr.stat().st_size if cdr.exists() else 0)
        s = Session(args.port)
        SCENARIOS[name](s)
        s.idle()
        s.sock.close()
        fname = args.name or name
        (args.out / f"{fname}.ami").write_bytes(bytes(s.raw))
        q = _tail(qlog, q0)
        with open(args.out / "queue_log", "ab") as f:
            f.write(q)
        with open(args.out / "cdr_master.csv", "ab") as f:
            f.write(_tail(cdr, c0))
        print(f"{fname}: {len(s.events)} events, {len(q.splitlines())} queue_log lines")


if __name__ == "__main__":
    main()
