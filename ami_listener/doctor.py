"""`calltracking doctor` checks of the AMI side: login, event classes, timestamps, clock skew.

One short AMI session (login, Ping, a few seconds of events) is shared by the
checks; what the running listener recorded in ``ami_listener_state`` fills in
when the PBX is idle during the probe.
"""
from __future__ import annotations

import socket
import time

from calltracking.doctor import FAIL, OK, WARN, Result, check
from calltracking.interpret import FrameParser

PROBE_SECONDS = 2.0
#: event class -> what needs it
REQUIRED = {"call": "channels, dials, bridges, hangups", "agent": "queue events (QueueCallerJoin, AgentConnect…)",
            "cdr": "the Cdr cross-check (cdr_manager.conf enabled = yes)",
            "dialplan": "VarSet: CT_* variables, QUEUESTATUS, MIXMONITOR_FILENAME"}
MANAGER_FIX = ("check /etc/asterisk/manager_calltracking.conf (user, secret, permit 127.0.0.1, "
               "read = call,cdr,agent,dialplan,user) and manager.conf [general] enabled = yes, then "
               "`asterisk -rx 'manager reload'`")


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
                elif "Event" in f:
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


def _listener_state(ctx):
    try:
        from calltracking.calls_store import CallStore

        return CallStore(ctx.sessionmaker, ctx.config.general.pbx_id).listener_state()
    except Exception:
        return None


@check("ami login")
def _login(ctx):
    if not ctx.config.ami.enabled:
        return [Result(OK, "ami login", "AMI listener disabled ([ami] enabled = no)")]
    s = _session(ctx)
    a = ctx.config.ami
    if s["ok"]:
        return [Result(OK, "ami login", f"logged in to {a.host}:{a.port} as {a.username}")]
    return [Result(FAIL, "ami login", s["error"], MANAGER_FIX)]


@check("ami events")
def _events(ctx):
    if not ctx.config.ami.enabled:
        return []
    s = _session(ctx)
    seen = {f.get("Privilege", "").split(",", 1)[0] for f in s["events"] if f.get("Privilege")}
    state = _listener_state(ctx)
    week_ago = time.time() - 7 * 86400
    if state:
        seen |= {c for c, t in state["classes"].items() if t >= week_ago}
    missing = [c for c in REQUIRED if c not in seen]
    if not missing:
        return [Result(OK, "ami events", "event classes arriving: " + ", ".join(sorted(seen & set(REQUIRED))))]
    if not seen and not (state and state["events"]):
        return [Result(WARN, "ami events", "no events seen yet (idle PBX?); cannot tell which classes arrive",
                       "run doctor again during a call")]
    detail = "; ".join(f"{c} ({REQUIRED[c]})" for c in missing)
    status = FAIL if "call" in missing or "agent" in missing else WARN
    return [Result(status, "ami events", f"no events of class: {detail}", MANAGER_FIX)]


@check("ami timestampevents")
def _timestamps(ctx):
    if not ctx.config.ami.enabled:
        return []
    s = _session(ctx)
    fix = ("set `timestampevents = yes` in the [general] section of /etc/asterisk/manager.conf and run "
           "`asterisk -rx 'manager reload'` (without it, event times are the listener's receive times)")
    evs = [f for f in s["events"] if f.get("Event") not in ("FullyBooted",)]
    if evs:
        if all("Timestamp" in f for f in evs):
            return [Result(OK, "ami timestampevents", "events carry Asterisk's Timestamp")]
        return [Result(WARN, "ami timestampevents", "events arrive without a Timestamp header", fix)]
    state = _listener_state(ctx)
    if state and state["events"]:
        if state["without_timestamp"] * 10 > state["events"]:
            return [Result(WARN, "ami timestampevents",
                           f"{state['without_timestamp']} of {state['events']} events had no Timestamp", fix)]
        return [Result(OK, "ami timestampevents", "events seen by the listener carry a Timestamp")]
    return [Result(WARN, "ami timestampevents", "could not verify (no events during the probe)", fix)]


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
