"""install.sh in a temporary root: install twice (idempotent), then uninstall and purge; the
modes of the files holding secrets and data, from their creation; the systemd unit's hardening."""
import configparser
import ctypes
import os
import re
import shutil
import stat
import struct
import subprocess
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


class ModeWatch:
    """Every mode a file or directory had in the watched trees, seen at once (inotify): the
    state between a file's creation and a later chmod cannot hide. ``seen[path]`` is the list
    of modes observed; new subdirectories are watched as they appear."""

    IN_ATTRIB, IN_CREATE, IN_MOVED_TO, IN_CLOSE_WRITE, IN_ISDIR = 0x4, 0x100, 0x80, 0x8, 0x40000000

    def __init__(self, *dirs):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_CLOEXEC)
        assert self.fd >= 0, ctypes.get_errno()
        self.wd: dict = {}
        self.seen: dict = {}
        for d in dirs:
            self._add(str(d))
        self.stop_r, self.stop_w = os.pipe()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _add(self, d):
        mask = self.IN_ATTRIB | self.IN_CREATE | self.IN_MOVED_TO | self.IN_CLOSE_WRITE
        wd = self.libc.inotify_add_watch(self.fd, d.encode(), mask)
        if wd >= 0:
            self.wd[wd] = d

    def _note(self, path):
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return
        self.seen.setdefault(path, []).append(stat.S_IMODE(mode))

    def _run(self):
        import select

        while True:
            r, _, _ = select.select([self.fd, self.stop_r], [], [])
            if self.stop_r in r:
                return
            data = os.read(self.fd, 65536)
            i = 0
            while i < len(data):
                wd, mask, _cookie, length = struct.unpack_from("iIII", data, i)
                name = data[i + 16:i + 16 + length].rstrip(b"\0").decode()
                i += 16 + length
                path = os.path.join(self.wd.get(wd, "?"), name)
                self._note(path)
                if mask & self.IN_ISDIR and mask & self.IN_CREATE:
                    self._add(path)
                    for entry in os.scandir(path):       # made before the watch was in place
                        self._note(entry.path)

    def close(self):
        os.write(self.stop_w, b"x")
        self.thread.join(10)
        os.close(self.fd)


def sh(root, *args, ok=True):
    env = dict(os.environ)
    env = {k: v for k, v in env.items() if not k.startswith("CALLTRACKING_")}
    p = subprocess.run(["bash", str(ROOT / "install.sh"), "--root", str(root), "--no-systemd", *args],
                       capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=600)
    if ok:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    ast = root / "etc" / "asterisk"
    ast.mkdir(parents=True)
    (ast / "extensions.conf").write_text("[general]\nstatic=yes\n\n[from-trunk]\nexten => _X.,1,Goto(calltracking-inbound,${EXTEN},1)\n")
    (ast / "manager.conf").write_text("[general]\nenabled = yes\nport = 5038\nbindaddr = 127.0.0.1\n")
    (root / "var" / "lib" / "asterisk" / "agi-bin").mkdir(parents=True)
    (root / "var" / "log").mkdir(parents=True)
    watch = ModeWatch(root / "etc", ast, root / "var" / "lib", root / "var" / "log")
    old = os.umask(0o022)                 # the usual umask of an admin's shell
    try:
        first = sh(root, "--timestampevents")
    finally:
        os.umask(old)
        watch.close()
    first.modes = watch.seen
    return root, first


def test_install_creates_everything(installed):
    root, first = installed
    conf = root / "etc/calltracking/config.ini"
    cp = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"))
    cp.read(conf)
    secret = cp["web"]["secret_key"]
    assert len(secret) >= 32 and "CHANGE-ME" not in secret
    assert len(cp["ami"]["secret"]) >= 16
    assert oct(conf.stat().st_mode & 0o777) == "0o640"
    assert cp["database"]["url"] == f"sqlite:///{root}/var/lib/calltracking/calltracking.db"
    assert cp["agi"]["spool_dir"] == f"{root}/var/lib/calltracking/agi-spool"   # under the service's data
    assert (root / "var/lib/calltracking/calltracking.db").exists()
    assert (root / "opt/calltracking/bin/calltracking").exists()
    assert os.readlink(root / "usr/local/bin/calltracking") == "/opt/calltracking/bin/calltracking"
    unit = (root / "etc/systemd/system/calltracking.service").read_text()
    assert "After=network.target asterisk.service" in unit and "Restart=on-failure" in unit
    assert "ExecStart=/opt/calltracking/bin/calltracking run" in unit
    for part in ("agi", "ami", "web", "scheduler"):     # optional per-component units
        u = (root / f"etc/systemd/system/calltracking-{part}.service").read_text()
        assert f"ExecStart=/opt/calltracking/bin/calltracking {part}\n" in u
        assert "Conflicts=calltracking.service" in u and "User=calltracking" in u
    ast = root / "etc/asterisk"
    assert (ast / "extensions_calltracking.conf").exists()
    mgr_user = (ast / "manager_calltracking.conf").read_text()
    assert f"secret = {cp['ami']['secret']}" in mgr_user and "@AMI_SECRET@" not in mgr_user
    assert "timestampevents = yes" in (ast / "manager.conf").read_text()
    wrapper = root / "var/lib/asterisk/agi-bin/calltracking-agi"
    assert os.access(wrapper, os.X_OK) and "-m agi.classic" in wrapper.read_text()
    # the installed CLI works against the installed config and database
    ct = [str(root / "opt/calltracking/bin/calltracking"), "--config", str(conf)]
    cur = subprocess.run(ct + ["db", "current"], capture_output=True, text=True)
    assert cur.returncode == 0, cur.stdout + cur.stderr


def test_secrets_and_data_are_never_readable_by_others(installed):
    """The configuration (secrets), the AMI user's secret, the database (password hashes,
    webhook and GA4 secrets, callers) and the logs: 0640 files in 0750 directories, and never
    more open than that for a moment (the config file is written under umask 077)."""
    root, first = installed
    private = [root / "etc/calltracking", root / "var/lib/calltracking", root / "var/log/calltracking"]
    seen = {p: modes for p, modes in first.modes.items()
            if any(p == str(d) or p.startswith(str(d) + os.sep) for d in private)
            or p.endswith("manager_calltracking.conf") or p.endswith("manager_calltracking.conf.tmp")}
    names = {os.path.basename(p) for p in seen}
    assert {"calltracking", "config.ini", "calltracking.db", "manager_calltracking.conf"} <= names, sorted(names)
    opened = {p: [oct(m) for m in modes] for p, modes in seen.items() if any(m & 0o007 for m in modes)}
    assert opened == {}, "readable by other users at some moment"
    for d in private:
        assert stat.S_IMODE(d.stat().st_mode) == 0o750, d
    for f in ("etc/calltracking/config.ini", "var/lib/calltracking/calltracking.db",
              "etc/asterisk/manager_calltracking.conf"):
        assert stat.S_IMODE((root / f).stat().st_mode) == 0o640, f


def test_systemd_unit_is_hardened(installed):
    root, _ = installed
    units = sorted((root / "etc/systemd/system").glob("calltracking*.service"))
    assert len(units) == 5
    text = units[0].read_text()
    for line in ("UMask=0027", "PrivateTmp=yes", "ProtectHome=yes", "ProtectSystem=strict",
                 "CapabilityBoundingSet=\n", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                 "SystemCallFilter=@system-service", "LockPersonality=yes", "MemoryDenyWriteExecute=yes",
                 "NoNewPrivileges=yes"):
        assert line in text, line
    rw = re.search(r"^ReadWritePaths=(.*)$", text, re.M).group(1).split()
    assert rw == ["-/var/lib/calltracking", "-/var/log/calltracking", "-/var/spool/asterisk/monitor",
                  "-/var/lib/asterisk/sounds/calltracking"]
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    for unit in units:
        out = subprocess.run([analyze, "security", "--offline=true", str(unit)], capture_output=True,
                             text=True, timeout=120)
        m = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", out.stdout)
        assert m, out.stdout + out.stderr
        assert float(m.group(1)) <= 3.0, (unit.name, m.group(0))


def test_second_run_is_idempotent_and_keeps_config(installed):
    root, _ = installed
    conf = root / "etc/calltracking/config.ini"
    conf.write_text(conf.read_text().replace("pbx_id = pbx1", "pbx_id = pbx-keep-me")
                    .replace("dir = /var/spool/asterisk/monitor", "dir = /srv/recordings"))
    before = conf.read_text()
    ext_before = (root / "etc/asterisk/extensions.conf").read_text()
    # an older schema (as after installing a previous version): the upgrade brings it to head
    ct = [str(root / "opt/calltracking/bin/calltracking"), "--config", str(conf)]
    subprocess.run(ct + ["projects", "add", "keepme"], check=True, capture_output=True)
    subprocess.run(ct + ["db", "downgrade"], check=True, capture_output=True)
    assert subprocess.run(ct + ["db", "current"], capture_output=True).returncode == 1
    # the package is really reinstalled from this checkout: a file removed from the installed copy is back
    import glob

    site = glob.glob(str(root / "opt/calltracking/lib/python3*/site-packages/calltracking/phone.py"))[0]
    os.remove(site)
    second = sh(root, "--timestampevents")
    assert os.path.exists(site)
    assert subprocess.run(ct + ["db", "current"], capture_output=True).returncode == 0
    listed = subprocess.run(ct + ["projects", "list", "--format", "json"], capture_output=True, text=True)
    assert "keepme" in listed.stdout                       # data kept across the upgrade
    assert "kept existing" in second.stdout
    assert conf.read_text() == before
    ext = (root / "etc/asterisk/extensions.conf").read_text()
    assert ext == ext_before
    assert ext.count("#include extensions_calltracking.conf") == 1
    mgr = (root / "etc/asterisk/manager.conf").read_text()
    assert mgr.count("#include manager_calltracking.conf") == 1
    assert mgr.count("timestampevents = yes") == 1
    # the service may write where the configuration now keeps the recordings
    unit = (root / "etc/systemd/system/calltracking.service").read_text()
    assert ("ReadWritePaths=-/var/lib/calltracking -/var/log/calltracking -/srv/recordings "
            "-/var/lib/asterisk/sounds/calltracking\n") in unit


def test_uninstall_keeps_data_then_purge(installed):
    root, _ = installed
    out = sh(root, "--uninstall")
    assert "kept" in out.stdout
    assert not (root / "opt/calltracking").exists()
    assert not (root / "usr/local/bin/calltracking").is_symlink()
    assert not (root / "etc/systemd/system/calltracking.service").exists()
    assert not list((root / "etc/systemd/system").glob("calltracking*"))
    assert not (root / "etc/asterisk/extensions_calltracking.conf").exists()
    assert "#include extensions_calltracking.conf" not in (root / "etc/asterisk/extensions.conf").read_text()
    assert "#include manager_calltracking.conf" not in (root / "etc/asterisk/manager.conf").read_text()
    assert "[from-trunk]" in (root / "etc/asterisk/extensions.conf").read_text()  # admin's own dialplan kept
    assert (root / "etc/calltracking/config.ini").exists()
    assert (root / "var/lib/calltracking/calltracking.db").exists()
    sh(root, "--uninstall", "--purge")
    assert not (root / "etc/calltracking").exists()
    assert not (root / "var/lib/calltracking").exists()


def test_refuses_without_root_or_flag(tmp_path):
    cmd = ["bash", str(ROOT / "install.sh")]
    if os.geteuid() == 0:  # CI runs as root: try as an unprivileged user
        cmd = ["runuser", "-u", "nobody", "--", *cmd]
    p = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert p.returncode != 0 and "run as root" in p.stderr


def test_a_new_sqlite_database_is_private_from_its_creation(tmp_path):
    """make_engine creates the data directory 0750 and the database 0640 before SQLite opens
    it; SQLite gives the -wal and -shm files the database's mode. Under the usual umask 022."""
    from sqlalchemy import text

    from calltracking.db import make_engine

    old = os.umask(0o022)
    try:
        engine = make_engine(f"sqlite:///{tmp_path}/data/calltracking.db")
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "data").iterdir()}
        modes["data"] = stat.S_IMODE((tmp_path / "data").stat().st_mode)
        engine.dispose()
    finally:
        os.umask(old)
    assert modes == {"data": 0o750, "calltracking.db": 0o640, "calltracking.db-wal": 0o640,
                     "calltracking.db-shm": 0o640}


#: runs a program with the kernel's MDWE (PR_SET_MDWE, Linux 6.3+): no memory that is writable
#: and executable, none made executable later -- what MemoryDenyWriteExecute=yes enforces with
#: seccomp; inherited by every child (ffmpeg)
MDWE_LAUNCHER = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:
    sys.exit(f"PR_SET_MDWE failed: errno {ctypes.get_errno()}")
os.execv(sys.argv[1], sys.argv[1:])
"""


def _mdwe(tmp_path, *cmd):
    import sys

    launcher = tmp_path / "mdwe.py"
    launcher.write_text(MDWE_LAUNCHER)
    return [sys.executable, str(launcher), *cmd]


def test_the_service_works_without_writable_executable_memory(tmp_path, db_url, session_factory):
    """MemoryDenyWriteExecute=yes in the unit: `calltracking web` (waitress, and the DNI server on
    uvloop) answers, and recordings are read, measured and converted (ffmpeg), under the same
    restriction."""
    import json
    import socket
    import sys
    import time
    import urllib.request
    import wave

    from calltracking import entities as svc
    from calltracking.db import session_scope

    py = sys.executable
    probe = subprocess.run(_mdwe(tmp_path, py, "-c", "import mmap\n"
                                 "try:\n mmap.mmap(-1, 4096, prot=7)\nexcept OSError:\n print('refused')"),
                           capture_output=True, text=True)
    if "PR_SET_MDWE failed" in probe.stderr:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3+)")
    assert probe.stdout.strip() == "refused", probe.stdout + probe.stderr     # the restriction holds
    with session_scope(session_factory) as s:
        p = svc.add_project(s, "acme", "Acme", "UTC", "sales", "+74951234567")
        p.allowed_origins = "https://shop.example"
        pool = svc.add_pool(s, p, "website")
        svc.add_number(s, p, "+74950002000", pool=pool)
    ports = []
    for _ in range(2):
        with socket.socket() as sk:
            sk.bind(("127.0.0.1", 0))
            ports.append(sk.getsockname()[1])
    web, dni_port = ports
    ini = tmp_path / "config.ini"
    ini.write_text(f"[database]\nurl = {db_url}\n[web]\nlisten = 127.0.0.1:{web}\nsecret_key = {'k' * 40}\n"
                   f"secure_cookies = no\n[dni]\nlisten = 127.0.0.1:{dni_port}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLTRACKING_")}
    log = tmp_path / "web.log"
    proc = subprocess.Popen(_mdwe(tmp_path, py, "-m", "calltracking", "--config", str(ini), "web"),
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env, cwd=str(ROOT))

    def get(url):
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status, r.read()
        except OSError:
            return 0, b""

    try:
        deadline = time.monotonic() + 30
        while get(f"http://127.0.0.1:{dni_port}/healthz")[0] != 200 or get(f"http://127.0.0.1:{web}/login")[0] != 200:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        req = urllib.request.Request(f"http://127.0.0.1:{dni_port}/api/dni/assign", method="POST",
                                     data=json.dumps({"project": "acme"}).encode(),
                                     headers={"Origin": "https://shop.example", "User-Agent": "Mozilla/5.0 Firefox/120.0"})
        with urllib.request.urlopen(req, timeout=5) as r:
            body = json.loads(r.read())
        assert body["kind"] == "pool" and body["number"] == "+74950002000"
        maps = Path(f"/proc/{proc.pid}/maps").read_text()        # the launcher exec'd: same pid
        assert "/uvloop/" in maps                                 # the DNI server's loop is uvloop
    finally:
        proc.terminate()
        proc.wait(15)
    assert "Traceback" not in log.read_text() and "MemoryError" not in log.read_text()
    # a recording as MixMonitor writes it: read, measured, converted to mp3 and ogg by ffmpeg
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    wav = tmp_path / "rec.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * ((i // 40) % 2 * 2 - 1))) for i in range(16000)))
    script = ("import sys; from pathlib import Path\n"
              "from calltracking.jobs import recording_audio, recordings\n"
              "audio, info = recording_audio.analyze([Path(sys.argv[1])])\n"
              "for fmt in ('mp3', 'ogg'):\n"
              "    out = recordings.convert(audio, Path(sys.argv[1]).with_suffix('.' + fmt), fmt)\n"
              "    print(out.name, out.stat().st_size)\n"
              "print('seconds', info.duration)\n")
    out = subprocess.run(_mdwe(tmp_path, py, "-c", script, str(wav)), capture_output=True, text=True,
                         cwd=str(ROOT), timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    sizes = dict(line.split() for line in out.stdout.splitlines())
    assert int(sizes["rec.mp3"]) > 1000 and int(sizes["rec.ogg"]) > 1000
