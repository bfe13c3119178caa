"""`calltracking doctor` checks of the AMI side: login, the user's read classes, the event classes
that arrive, timestampevents, clock skew.

An idle PBX is the normal case right after installing, so every check judges first what can be
known without traffic, and says "not checked yet" (INFO), never FAIL or WARN, for what only a
call can show:

* the login works (one short AMI session, shared by the checks: login, Ping, 2 s of events);
* the user's ``read =`` classes and ``timestampevents``, read from Asterisk's own configuration
  (``[asterisk] config_dir``/manager.conf and the files it includes) when doctor can read it;
* the event classes that arrived, during the probe or at the running listener (its
  ``ami_listener_state``, last 7 days), and the Timestamp of call events: those the probe saw,
  else the latest call events the listener stored (``ami_events``).

Only events of a call (a ``Linkedid`` header) count as traffic, and only call events are judged
for a Timestamp: Asterisk stamps broadcast events, not the answers to actions (QueueStatus's
``QueueMember`` list, which the listener asks for at every login) nor the ``FullyBooted`` it
sends at login.
"""
from __future__ import annotations

import datetime as dt
import os
import socket
import time
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import select

from calltracking.callstore.events import row_event
from calltracking.callstore.listener_state import ListenerState
from calltracking.doctor import FAIL, INFO, OK, WARN, Result, check
from calltracking.interpret import FrameParser
from calltracking.models import AmiEvent

from ami_listener.asterisk_conf import AsteriskConf, ast_true, read_asterisk_conf

PROBE_SECONDS = 2.0
RECENT = 7 * 86400           # event classes seen by the listener count for a week
STORED_SAMPLE = 50           # latest stored call events judged for a Timestamp
#: classes that only a call produces (Newexten and VarSet; Cdr): proof of a call without "call"
CALL_ONLY = {"dialplan", "cdr"}
#: event class -> what needs it
REQUIRED = {"call": "channels, dials, bridges, hangups", "agent": "queue events (QueueCallerJoin, AgentConnect…)",
            "cdr": "the Cdr cross-check (cdr_manager.conf enabled = yes)",
            "dialplan": "VarSet: CT_* variables, QUEUESTATUS, MIXMONITOR_FILENAME"}
READ_LINE = "read = call,cdr,agent,user,dialplan"
MANAGER_FIX = ("check /etc/asterisk/manager_calltracking.conf (user, secret, permit 127.0.0.1, "
               f"{READ_LINE}) and manager.conf [general] enabled = yes, then "
               "`asterisk -rx 'manager reload'`")
UNREADABLE_FIX = ("run doctor as a user that can read Asterisk's configuration (install.sh puts the "
                  "calltracking user in the asterisk group), or set [asterisk] config_dir")


def read_classes(value: Optional[str]) -> set:
    """The event classes of a ``read =`` value, as Asterisk's get_perm() reads it: exact names
    between commas (``call, cdr`` grants ``call`` only), ``all`` grants every class."""
    names = set((value or "").split(","))
    return set(REQUIRED) | names if "all" in names else names


def _conf(ctx, name: str) -> tuple[Optional[AsteriskConf], str, str]:
    """(parsed ``name`` from ``[asterisk] config_dir`` or None, its path, why it could not be
    read); each file is read once per doctor run."""
    cache = getattr(ctx, "_asterisk_confs", None)
    if cache is None:
        cache = {}
        try:
            ctx._asterisk_confs = cache
        except AttributeError:  # pragma: no cover - a context that refuses attributes
            pass
    if name not in cache:
        path = os.path.join(ctx.config.asterisk.config_dir, name)
        try:
            cache[name] = (read_asterisk_conf(path), path, "")
        except OSError as e:
            cache[name] = (None, path, f"cannot read {e.filename or path}: {e.strerror or e}")
    return cache[name]


@dataclass
class UserRead:
    """The AMI user's ``read =`` as the configuration files say (``classes`` None: unknown)."""

    classes: Optional[set]
    where: str              # "[calltracking] in /etc/asterisk/manager_calltracking.conf", or why unknown
    file: str = ""
    value: Optional[str] = None
    readable: bool = True   # False: manager.conf itself could not be read


def user_read(ctx) -> UserRead:
    conf, path, err = _conf(ctx, "manager.conf")
    if conf is None:
        return UserRead(None, err, readable=False)
    name = conf.find(ctx.config.ami.username)
    if name is None:
        return UserRead(None, f"no [{ctx.config.ami.username}] section in {path} or the files it includes")
    value = conf.value(name, "read")
    return UserRead(read_classes(value), f"[{name}] in {conf.files[name]}", conf.files[name], value)


# ---------------------------------------------------------------------- the AMI probe
def probe(host: str, port: int, username: str, secret: str, seconds: float = PROBE_SECONDS) -> dict:
    out = {"ok": False, "error": "", "events": [], "ping": None}
    parser = FrameParser()
    try:
        sock = socket.create_connection((host, port), timeout=3.0)
    except OSError as e:
        out["error"] = f"cannot connect to {host}:{port}: {e.strerror or e}"
        return out
    try:
        sock.settimeout(3.0)
        sock.sendall(f"Action: Login\r\nActionID: doctor-login\r\nUsername: {username}\r\n"
                     f"Secret: {secret}\r\nEvents: on\r\n\r\n".encode())
        frames, deadline, t0 = [], time.time() + 5.0, None
        while time.time() < deadline:
            resp = next((f for f in frames if f.get("ActionID") == "doctor-login"), None)
            if resp is not None:
                break
            frames += parser.feed(sock.recv(65536) or b"")
        else:
            out["error"] = "no answer to Login"
            return out
        if resp.get("Response") != "Success":
            out["error"] = f"login refused: {resp.get('Message', '?')}"
            return out
        out["ok"] = True
        out["events"] += [f for f in frames if "Event" in f and "ActionID" not in f]
        t0 = time.time()
        sock.sendall(b"Action: Ping\r\nActionID: doctor-ping\r\n\r\n")
        end = time.time() + seconds
        sock.settimeout(0.2)
        while time.time() < end:
            try:
                data = sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                break
            for f in parser.feed(data):
                if f.get("ActionID") == "doctor-ping":
                    out["ping"] = (f.get("Timestamp"), t0, time.time())
                elif "Event" in f and "ActionID" not in f:
                    out["events"].append(f)
        try:
            sock.sendall(b"Action: Logoff\r\n\r\n")
        except OSError:
            pass
    except OSError as e:
        out["error"] = f"AMI session failed: {e}"
    finally:
        sock.close()
    return out


def _session(ctx) -> dict:
    """One probe per doctor run, kept on the command's context."""
    cached = getattr(ctx, "_ami_probe", None)
    if cached is None:
        a = ctx.config.ami
        if not a.secret:
            cached = {"ok": False, "error": "[ami] secret is empty", "events": [], "ping": None}
        else:
            cached = probe(a.host, a.port, a.username, a.secret)
        try:
            ctx._ami_probe = cached
        except AttributeError:  # pragma: no cover - a context that refuses attributes
            pass
    return cached


def _class(frame: dict) -> str:
    return frame.get("Privilege", "").split(",", 1)[0]


def _is_call_event(frame: dict) -> bool:
    return "Linkedid" in frame


# ---------------------------------------------------------------------- what the listener saw
def _listener_state(ctx) -> Optional[dict]:
    """The running listener's ``ami_listener_state``; None without one or without a database."""
    try:
        with ctx.sessionmaker() as s:
            return ListenerState(ctx.config.general.pbx_id).read(s)
    except Exception:
        return None


def _stored_call_events(ctx) -> list[tuple[dict, dt.datetime]]:
    """The latest call events the listener stored (newest first), as (event, Asterisk time)."""
    try:
        with ctx.sessionmaker() as s:
            rows = s.execute(select(AmiEvent.data, AmiEvent.at)
                             .where(AmiEvent.pbx_id == ctx.config.general.pbx_id)
                             .order_by(AmiEvent.id.desc()).limit(STORED_SAMPLE)).all()
        return [(row_event(data)[0], at) for data, at in rows]
    except Exception:
        return []


def _when(t) -> str:
    if t is None:
        return "?"
    if not isinstance(t, dt.datetime):
        t = dt.datetime.fromtimestamp(t, dt.timezone.utc)
    return t.astimezone().strftime("%Y-%m-%d %H:%M")


def _listener_note(state) -> str:
    if not state:
        return "the listener has recorded nothing yet (is `calltracking run` running?)"
    if state["connected_at"] and (not state["disconnected_at"] or state["connected_at"] > state["disconnected_at"]):
        return f"nor by the listener, connected since {_when(state['connected_at'])}"
    return f"nor by the listener (last connected {_when(state['connected_at'])})"


# ---------------------------------------------------------------------- checks
@check("ami login")
def _login(ctx):
    if not ctx.config.ami.enabled:
        return [Result(OK, "ami login", "AMI listener disabled ([ami] enabled = no)")]
    s = _session(ctx)
    a = ctx.config.ami
    if s["ok"]:
        return [Result(OK, "ami login", f"logged in to {a.host}:{a.port} as {a.username}")]
    return [Result(FAIL, "ami login", s["error"], MANAGER_FIX)]


@check("ami user")
def _user(ctx):
    """The user's ``read =`` in Asterisk's configuration: without ``call`` or ``agent`` the
    listener cannot follow a call (FAIL); without ``cdr`` or ``dialplan`` it loses the Cdr
    cross-check and the CT_* variables (WARN). Unreadable configuration: INFO, not checked."""
    if not ctx.config.ami.enabled:
        return []
    u = user_read(ctx)
    if not u.readable:
        return [Result(INFO, "ami user", f"read classes not checked: {u.where}", UNREADABLE_FIX)]
    if u.classes is None:
        return [Result(WARN, "ami user", u.where, "install manager_calltracking.conf and its `#include` in "
                       "manager.conf (install.sh does both), then `asterisk -rx 'manager reload'`")]
    shown = f"{u.where}: read = {u.value if u.value is not None else '(none)'}"
    missing = [c for c in REQUIRED if c not in u.classes]
    if not missing:
        return [Result(OK, "ami user", shown)]
    status = FAIL if "call" in missing or "agent" in missing else WARN
    return [Result(status, "ami user", f"{shown}: cannot read " + "; ".join(f"{c} ({REQUIRED[c]})" for c in missing),
                   f"set `{READ_LINE}` in that section of {u.file} (class names as written, between "
                   "commas, no spaces), then `asterisk -rx 'manager reload'`")]


@check("ami events")
def _events(ctx):
    """Which event classes arrive, at the probe or at the listener (last 7 days).

    Nothing of a call yet is INFO "no traffic yet". Events that only a call produces
    (``dialplan``, ``cdr``) without any of class ``call`` mean the user cannot read call events:
    FAIL when the listener saw it, WARN when only the 2-second probe did. A class missing after
    the listener stored calls is a WARN, unless the user's read= grants it (not seen yet: no
    queue call, say); a missing ``cdr`` with cdr_manager.conf not enabled is a WARN.
    """
    if not ctx.config.ami.enabled:
        return []
    s = _session(ctx)
    if not s["ok"]:
        return []
    probe_seen = {_class(f) for f in s["events"]} & set(REQUIRED)
    state = _listener_state(ctx)
    listener_seen = {c for c, t in (state["classes"] if state else {}).items()
                     if t >= time.time() - RECENT} & set(REQUIRED)
    seen = probe_seen | listener_seen
    if "call" not in seen:
        if not seen & CALL_ONLY:
            only = f" (events of class {', '.join(sorted(seen))} only)" if seen else ""
            return [Result(INFO, "ami events", f"no traffic yet{only}: no call events during the "
                           f"{PROBE_SECONDS:.0f} s probe, {_listener_note(state)}", "run doctor again during a call")]
        proof = ", ".join(sorted(seen & CALL_ONLY))
        if listener_seen & CALL_ONLY:
            return [Result(FAIL, "ami events", f"the listener saw calls in the last {RECENT // 86400} days "
                           f"(events of class {proof}) but no event of class call", MANAGER_FIX)]
        return [Result(WARN, "ami events", f"during the {PROBE_SECONDS:.0f} s probe a call's events of class "
                       f"{proof} arrived but none of class call", MANAGER_FIX)]
    text = "event classes arriving: " + ", ".join(c for c in REQUIRED if c in seen)
    missing = [c for c in REQUIRED if c not in seen]
    if not missing:
        return [Result(OK, "ami events", text)]
    if not _stored_call_events(ctx):
        return [Result(INFO, "ami events", f"{text}; not seen yet: {', '.join(missing)} (the listener has "
                       "stored no call yet)")]
    granted = user_read(ctx).classes
    status, notes, fix = OK, [], ""
    for c in missing:
        if c == "cdr":
            cdr, path, _ = _conf(ctx, "cdr_manager.conf")
            if cdr is not None and not ast_true(cdr.value(cdr.find("general"), "enabled")):
                status = WARN
                fix = fix or (f"set `enabled = yes` in [general] of {path}, then "
                              "`asterisk -rx 'module reload cdr_manager.so'`")
                notes.append(f"cdr ({path} does not enable it)")
                continue
        if granted is not None and c in granted:
            notes.append(f"{c} (granted by read=; no such event yet)")
        else:
            status, fix = WARN, fix or MANAGER_FIX
            notes.append(f"{c}: {REQUIRED[c]}" + ("" if granted is None else " (not in the user's read=)"))
    return [Result(status, "ami events", f"{text}; none of " + "; ".join(notes), fix)]


@check("ami timestampevents")
def _timestamps(ctx):
    """Call events carry Asterisk's Timestamp (WARN when not), judged on the probe's call events,
    else on the latest call events the listener stored. With no call yet: manager.conf's
    ``timestampevents`` when readable (WARN when not yes), else INFO "not checked"."""
    if not ctx.config.ami.enabled:
        return []
    s = _session(ctx)
    if not s["ok"]:
        return []
    conf, path, err = _conf(ctx, "manager.conf")
    fix = (f"set `timestampevents = yes` in the [general] section of {path} and run "
           "`asterisk -rx 'manager reload'` (without it, event times are the listener's receive times)")
    evs = [f for f in s["events"] if _is_call_event(f)]
    if evs:
        bare = sum("Timestamp" not in f for f in evs)
        if not bare:
            return [Result(OK, "ami timestampevents", f"the {len(evs)} call events of the probe carry "
                           "Asterisk's Timestamp")]
        return [Result(WARN, "ami timestampevents", f"{bare} of {len(evs)} call events of the probe had no "
                       "Timestamp", fix)]
    stored = _stored_call_events(ctx)
    if stored:
        bare = sum("Timestamp" not in ev for ev, _ in stored)
        latest, at = stored[0]
        if "Timestamp" in latest:
            since = f" ({bare} of the last {len(stored)} did not: switched on since)" if bare else ""
            return [Result(OK, "ami timestampevents", "the latest call events the listener stored carry "
                           f"Asterisk's Timestamp{since}")]
        return [Result(WARN, "ami timestampevents", f"{bare} of the last {len(stored)} call events the "
                       f"listener stored had no Timestamp (the latest at {_when(at)})", fix)]
    if conf is None:
        return [Result(INFO, "ami timestampevents", f"not checked: no call events yet ({err})")]
    if ast_true(conf.value(conf.find("general"), "timestampevents")):
        return [Result(INFO, "ami timestampevents", f"not checked: no call events yet ({path} sets "
                       "timestampevents = yes)")]
    return [Result(WARN, "ami timestampevents", f"{path} [general] does not set timestampevents = yes "
                   "(no call events yet to confirm)", fix)]


@check("ami clock skew")
def _skew(ctx):
    if not ctx.config.ami.enabled:
        return []
    s = _session(ctx)
    if not s["ok"]:
        return []
    if not s["ping"] or not s["ping"][0]:
        return [Result(WARN, "ami clock skew", "Asterisk's Ping answer has no Timestamp; cannot measure")]
    ts, t0, t1 = s["ping"]
    try:
        skew = float(ts) - (t0 + t1) / 2
    except ValueError:
        return [Result(WARN, "ami clock skew", f"unreadable Timestamp {ts!r}")]
    text = f"Asterisk's clock is {skew:+.3f} s from this host's"
    fix = "synchronise both clocks (systemd-timesyncd or chrony); call times come from Asterisk's clock"
    if abs(skew) < 1.0:
        return [Result(OK, "ami clock skew", text)]
    return [Result(WARN if abs(skew) < 5.0 else FAIL, "ami clock skew", text, fix)]
