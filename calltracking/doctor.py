"""`calltracking doctor`: checks with a clear fix for each failure.

A check is a function ``(ctx) -> list[Result]`` registered with
:func:`check`; later parts (AGI, AMI, scheduler) register their own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

#: ``INFO``: nothing wrong was found, but something could not be checked (said why in the detail).
OK, INFO, WARN, FAIL = "ok", "info", "warn", "fail"


def reachable(host: str) -> str:
    """Where to connect to reach a server listening on ``host`` (a wildcard: loopback)."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


@dataclass
class Result:
    status: str
    name: str
    detail: str = ""
    fix: str = ""


CHECKS: list[tuple[str, Callable]] = []


def check(name: str):
    def deco(fn):
        CHECKS.append((name, fn))
        return fn

    return deco


def run_checks(ctx) -> list[Result]:
    results: list[Result] = []
    for name, fn in CHECKS:
        try:
            out = fn(ctx)
        except Exception as e:  # a broken check is a failed check, never a crash
            out = [Result(FAIL, name, f"check crashed: {type(e).__name__}: {e}")]
        results.extend(out or [])
    return results


@check("config")
def _config(ctx):
    from calltracking.config import ConfigError

    try:
        cfg = ctx.config
    except ConfigError as e:
        return [Result(FAIL, "config", str(e), "fix the named key in the configuration file")]
    out = [Result(OK, "config", f"loaded {cfg.path or '(no file: defaults and environment)'}")]
    try:
        cfg.require_web_secret()
        out.append(Result(OK, "web.secret_key", "set"))
    except ConfigError as e:
        out.append(Result(WARN, "web.secret_key", str(e), "the web UI will refuse to start until it is set"))
    try:
        cfg.require_ami_secret()
        out.append(Result(OK, "ami.secret", "set"))
    except ConfigError as e:
        out.append(Result(WARN, "ami.secret", str(e),
                          "the AMI listener will refuse to start until it is set"))
    return out


@check("database")
def _database(ctx):
    from sqlalchemy import text

    from calltracking.config import ConfigError
    from calltracking.migrate import current_revision, head_revision

    try:
        engine = ctx.engine
    except ConfigError:
        return []
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as e:
        return [Result(FAIL, "database", f"cannot connect to {engine.url.render_as_string(hide_password=True)}: "
                       f"{type(e).__name__}: {str(e).splitlines()[0]}",
                       "check [database] url and that the database server is running")]
    cur, head = current_revision(engine), head_revision()
    if cur is None:
        return [Result(FAIL, "database schema", "the database has no schema",
                       "run `calltracking db upgrade`")]
    if cur != head:
        return [Result(FAIL, "database schema", f"at revision {cur}, the code needs {head}",
                       "run `calltracking db upgrade`")]
    return [Result(OK, "database", f"reachable, schema at head ({head})")]
