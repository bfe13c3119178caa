"""Records the fixtures of tests/ami/fixtures/recorded/ from a live Asterisk 22.

    PYTHONPATH=tests python tests/ami/record_live.py RUN_DIR SCENARIO [SCENARIO...] [--port 5105] [--out DIR]

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
import re
import time
from pathlib import Path

from support.ami_client import AmiClient
from support.fixtures import RECORDED


def chan(s: AmiClient, pattern: str, start: int = 0, event: str = "BridgeEnter") -> str:
    """Name of the first channel matching ``pattern`` seen in an ``event`` (from event ``start``)."""
    rx = re.compile(pattern)
    ev = s.wait_event(lambda e: e.get("Event") == event and rx.fullmatch(e.get("Channel", "")), timeout=60,
                      since=start)
    return ev["Channel"]


def caller(s: AmiClient, did: str, number: str, stay: int = 40) -> None:
    s.action("Originate", Channel=f"Local/{did}@from-trunk", Context="caller", Exten="stay", Priority="1",
             CallerID=f'"Caller {number[-4:]}" <{number}>', Variable=f"CALLER_STAY={stay}", Timeout="30000",
             Async="true")


RESET = dict(phone__101="201", phone__102="202", fwd__201=None, fwd__202=None, scenario__dial=None,
             cust__busy=None, cust__ring=None, cust__talk=None, ring__201=2, talk__201=5, ring__202=2,
             talk__202=5)


# ------------------------------------------------------------------ scenarios
def queue_phone(s: AmiClient) -> None:
    """sales: Anna's route (Local/101@operators) rings her phone 201, which answers after 2 s
    and talks 5 s; the route optimises away."""
    s.db_set(**RESET)
    caller(s, "74950001021", "79161110021")


def queue_forwarded(s: AmiClient) -> None:
    """sales: Anna's phone 201 forwards to 202 (Boris's phone), which answers after 2 s, talks 5 s."""
    s.db_set(**dict(RESET, fwd__201="202"))
    caller(s, "74950001022", "79161110022")


def dial_phone(s: AmiClient) -> None:
    """No queue: Dial(Local/102@operators) (no /n) rings Boris's phone 202: 2 s, talk 4 s."""
    s.db_set(**dict(RESET, scenario__dial="Local/102@operators", talk__202=4))
    caller(s, "74950001023", "79161110023")


def attended(s: AmiClient) -> None:
    """Anna (phone 201) talks 3 s, attended-transfers (Atxfer) to route 102: Boris's phone 202
    rings 2 s, they consult ~3 s, Anna's phone hangs up (the transfer completes), Boris talks on."""
    s.db_set(**dict(RESET, talk__201=8, talk__202=9))
    mark = len(s.events)
    caller(s, "74950001024", "79161110024")
    phone = chan(s, r"Local/201@phones-[0-9a-f]+;1", mark)
    time.sleep(3.0)
    r = s.action("Atxfer", Channel=phone, Exten="102", Context="operators")
    assert r.get("Response") == "Success", r


def blind(s: AmiClient) -> None:
    """Anna (phone 201) talks 3 s, blind-transfers (BlindTransfer) to route 102: Boris's phone 202
    rings 2 s and talks 4 s."""
    s.db_set(**dict(RESET, talk__201=30, talk__202=4))
    mark = len(s.events)
    caller(s, "74950001025", "79161110025")
    phone = chan(s, r"Local/201@phones-[0-9a-f]+;1", mark)
    time.sleep(3.0)
    r = s.action("BlindTransfer", Channel=phone, Exten="102", Context="operators")
    assert r.get("Response") == "Success", r


def _click(s: AmiClient, channel: str, number: str, context: str, variables: str = "") -> None:
    fields = dict(Channel=channel, Context=context, Exten=number, Priority="1",
                  CallerID='"Callback" <74950001021>', Timeout="30000", Async="true")
    if variables:
        fields["Variable"] = variables
    s.action("Originate", **fields)


def click_busy(s: AmiClient) -> None:
    """Our click-to-call as the web UI sends it: Originate of Anna's interface (her route
    Local/101@operators, which rings her phone 201) into calltracking-callback with
    CT_CALLBACK_FOR; the phone answers after 2 s; the customer is busy."""
    s.db_set(**dict(RESET, cust__busy=1, talk__201=20))
    _click(s, "Local/101@operators", "89161234567", "calltracking-callback", "CT_CALLBACK_FOR=42")


def click_answered(s: AmiClient) -> None:
    """As click_busy, but the customer rings 3 s, answers and talks 10 s, then hangs up."""
    s.db_set(**dict(RESET, talk__201=40, cust__ring=3, cust__talk=10))
    _click(s, "Local/101@operators", "89161234568", "calltracking-callback", "CT_CALLBACK_FOR=43")


def click_crm(s: AmiClient) -> None:
    """Another program's click-to-dial: Originate of Anna's phone Local/201@phones straight into
    from-internal (no variable); the customer answers after 3 s and talks 6 s."""
    s.db_set(**dict(RESET, talk__201=40, cust__ring=3, cust__talk=6))
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
    ap.add_argument("--out", type=Path, default=RECORDED)
    ap.add_argument("--name", default="", help="file name instead of the scenario's (one scenario)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    qlog, cdr = args.run_dir / "log" / "queue_log", args.run_dir / "log" / "cdr-csv" / "Master.csv"
    for name in args.scenario:
        q0, c0 = (qlog.stat().st_size if qlog.exists() else 0), (cdr.stat().st_size if cdr.exists() else 0)
        s = AmiClient(args.port, "ct", "ctsecret")
        SCENARIOS[name](s)
        s.wait_hungup()
        s.close(logoff=False)
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
