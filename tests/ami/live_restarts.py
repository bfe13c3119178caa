"""The live check of restarts: the real listener against a real Asterisk 22, stopped, killed,
cut off or outlived by an Asterisk restart mid-call, and its records compared with Asterisk's own.

    PYTHONPATH=tests python tests/ami/live_restarts.py setup CONF_DIR [--agi-port 4573] [--ami-port 5038]
    (start Asterisk with CONF_DIR, e.g. run.sh start RUN_DIR CONF_DIR)
    PYTHONPATH=tests python tests/ami/live_restarts.py run RUN_DIR [SCENARIO...] [--ami-port 5038] [--agi-port 4573]
                                      [--cli 'run.sh cli RUN_DIR'] [--work DIR] [--out DIR]

``setup`` writes Asterisk's configuration (``fixtures/restarts/*.conf`` and the project's own
``dialplan/extensions_calltracking.conf`` with the FastAGI address set). ``run`` makes a fresh
SQLite database (projects ``acme``, ``shop`` and ``night`` whose default queues are ``support``,
``sales`` and ``nightshift``, tracked DIDs in :data:`PROJECTS`), starts ``calltracking agi`` and
drives each scenario: a caller is originated into the trunk context (``Local/<DID>@trunk`` ->
``Goto(calltracking-inbound)``), the FastAGI route hook sends it to its project's queue, whose
members are Local channels into ``[operators]`` (Anna 101, Boris 102, Vera 103 answer after
``DB(ring/EXT)`` s and talk ``DB(talk/EXT)`` s, set with ``DBPut``; Ghost 199 never answers), and
the listener (``calltracking ami``, a process of its own, ``[ami] queue_log`` = RUN_DIR's) is
killed, stopped, cut off or started late as the scenario's docstring says. The SIGSTOP/``ss -K``
of ``connection_lost_answered`` needs root (CAP_NET_ADMIN).

For each scenario a recorder session (user ``ct``, ``Events: on``) keeps every byte Asterisk sent
(``SCENARIO.ami``) with markers: the answers to its own ``Ping`` with ActionID ``h6-mark-<what>``
(kill, restart, cut, ...) and, as soon as the restarted listener logged in, its own ``Ping``,
``QueueStatus`` and ``CoreShowChannels`` (ActionIDs ``h6-sync-<n>-...``): what the listener was
told at that moment. The queue_log lines and CDRs (Master.csv) written meanwhile are saved as
``SCENARIO.queue_log`` and ``SCENARIO.cdr.csv``, and ``SCENARIO.json`` holds the listener's
records (``calls list --format json``) and the timeline. The report compares each call with
queue_log (answer second, wait, talk) and with the stream interpreted without interruption.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from support.ami_client import AmiClient, AmiError
from support.ami_restarts import Recording
from support.fixtures import RESTARTS, ROOT

CT = [sys.executable, "-c", "from calltracking.cli import main; main()"]
#: Tracked DIDs by project; each project's default queue takes its calls (the AGI route hook).
PROJECTS = {"acme": ("support", ["74950001001", "74950001004"]),
            "shop": ("sales", ["74950001002", "74950001005", "74950001006"]),
            "night": ("nightshift", ["74950001003"])}
SUPPORT, SALES, NIGHT = (PROJECTS[p][1] for p in ("acme", "shop", "night"))


# ------------------------------------------------------------------ the recorder's markers
def mark(rec: AmiClient, what: str) -> float:
    """A marker in the recording (the answer to Ping ``h6-mark-<what>``); Asterisk's time at it."""
    return float(rec.action("Ping", action_id=f"h6-mark-{what}")["Timestamp"])


def sync(rec: AmiClient, n: int) -> None:
    """What a listener logging in now is told, kept in the recording (``h6-sync-<n>-*``)."""
    rec.send("Ping", f"h6-sync-{n}-ping")
    rec.send("QueueStatus", f"h6-sync-{n}-queues")
    rec.action("CoreShowChannels", action_id=f"h6-sync-{n}-channels")
    time.sleep(0.3)


def session(port: int, events: bool = True) -> AmiClient:
    """The recorder (``events``) or the driver: user ``ct``; waits for Asterisk to accept."""
    return AmiClient(port, "ct", "ctsecret", events=events, connect_timeout=20)


# ------------------------------------------------------------------ the listener
class Listener:
    def __init__(self, work: Path, env: dict):
        self.work, self.env, self.proc, self.n = work, env, None, 0

    def start(self) -> None:
        self.n += 1
        self.log = self.work / f"listener-{self.n}.log"
        self.proc = subprocess.Popen([*CT, "ami"], env=self.env, stdout=open(self.log, "wb"),
                                     stderr=subprocess.STDOUT)

    def connected(self, count: int = 1, timeout: float = 30.0) -> float:
        """Wait until the log says it connected ``count`` times; returns the wall time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log.read_bytes().count(b"AMI connected") >= count:
                return time.time()
            if self.proc.poll() is not None:
                raise SystemExit(f"listener exited: {self.log.read_text()[-2000:]}")
            time.sleep(0.02)
        raise SystemExit("listener did not connect")

    def signal(self, sig) -> None:
        self.proc.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self.proc.wait(30)

    def cut(self, ami_port: int) -> None:
        """Destroy the listener's TCP connection to Asterisk (``ss -K``), as a network fault would."""
        out = subprocess.run(["ss", "-tnpH", "state", "established", "dport", "=", f":{ami_port}"],
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            if f"pid={self.proc.pid}," in line:
                local = line.split()[2]
                host, port = local.rsplit(":", 1)
                subprocess.run(["ss", "-K", "src", host, "sport", "=", f":{port}", "dport", "=", f":{ami_port}"],
                               capture_output=True)
                return
        raise SystemExit("no listener connection to cut")


def caller(drv: AmiClient, did: str, number: str, stay: int = 30, give_up: int = 30) -> None:
    """A caller on ``did``: hangs up ``stay`` s after being answered, or after ``give_up`` s unanswered."""
    drv.action("Originate", Channel=f"Local/{did}@trunk", Context="caller", Exten="stay", Priority="1",
               CallerID=f'"Caller {number[-4:]}" <{number}>', Variable=f"CALLER_STAY={stay}",
               Timeout=str(give_up * 1000), Async="true")


# ------------------------------------------------------------------ scenarios
def kill_answered_while_down(rec, drv, lst, a):
    """support: Ghost rings 3 s (no answer), then Vera rings 2 s, answers and talks 6 s. The
    listener is SIGKILLed 1 s into the call and started again 5.5 s later: Vera answers while
    it is down; the call ends after it is back. As it starts, a second call (sales: Anna rings
    1 s, talks 2 s) begins: its events come while the listener logs in."""
    drv.db_set(ring__103=2, talk__103=6, ring__101=1, talk__101=2)
    mark(rec, "call")
    caller(drv, SUPPORT[0], "79161110001")
    time.sleep(1.0)
    mark(rec, "kill")
    lst.signal(signal.SIGKILL)
    time.sleep(5.5)
    mark(rec, "restart")
    lst.start()
    time.sleep(0.5)
    caller(drv, SALES[2], "79161110013", stay=2)
    lst.connected()
    sync(rec, 1)


def started_while_starting(rec, drv, lst, a):
    """sales: call A (Anna rings 1 s, talks 2 s) with the listener up; the listener stops
    (SIGTERM); call B starts as the listener is started again (B begins before it logs in);
    Anna answers B after 1 s and talks 3 s."""
    drv.db_set(ring__101=1, talk__101=2)
    mark(rec, "call-a")
    caller(drv, SALES[0], "79161110002", stay=4)
    time.sleep(5.0)
    mark(rec, "stop")
    lst.signal(signal.SIGTERM)
    drv.db_set(talk__101=3)
    mark(rec, "call-b")
    caller(drv, SALES[0], "79161110003")
    lst.start()
    mark(rec, "restart")
    lst.connected()
    sync(rec, 1)


def sigterm_ended_while_down(rec, drv, lst, a):
    """sales: Anna rings 1 s, talks 4 s. The listener stops (SIGTERM) 2.5 s into the call and is
    started 4 s later: the call ended while it was down (queue_log COMPLETEAGENT says when)."""
    drv.db_set(ring__101=1, talk__101=4)
    mark(rec, "call")
    caller(drv, SALES[1], "79161110004")
    time.sleep(2.5)
    mark(rec, "stop")
    lst.signal(signal.SIGTERM)
    time.sleep(4.0)
    mark(rec, "restart")
    lst.start()
    lst.connected()
    sync(rec, 1)


def connection_lost_answered(rec, drv, lst, a):
    """support: Ghost 3 s, Vera rings 2 s, talks 5 s. 1 s into the call the listener is frozen
    (SIGSTOP) and its connection destroyed (ss -K); it resumes 5 s later, finds the connection
    lost and reconnects: Vera answered meanwhile."""
    drv.db_set(ring__103=2, talk__103=5)
    mark(rec, "call")
    caller(drv, SUPPORT[1], "79161110005")
    time.sleep(1.0)
    mark(rec, "cut")
    lst.signal(signal.SIGSTOP)
    lst.cut(a.ami_port)
    time.sleep(5.0)
    mark(rec, "resume")
    lst.signal(signal.SIGCONT)
    lst.connected(2)
    sync(rec, 1)


def asterisk_restart(rec, drv, lst, a):
    """sales: Anna rings 1 s and talks; 4 s into the call Asterisk restarts (core restart now)
    under the running listener; when Asterisk is back, call C (Anna 1 s, talks 2 s)."""
    drv.db_set(ring__101=1, talk__101=20)
    mark(rec, "call")
    caller(drv, SALES[2], "79161110006")
    time.sleep(4.0)
    mark(rec, "restart-asterisk")
    subprocess.run([*shlex.split(a.cli), "core restart now"], capture_output=True)
    rec.wait_closed(15)
    drv_new = None
    for _ in range(100):
        time.sleep(0.2)
        try:
            rec.reconnect()
            drv_new = AmiClient(a.ami_port, "ct", "ctsecret", events=False)
            break
        except (OSError, AmiError):
            continue
    lst.connected(2)
    sync(rec, 1)
    drv_new.db_set(ring__101=1, talk__101=2)
    mark(rec, "call-c")
    caller(drv_new, SALES[2], "79161110007", stay=5)
    return drv_new


def started_after_calls(rec, drv, lst, a):
    """The listener is not running: call X (support: Ghost 3 s, Vera rings 2 s, talks 8 s) and
    call Y (sales: Anna rings 1 s, talks 8 s) start; the listener starts 4.5 s later, while X
    rings Vera and Y talks with Anna."""
    lst.signal(signal.SIGTERM)
    drv.db_set(ring__103=2, talk__103=8, ring__101=1, talk__101=8)
    mark(rec, "calls")
    caller(drv, SUPPORT[0], "79161110008")
    caller(drv, SALES[0], "79161110009")
    time.sleep(4.5)
    mark(rec, "start")
    lst.start()
    lst.connected()
    sync(rec, 1)


def abandoned_while_down(rec, drv, lst, a):
    """nightshift (nobody answers): the caller hangs up after 4 s. The listener is SIGKILLed
    1 s into the call and started again 5 s later (queue_log ABANDON says when and why)."""
    mark(rec, "call")
    caller(drv, NIGHT[0], "79161110010", give_up=4)
    time.sleep(1.0)
    mark(rec, "kill")
    lst.signal(signal.SIGKILL)
    time.sleep(5.0)
    mark(rec, "restart")
    lst.start()
    lst.connected()
    sync(rec, 1)


def whole_calls_while_down(rec, drv, lst, a):
    """The listener is SIGKILLed; while it is down call P (sales: Anna rings 1 s, talks 2 s) and
    call Q (nightshift: the caller gives up after 3 s) begin and end; it is started 9 s later.
    Only the FastAGI hook's rows and queue_log know these calls."""
    drv.db_set(ring__101=1, talk__101=2)
    mark(rec, "kill")
    lst.signal(signal.SIGKILL)
    mark(rec, "calls")
    caller(drv, SALES[1], "79161110011", stay=5)
    caller(drv, NIGHT[0], "79161110012", give_up=3)
    time.sleep(9.0)
    mark(rec, "restart")
    lst.start()
    lst.connected()
    sync(rec, 1)


SCENARIOS = {f.__name__: f for f in (kill_answered_while_down, started_while_starting, sigterm_ended_while_down,
                                      connection_lost_answered, asterisk_restart, started_after_calls,
                                      abandoned_while_down, whole_calls_while_down)}


# ------------------------------------------------------------------ setup and run
def setup(conf_dir: Path, agi_port: int, ami_port: int) -> None:
    conf_dir.mkdir(parents=True, exist_ok=True)
    for src in RESTARTS.glob("*.conf"):
        text = src.read_text().replace("@AMI_PORT@", str(ami_port))
        (conf_dir / src.name).write_text(text)
    dialplan = (ROOT / "dialplan" / "extensions_calltracking.conf").read_text()
    (conf_dir / "extensions_calltracking.conf").write_text(
        dialplan.replace("agi://127.0.0.1:4573", f"agi://127.0.0.1:{agi_port}"))
    print(f"wrote {conf_dir}; start Asterisk with it")


def prepare(work: Path, a) -> dict:
    db = work / "ct.db"
    cfg = work / "config.ini"
    cfg.write_text(f"""[general]
pbx_id = live
timezone = UTC
default_queue = support
default_region = RU
[database]
url = sqlite:///{db}
[ami]
port = {a.ami_port}
username = calltracking
secret = h6secret
ping_interval = 2
reconnect_max = 2
queue_log = {a.run_dir}/log/queue_log
[agi]
listen = 127.0.0.1:{a.agi_port}
spool_dir = {work / "agi-spool"}
[log]
level = info
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLTRACKING_")}
    env.update(CALLTRACKING_CONFIG=str(cfg), PYTHONPATH=str(ROOT))

    def ct(*args):
        subprocess.run([*CT, *args], env=env, check=True, capture_output=True)

    ct("db", "upgrade")
    for project, (queue, dids) in PROJECTS.items():
        ct("projects", "add", project, "--default-queue", queue)
        ct("sources", "add", project, "Ads", "--channel", "ads")
        for did in dids:
            ct("numbers", "add", project, did, "--source", "Ads")
    return env


def _lines_since(path: Path, offset: int) -> tuple[str, int]:
    data = path.read_bytes() if path.exists() else b""
    return data[offset:].decode("utf-8", "replace"), len(data)


def run(a) -> int:
    work = Path(a.work or tempfile.mkdtemp(prefix="live-restarts-"))
    work.mkdir(parents=True, exist_ok=True)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    env = prepare(work, a)
    agi = subprocess.Popen([*CT, "agi"], env=env, stdout=open(work / "agi.log", "wb"), stderr=subprocess.STDOUT)
    qlog, cdr = Path(a.run_dir) / "log" / "queue_log", Path(a.run_dir) / "log" / "cdr-csv" / "Master.csv"
    failures = 0
    try:
        time.sleep(1.0)
        for name in a.scenarios or list(SCENARIOS):
            _, qoff = _lines_since(qlog, 0)
            _, coff = _lines_since(cdr, 0)
            rec = session(a.ami_port)
            drv = session(a.ami_port, events=False)
            lst = Listener(work, env)
            lst.start()
            lst.connected()
            time.sleep(0.5)
            start = len(rec.events)
            t0 = time.time()
            drv = SCENARIOS[name](rec, drv, lst, a) or drv
            rec.wait_hungup(start)
            mark(rec, "end")
            if lst.proc.poll() is None:
                lst.signal(signal.SIGTERM)
            time.sleep(0.3)
            (out / f"{name}.ami").write_bytes(bytes(rec.raw))
            ql, _ = _lines_since(qlog, qoff)
            cd, _ = _lines_since(cdr, coff)
            (out / f"{name}.queue_log").write_text(ql)
            (out / f"{name}.cdr.csv").write_text(cd)
            records = json.loads(subprocess.run([*CT, "calls", "list", "--format", "json"], env=env,
                                                capture_output=True, text=True).stdout or "[]")
            lids = {e.get("Linkedid") for e in rec.events if e.get("Event") == "Newchannel"}
            mine = [r for r in records if r["linkedid"] in lids]
            (out / f"{name}.json").write_text(json.dumps({"scenario": name, "doc": SCENARIOS[name].__doc__,
                                                         "started": t0, "listener": mine}, indent=1) + "\n")
            failures += report(name, out)
            rec.close(logoff=False)
            drv.close(logoff=False)
    finally:
        agi.send_signal(signal.SIGTERM)
        agi.wait(30)
    print(f"work dir: {work}")
    return 1 if failures else 0


def report(name: str, out: Path) -> int:
    """Each call: the listener's record against queue_log and the uninterrupted interpretation."""
    rec = Recording.load(out / name)
    got = {c["linkedid"]: c for c in json.loads((out / f"{name}.json").read_text())["listener"]}
    print(f"== {name}")
    bad = 0
    for lid, exp in rec.expected().items():
        c = got.get(lid)
        if c is None:
            print(f"  {lid}: MISSING")
            bad += 1
            continue
        diffs = rec.differences(c, exp)
        truth = rec.queue_log_truth(exp)
        print(f"  {lid}: {c['status']} {c['missed_reason'] or ''} operator={c['operator']} "
              f"wait={c['wait_seconds']} talk={c['talk_seconds']} | uninterrupted: {exp['status']} "
              f"wait={exp['wait_seconds']} talk={exp['talk_seconds']} | queue_log: {truth} "
              f"| {'OK' if not diffs else 'DIFF ' + '; '.join(diffs)}")
        bad += bool(diffs)
    return bad


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup")
    s.add_argument("conf_dir", type=Path)
    r = sub.add_parser("run")
    r.add_argument("run_dir")
    r.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=", ".join(SCENARIOS))
    r.add_argument("--work")
    r.add_argument("--out", default=str(RESTARTS))
    r.add_argument("--cli", default="asterisk -rx",
                   help="how to run an Asterisk CLI command (the command is appended), e.g. "
                        "'run.sh cli RUN_DIR' for a private instance")
    for q in (s, r):
        q.add_argument("--ami-port", type=int, default=5038)
        q.add_argument("--agi-port", type=int, default=4573)
    a = p.parse_args(argv)
    if a.cmd == "setup":
        setup(a.conf_dir, a.agi_port, a.ami_port)
        return 0
    unknown = set(a.scenarios) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenario(s): {', '.join(sorted(unknown))} (known: {', '.join(SCENARIOS)})")
    return run(a)


if __name__ == "__main__":
    sys.exit(main())
