"""The classic AGI script (stdin/stdout, pyst2), for sites that cannot run the FastAGI daemon.

Asterisk runs it once per call: ``AGI(calltracking,route,${EXTEN},${CHANNEL(linkedid)})``;
the first argument names the hook, the others are the hook's arguments (the
same as FastAGI's). It drives the same dialog as the FastAGI server
(``agi/protocol.py``) and calls the same hooks, within the same
``[agi] timeout_ms`` budget for the database work: the work runs in a daemon
thread, and when it is late or fails the channel gets the defaults.

``install.sh`` puts a wrapper into Asterisk's agi-bin that runs
``/opt/calltracking/bin/python -m agi.classic "$@"``.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time

from calltracking import hooks

from agi import protocol as p

log = logging.getLogger("calltracking.agi.classic")


class _Channel:
    """pyst2's AGI object, quiet (it echoes every line to stderr, which Asterisk logs)."""

    def __init__(self, stdin, stdout):
        from asterisk.agi import AGI

        self.agi = AGI(stdin=stdin, stdout=stdout, stderr=open(os.devnull, "w"))

    def command(self, line: str) -> p.Reply:
        from asterisk.agi import AGIAppError, AGIError, AGIHangup

        try:
            res = self.agi.execute(line)
        except AGIHangup as e:
            raise p.Hangup(str(e)) from None
        except AGIAppError as e:              # result=-1: hangup or failure
            raise p.Hangup(str(e)) from None
        except AGIError as e:                 # 510/520: Asterisk refused the command
            return p.Reply(510, "", "", str(e))
        value, data = res.get("result", ("", ""))
        return p.Reply(200, value, data or "", "")


def _run_work(step: p.Work, budget: hooks.Budget) -> dict:
    box: dict = {}

    def target():
        try:
            box["value"] = step.fn(budget)
        except BaseException as e:  # noqa: BLE001
            box["error"] = e

    t = threading.Thread(target=target, daemon=True, name="agi-db")
    t.start()
    t.join(max(budget.remaining(), 0.001))
    if "value" in box:
        return box["value"]
    budget.cancelled = True
    err = box.get("error")
    if err is None:
        log.warning("%s took longer than the budget; answered with defaults", step.what)
    else:
        log.warning("%s failed (%s: %s); answered with defaults", step.what, type(err).__name__,
                    str(err).splitlines()[0] if str(err) else "")
    return step.fallback()


def serve(env: hooks.HookEnv, stdin=None, stdout=None) -> int:
    """Answer one AGI request on stdin/stdout. Returns the exit status."""
    chan = _Channel(stdin or sys.stdin, stdout or sys.stdout)
    req = p.parse_request(dict(chan.agi.env), classic=True)
    gen = p.dialog(env, req)
    value, started, rescued = None, time.monotonic(), False
    while True:
        try:
            step = gen.send(value)
        except StopIteration:
            return 0
        except p.Hangup:
            return 0
        except Exception:  # noqa: BLE001 - still answer the channel
            log.exception("%s: dialog failed; answering with defaults", req.hook)
            if rescued:
                return 1
            rescued = True
            gen = p.set_all(hooks.defaults(env, "route", req.arg(1), req.arg(2)), env.config.agi.mset)
            value = None
            continue
        try:
            if isinstance(step, p.Work):
                budget = hooks.Budget(p.budget_seconds(env.config) - (time.monotonic() - started))
                value = _run_work(step, budget)
                started = time.monotonic()
            else:
                value = chan.command(step.line)
                if step.line.startswith("GET DATA"):
                    started = time.monotonic()
        except p.Hangup:
            return 0


def _fallback_only(config, stdin, stdout) -> int:
    """No database at all (cannot even build the engine): answer the defaults."""
    env = hooks.HookEnv(config, session_factory=None)
    chan = _Channel(stdin, stdout)
    req = p.parse_request(dict(chan.agi.env), classic=True)
    kind = req.hook if req.hook in ("promo", "tag") else "route"
    for name, value in hooks.defaults(env, kind, req.arg(1), req.arg(2)).items():
        chan.command(p.set_variable(name, value))
    return 0


def _warm_up(config) -> None:
    """One-time CPU work of a fresh process, done before the time budget starts."""
    from sqlalchemy.orm import configure_mappers

    try:
        configure_mappers()
        hooks.normalize("+74950000000", config.general.default_region)   # loads the metadata
    except Exception:  # noqa: BLE001 - only an optimisation
        pass


def main(argv=None) -> int:
    started = time.monotonic()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="calltracking-agi %(levelname)s: %(message)s")
    from calltracking.config import Config, load_config

    try:
        config = load_config()
    except Exception as e:  # noqa: BLE001 - a broken config must not leave the channel waiting
        log.error("configuration error: %s; answering with built-in defaults", e)
        return _fallback_only(Config(), sys.stdin, sys.stdout)
    try:
        from calltracking.db import engine_from_config, make_sessionmaker

        engine = engine_from_config(config)
        factory = make_sessionmaker(engine)
    except Exception as e:  # noqa: BLE001
        log.error("cannot open the database: %s", e)
        return _fallback_only(config, sys.stdin, sys.stdout)
    env = hooks.HookEnv(config, factory, cache=hooks.HookCache(rules_ttl=0))
    _warm_up(config)
    try:
        rc = serve(env)
    except Exception:  # noqa: BLE001
        log.exception("AGI script failed")
        rc = 1
    log.debug("answered in %.1f ms", (time.monotonic() - started) * 1000)
    sys.stdout.flush()
    # A database thread that is still stuck must not keep the channel's AGI waiting.
    os._exit(rc)


if __name__ == "__main__":
    main()
