"""The configuration of every component a test starts: one :func:`make_config`.

    make_config(db_url)                                   # the test defaults below
    make_config(db_url, agi__timeout_ms=200)              # [agi] timeout_ms = 200
    make_config(db_url, ami__port=srv.port, ami__queue_log=path)
    make_config(notify__allow_private_targets="yes")      # no database needed: sqlite://

A setting is ``<section>__<key>=value`` (any value, turned into the string a config file would
hold), checked by the product's own :func:`calltracking.config.load_config` exactly as a
``--set section.key=value`` on the command line is. No file is read.
"""
from __future__ import annotations

import atexit
import shutil
import tempfile

from calltracking.config import Config, load_config

_SPOOLS = tempfile.mkdtemp(prefix="ct-test-spools-")
atexit.register(shutil.rmtree, _SPOOLS, True)


def spool_dir() -> str:
    """A new, empty ``[agi] spool_dir`` (removed when the test run ends)."""
    return tempfile.mkdtemp(dir=_SPOOLS)

#: What every test component runs with unless a test says otherwise.
DEFAULTS = {
    "general.pbx_id": "pbx1",                   # the Call rows the tests write name this PBX
    "general.default_region": "RU",             # the fixtures' numbers are Russian
    "general.default_queue": "general-q",       # the AGI fallback queue the tests look for
    "general.timezone": "Europe/Moscow",
    # the web UI: a fixed signing key; plain-HTTP test clients need cookies without Secure
    "web.secret_key": "test-secret-key-0123456789abcdef",
    "web.secure_cookies": "no",
    "web.public_url": "https://ct.example.org",  # the links in notifications
    # the FastAGI server: any free port; budgets far above a loaded machine's hiccups (a budget
    # test sets 200 ms), and a hook waits for its call row's commit (tests read it next)
    "agi.listen": "127.0.0.1:0",
    "agi.timeout_ms": "3000",
    "agi.write_wait_ms": "3000",
    # the AMI listener: the user of the fake Asterisk (support.ami_server); short timers
    "ami.username": "calltracking",
    "ami.secret": "ctsecret",
    "ami.ping_interval": "1",
    "ami.reconnect_max": "1",
    "recordings.dir": "/nonexistent",           # never the host's /var/spool/asterisk
    "asterisk.whisper_dir": "/nonexistent/whisper",  # never the host's Asterisk sounds
}


def make_config(db_url: str = "sqlite://", **settings) -> Config:
    """The product's configuration on ``db_url``: :data:`DEFAULTS`, then ``settings``
    (``section__key=value``). A bad value raises :class:`calltracking.config.ConfigError`.
    Each configuration gets its own FastAGI spool directory (a server started with it
    adopts only what a server of the same configuration left)."""
    overrides = dict(DEFAULTS, **{"database.url": db_url, "agi.spool_dir": spool_dir()})
    for name, value in settings.items():
        section, sep, key = name.partition("__")
        if not sep or not key:
            raise TypeError(f"make_config: {name!r} is not <section>__<key>")
        overrides[f"{section}.{key}"] = str(value)
    return load_config("/nonexistent/calltracking.ini", env={}, overrides=overrides, require_file=False)
