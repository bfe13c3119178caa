"""install.sh in a temporary root: install twice (idempotent), then uninstall and purge."""
import configparser
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


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
    first = sh(root, "--timestampevents")
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


def test_second_run_is_idempotent_and_keeps_config(installed):
    root, _ = installed
    conf = root / "etc/calltracking/config.ini"
    conf.write_text(conf.read_text().replace("pbx_id = pbx1", "pbx_id = pbx-keep-me"))
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
