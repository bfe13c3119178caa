"""The live suite's world: a real Asterisk running the project's own dialplan and AMI user,
a database seeded with one project, and ``calltracking run`` against both.

Installed the way ``install.sh`` installs: ``dialplan/extensions_calltracking.conf`` copied
unchanged except the FastAGI port (the suite picks free ports so it can run beside another
Asterisk), ``dialplan/manager_calltracking.conf`` with the secret written in and ``#include``d by
``manager.conf``. The tests' own AMI user (``driver``, with ``originate``) places the calls and
keeps every event it sees, so each record is compared with three witnesses: Asterisk's
``queue_log``, its CDR ``Master.csv`` and the AMI stream.
"""
from __future__ import annotations

import contextlib
import csv
import itertools
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from sqlalchemy import select

from support.ami_client import AmiClient
from support.asterisk import Asterisk, manager_conf
from support.fixtures import LIVE_PBX, ROOT
from support.net import free_port
from support.polling import poll

DRIVER_SECRET = "driver-" + secrets.token_hex(8)

#: Operators as registered in calltracking: (extension, name). Queue members in tests/live/pbx/queues.conf
#: use the interface ``Local/<ext>@operators`` as their state interface.
OPERATORS = [("101", "Anna"), ("102", "Boris"), ("103", "Vera"), ("104", "Dmitri"), ("105", "Elena"),
             ("106", "Fedor"), ("107", "Galina"), ("108", "Igor"), ("109", "Julia"), ("110", "Kira"),
             ("111", "Luka"), ("121", "Lev"), ("122", "Maria"), ("131", "Nina"), ("132", "Oleg"),
             ("133", "Pavel"), ("141", "Roman"), ("142", "Sofia"), ("197", "Ghost3"),
             ("198", "Ghost2"), ("199", "Ghost"), ("112", "Mila"), ("113", "Nadia"), ("114", "Oskar"),
             ("115", "Pyotr")]
#: Operators known by their phone (``Local/<ext>@phones``), reached through optimising routes.
PHONES = [("251", "Tanya"), ("252", "Ursula"), ("253", "Viktor"), ("254", "Walter"), ("255", "Xenia"),
          ("256", "Yuri"), ("257", "Zoya")]


@dataclass
class Placed:
    """One call placed by the driver: what the test asked for, and its Linkedid."""
    tag: str
    did: str
    caller: str
    linkedid: str = ""
    placed_at: float = 0.0


@dataclass
class Ground:
    """What Asterisk itself wrote about one call (by Linkedid)."""
    queue_log: list[list[str]] = field(default_factory=list)    # [time, callid, queue, agent, event, …]
    cdrs: list[dict] = field(default_factory=list)

    def ql(self, event: str) -> list[list[str]]:
        return [r for r in self.queue_log if r[4] == event]


CDR_COLUMNS = ["accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
               "lastdata", "start", "answer", "end", "duration", "billsec", "disposition",
               "amaflags", "uniqueid", "userfield"]


class World:
    def __init__(self, tmp: Path, db_url: str):
        self.tmp = tmp
        self.db_url = db_url
        self.ami_port, self.agi_port, self.web_port, self.dni_port = (free_port() for _ in range(4))
        self.ami_secret = secrets.token_hex(12)
        self.ast = Asterisk(tmp / "asterisk")
        self.driver: Optional[AmiClient] = None
        self.run: Optional[subprocess.Popen] = None
        self.runs = 0
        self._ids = itertools.count(1)
        self.uniqueid_to_linkedid: dict[str, str] = {}
        self.ini = tmp / "config.ini"
        self.whisper_dir = tmp / "whisper"      # the operator's whispers (tests/live/test_live_whisper.py)

    # --- Asterisk ----------------------------------------------------------------------
    def asterisk_files(self) -> dict[str, str]:
        dialplan = (ROOT / "dialplan" / "extensions_calltracking.conf").read_text()
        manager_inc = (ROOT / "dialplan" / "manager_calltracking.conf").read_text()
        files = {f.name: f.read_text() for f in LIVE_PBX.glob("*.conf")}
        files["extensions_calltracking.conf"] = dialplan.replace("127.0.0.1:4573", f"127.0.0.1:{self.agi_port}")
        # website callbacks (tests/live/test_live_callbacks.py): the "originate" privilege, as
        # docs/callbacks.md tells an admin to add with [ami] originate = yes
        files["manager_calltracking.conf"] = manager_inc.replace("@AMI_SECRET@", self.ami_secret).replace(
            "write = reporting", "write = reporting,originate")
        files["manager.conf"] = manager_conf(self.ami_port, {
            "driver": f"secret = {DRIVER_SECRET}\npermit = 127.0.0.1/255.255.255.255\n"
                      "read = all\nwrite = all"}) + "\n#include manager_calltracking.conf\n"
        return files

    def start_asterisk(self) -> None:
        self.ast.start(self.asterisk_files())
        self.connect_driver()

    def connect_driver(self) -> None:
        self.driver = AmiClient(self.ami_port, "driver", DRIVER_SECRET)

    def restart_asterisk(self) -> None:
        self.ast.restart()
        old = self.driver
        self.connect_driver()
        if old is not None:                 # keep the events seen before the restart
            self.driver.events[:0] = old.events
            self.driver.raw[:0] = old.raw
            old.close()

    # --- calltracking ------------------------------------------------------------------
    @property
    def parser_process(self) -> str:
        """Both AMI parsers meet the real Asterisk: in a helper process on the PostgreSQL run of
        the live suite, in the listener's own process (the default) on the SQLite run."""
        return "yes" if self.db_url.startswith("postgresql") else "no"

    def write_config(self) -> None:
        self.ini.write_text(f"""[general]
pbx_id = live
timezone = Europe/Moscow
default_queue = sales
default_region = RU
[database]
url = {self.db_url}
[ami]
port = {self.ami_port}
username = calltracking
secret = {self.ami_secret}
ping_interval = 2
reconnect_max = 1
originate = yes
queue_log = {self.ast.queue_log}
parser_process = {self.parser_process}
[agi]
listen = 127.0.0.1:{self.agi_port}
timeout_ms = 1000
spool_dir = {self.tmp / "agi-spool"}
[web]
listen = 127.0.0.1:{self.web_port}
secret_key = {secrets.token_hex(24)}
secure_cookies = no
[dni]
listen = 127.0.0.1:{self.dni_port}
[recordings]
dir = {self.ast.monitor_dir}
format = mp3
[asterisk]
config_dir = {self.ast.run / 'etc'}
whisper_dir = {self.whisper_dir}
[log]
level = info
""")
        os.chmod(self.ini, 0o600)

    def cli(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLTRACKING_")}
        r = subprocess.run([sys.executable, "-m", "calltracking", "--config", str(self.ini), *args],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise AssertionError(f"calltracking {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
        return r

    def start_run(self, *args: str) -> None:
        """``calltracking run`` in its own process; returns when its AMI listener has logged in
        (Asterisk's ``SuccessfulAuth`` event) and its FastAGI port answers."""
        assert self.run is None or self.run.poll() is not None, "run already started"
        self.runs += 1
        seen = len(self.driver.events)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLTRACKING_")}
        log = open(self.tmp / f"run-{self.runs}.log", "wb")
        self.run = subprocess.Popen([sys.executable, "-m", "calltracking", "--config", str(self.ini),
                                     "run", *args], stdout=log, stderr=subprocess.STDOUT, env=env,
                                    stdin=subprocess.DEVNULL)
        self.driver.wait_event(lambda e: e.get("Event") == "SuccessfulAuth"
                               and e.get("AccountID") == "calltracking", timeout=30, since=seen)
        time.sleep(0.5)                 # its CoreShowChannels sync follows the login
        if "agi" in args and "--without" in args:
            return

        def agi_up():
            if self.run.poll() is not None:
                raise AssertionError(f"calltracking run exited {self.run.returncode}:\n{self.run_log()}")
            try:
                socket.create_connection(("127.0.0.1", self.agi_port), timeout=0.5).close()
                return True
            except OSError:
                return False
        poll(agi_up, 30, "the FastAGI port of calltracking run", interval=0.25)

    def stop_run(self, sig: int = signal.SIGTERM, timeout: float = 20) -> Optional[int]:
        if self.run is None or self.run.poll() is not None:
            return None if self.run is None else self.run.returncode
        self.run.send_signal(sig)
        return self.run.wait(timeout)

    def run_log(self, n: Optional[int] = None) -> str:
        out = []
        for i in range(1, self.runs + 1) if n is None else [n]:
            p = self.tmp / f"run-{i}.log"
            if p.exists():
                out.append(f"--- run {i} ---\n" + p.read_text(errors="replace"))
        return "\n".join(out)

    # --- placing calls -----------------------------------------------------------------
    def call(self, did: str, caller: str, *, tag: str = "", stay: float = 10, patience: float = 30,
             context: str = "from-trunk", dtmf: str = "", name: str = "") -> Placed:
        """Originate a caller: a Local channel into ``context`` with the DID as extension.

        ``patience``: seconds the caller waits for an answer before giving up (Originate's
        timeout); ``stay``: seconds the caller stays on the line once answered.
        """
        tid = f"{tag or did}-{next(self._ids)}"
        exten = "dtmf" if dtmf else "stay"
        r = self.driver.action(
            "Originate", Channel=f"Local/{did}@{context}", Context="caller", Exten=exten, Priority="1",
            CallerID=f'"{name or "Caller " + caller[-4:]}" <{caller}>', Timeout=str(int(patience * 1000)),
            Async="true", Variable=[f"CALLER_STAY={stay}", f"CALLER_DTMF={dtmf}", f"LIVE_TEST_ID={tid}"])
        assert r.get("Response") == "Success", r
        ev = self.driver.wait_event(lambda e: e.get("Event") == "VarSet" and e.get("Variable") == "LIVE_TEST_ID"
                                    and e.get("Value") == tid, timeout=10)
        return Placed(tag=tag or tid, did=did, caller=caller, linkedid=ev["Linkedid"], placed_at=time.time())

    def session(self):
        """:func:`transaction` on the live database."""
        return transaction(self.db_url)

    def db_put(self, **values) -> None:
        """AstDB values the [operators] and trunk contexts read, e.g. ``db_put(**{"ring/101": 1})``."""
        for key, val in values.items():
            family, k = key.split("/", 1)
            self.driver.db_put(family, k, val)

    def channels_of(self, linkedid: str) -> list[dict]:
        return self.driver.find(lambda e: e.get("Event") == "Newchannel" and e.get("Linkedid") == linkedid)

    def operator_channel(self, linkedid: str, ext: str, half: str = ";1", prefix: str = "") -> str:
        """The channel of operator ``ext`` in call ``linkedid`` (the half bridged with the caller)."""
        prefix = prefix or f"Local/{ext}@operators-"

        def find():
            for e in self.channels_of(linkedid):
                if e["Channel"].startswith(prefix) and e["Channel"].endswith(half):
                    return e["Channel"]
            return None
        return poll(find, 20, f"operator {ext}'s channel in {linkedid}", interval=0.25)

    def wait_answered_by(self, linkedid: str, ext: str, timeout: float = 30) -> dict:
        """The BridgeEnter of operator ``ext``'s channel into the caller's call."""
        return self.driver.wait_event(
            lambda e: e.get("Event") == "BridgeEnter" and e.get("Linkedid") == linkedid
            and e.get("Channel", "").startswith(f"Local/{ext}@operators-"), timeout=timeout)

    def wait_hungup(self, placed: list[Placed], timeout: float = 90) -> None:
        """Until every channel of these calls has hung up (per the driver's AMI stream)."""
        want = {p.linkedid for p in placed}

        def done():
            ev = self.driver.events
            born = {e["Uniqueid"] for e in ev if e.get("Event") == "Newchannel" and e.get("Linkedid") in want}
            gone = {e["Uniqueid"] for e in ev if e.get("Event") == "Hangup" and e.get("Linkedid") in want}
            return born and born <= gone
        poll(done, timeout, f"the calls {sorted(want)} to end", interval=0.25)

    # --- records and ground truth ------------------------------------------------------
    def records(self, placed: list[Placed], timeout: float = 30) -> dict[str, dict]:
        """``calls list --format json`` for these calls, once each has ended in the database."""
        want = {p.linkedid for p in placed}
        from calltracking.db import make_engine, make_sessionmaker
        from calltracking.models import Call

        eng = make_engine(self.db_url)
        try:
            sm = make_sessionmaker(eng)

            def ended():
                with sm() as s:
                    rows = s.execute(select(Call.linkedid).where(Call.pbx_id == "live",
                                                                 Call.linkedid.in_(want),
                                                                 Call.ended_at.is_not(None))).all()
                    return len(rows) == len(want)
            try:
                poll(ended, timeout, "the call records to end", interval=0.25)
            except AssertionError:
                pass                         # the assertions below say which call is missing
        finally:
            eng.dispose()
        rows = json.loads(self.cli("calls", "list", "--format", "json", "--limit", "100000",
                                   "--from", "2000-01-01").stdout)
        return {r["linkedid"]: r for r in rows if r["linkedid"] in want}

    def ground(self, linkedid: str) -> Ground:
        """queue_log lines and CDRs of one call: both keyed by channel uniqueids, mapped through
        the Newchannel events the driver saw."""
        uids = {e["Uniqueid"] for e in self.channels_of(linkedid)}
        g = Ground()
        if self.ast.queue_log.exists():
            for line in self.ast.queue_log.read_text().splitlines():
                parts = line.split("|")
                if len(parts) >= 5 and parts[1] in uids:
                    g.queue_log.append(parts)
        if self.ast.cdr_csv.exists():
            with open(self.ast.cdr_csv, newline="") as f:
                for row in csv.reader(f):
                    d = dict(zip(CDR_COLUMNS, row))
                    if d.get("uniqueid") in uids:
                        g.cdrs.append(d)
        return g

    def inbound_cdr(self, linkedid: str, context: str = "from-trunk") -> dict:
        """The CDR of the inbound (``;2``, trunk side) channel."""
        g = self.ground(linkedid)
        rows = [c for c in g.cdrs if c["channel"].endswith(";2") and f"@{context}-" in c["channel"]]
        assert rows, f"no CDR for the inbound channel of {linkedid}: {g.cdrs}"
        return rows[0]

    def events(self, linkedid: str, name: str) -> list[dict]:
        return self.driver.find(lambda e: e.get("Event") == name and e.get("Linkedid") == linkedid)

    def close(self) -> None:
        try:
            self.stop_run()
        except subprocess.TimeoutExpired:
            self.run.kill()
        if self.driver is not None:
            # the whole AMI session as received, to turn a live surprise into a recorded fixture
            (self.tmp / "ami-session.ami").write_bytes(bytes(self.driver.raw))
            self.driver.close()
        self.ast.stop()


@contextlib.contextmanager
def transaction(db_url: str):
    """A session on ``db_url`` in one transaction, committed when the block ends, its engine
    disposed after: a live scenario's seed, or a read of what it recorded."""
    from calltracking.db import make_engine, make_sessionmaker

    eng = make_engine(db_url)
    try:
        with make_sessionmaker(eng)() as s, s.begin():
            yield s
    finally:
        eng.dispose()


def seed(db_url: str) -> None:
    """The project the live calls belong to: sources, static numbers, operators, routing rules,
    a promo code. Numbers 7495000xxxx are tracked; 74959999999 is not."""
    from calltracking import entities as svc
    from calltracking.models import PromoCode, RoutingRule

    with transaction(db_url) as s:
        p = svc.add_project(s, "acme", timezone="Europe/Moscow", default_queue="sales")
        ads = svc.add_source(s, p, "Google Ads", channel="ads", short_label="GA")
        paper = svc.add_source(s, p, "Newspaper", channel="offline", short_label="NP")
        board = svc.add_source(s, p, "Billboard", channel="offline", short_label="BB")
        recs = svc.add_source(s, p, "Radio", channel="offline", short_label="RD")
        direct = svc.add_source(s, p, "Direct desk", channel="other", short_label="DD")
        queue_of = {}
        for n, queue in [(1001, "q_answer"), (1002, "q_ghost"), (1004, "q_second"), (1005, "q_hup"),
                         (1008, "q_repeat"), (1009, "q_blind"), (1010, "q_atx"), (1011, "q_restart"),
                         (1012, "q_restart"), (1013, "q_restart"), (1014, "q_restart"),
                         (5001, "q_opt"), (5002, "q_fwd"), (5003, "q_optx")]:
            c = svc.add_campaign(s, ads, f"c-{n}")
            svc.add_number(s, p, f"7495000{n}", source=ads, campaign=c, record=False)
            queue_of[c] = queue
        svc.add_number(s, p, "74950002003", source=board, record=False)       # IVR, queue timeout
        svc.add_number(s, p, "74950002007", source=board, record=False)       # IVR, promo code
        svc.add_number(s, p, "74950001006", source=direct, record=False)      # Dial() target
        desk = svc.add_source(s, p, "Website desk", channel="other", short_label="WD")
        svc.add_number(s, p, "74950005004", source=desk, record=False)        # Dial() of a route
        for i in range(40):
            svc.add_number(s, p, f"749500030{i:02d}", source=ads, record=False)   # 30 at once
        for i in range(1, 4):
            svc.add_number(s, p, f"7495000400{i}", source=recs, record=True)    # recordings
        for ext, name in OPERATORS:
            svc.add_operator(s, name, f"Local/{ext}@operators", member_name=name, extension=ext)
        for ext, name in PHONES:
            svc.add_operator(s, name, f"Local/{ext}@phones", member_name=name, extension=ext)
        s.flush()
        prio = itertools.count(10)
        # One rule per queue-specific number, matched on the number's own campaign.
        for c, queue in queue_of.items():
            s.add(RoutingRule(project_id=p.id, name=f"{c.name} to {queue}", priority=next(prio),
                              source_id=ads.id, campaign_id=c.id, queue=queue))
        s.add(RoutingRule(project_id=p.id, name="busy hour", priority=next(prio), source_id=ads.id,
                          queue="q_busy"))
        s.add(RoutingRule(project_id=p.id, name="billboard IVR", priority=next(prio),
                          source_id=board.id, queue="q_timeout"))
        s.add(RoutingRule(project_id=p.id, name="newspaper promo", priority=next(prio),
                          source_id=paper.id, queue="q_promo"))
        s.add(RoutingRule(project_id=p.id, name="direct desk", priority=next(prio), source_id=direct.id,
                          target="Local/102@operators/n"))
        s.add(RoutingRule(project_id=p.id, name="website desk", priority=next(prio), source_id=desk.id,
                          target="Local/157@routes"))
        s.add(RoutingRule(project_id=p.id, name="radio recorded", priority=next(prio), source_id=recs.id,
                          queue="q_rec", record=True))
        s.add(PromoCode(project_id=p.id, code="4242", source_id=paper.id))
