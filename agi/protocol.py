"""The AGI protocol, shared by the FastAGI server and the classic script (no I/O here).

Asterisk opens with ``agi_name: value`` lines and a blank line; then the
script sends commands (``SET VARIABLE CT_QUEUE "sales"``) and reads one reply
each (``200 result=1``). A hook's conversation is a generator
(:func:`dialog`) that yields :class:`Command` (send it, get the :class:`Reply`
back) and :class:`Work` (run this database function within the time budget,
get its result back, or its fallback when it failed or was too slow). Each
adapter drives the same generator with its own I/O.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Callable, Generator, Optional

from calltracking import hooks

MAX_LINE = 4096            # bytes in one header line
MAX_HEADER = 32 * 1024     # bytes in the whole header
MAX_LINES = 300            # header lines (Asterisk sends ~25 plus the arguments)
MAX_VALUE = 250            # characters of a value we send back

_KEY = re.compile(r"agi_[a-z0-9_]{1,40}")
_REPLY = re.compile(r"^(\d{3})(?:[ -](.*))?$")
_RESULT = re.compile(r"result=(-?\d*)(?:\s+\((.*)\))?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Values MSet passes through unchanged: no separators (, |), quotes, backslashes, brackets,
# parentheses, '=' or '$'; letters of any script, digits and a few punctuation marks.
_WORDS = r"[\w.:+@/#*-]+(?: [\w.:+@/#*-]+)*"
_MSET_SAFE = re.compile(_WORDS + "|")
_KEY_SAFE = re.compile(r"CT_[A-Z0-9_]{1,40}")
# A caller-ID name MSet passes through unchanged: such words, with a label of such words in
# balanced brackets in front (``[Ads] Plain Name``; Asterisk's argument parser keeps brackets
# and only nests separators inside them, and there are none): proved on Asterisk 22 by
# tests/live/test_live_callerid.py. Any other name goes by SET VARIABLE.
_NAME_SAFE = re.compile(rf"\[{_WORDS}\](?: {_WORDS})?|{_WORDS}")
#: The function MSet may set besides CT_* variables (``pbx_builtin_setvar_helper`` writes a
#: name ending in ``)`` as a function).
CALLERID_NAME = "CALLERID(name)"
MSET_LINE = 1000           # bytes per EXEC MSet command (res_agi reads commands of up to 2 KB)


class HeaderError(ValueError):
    """The peer did not send a valid AGI header."""


class Hangup(Exception):
    """The channel is gone (HANGUP, 511, result=-1 or a closed connection)."""


def parse_header_line(line: bytes, env: dict[str, str]) -> bool:
    """Add one header line to ``env``; True when it was the closing blank line."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        text = line.decode("latin-1")
    return _header_text(text, env)


def parse_header_lines(block: bytes, env: dict[str, str]) -> None:
    """:func:`parse_header_line` for each line of ``block`` (lines without the closing blank
    one), the block decoded at once (per line when it is not all UTF-8): Asterisk's ~25
    lines a call, one at a time, were 3 % of the event loop's time at saturation."""
    try:
        lines = block.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        for line in block.split(b"\n"):
            parse_header_line(line, env)
        return
    for text in lines:
        _header_text(text, env)


def _header_text(text: str, env: dict[str, str]) -> bool:
    text = text.rstrip("\r\n")
    if text == "":
        if not env:
            raise HeaderError("empty header")
        return True
    key, sep, value = text.partition(":")
    key = key.strip()
    if not sep or not _valid_key(key):
        raise HeaderError(f"not an AGI header line: {text[:60]!r}")
    if len(env) >= MAX_LINES:
        raise HeaderError("too many header lines")
    env[key] = value.strip()
    return False


@functools.lru_cache(maxsize=1024)
def _valid_key(key: str) -> bool:
    """An AGI header key (Asterisk sends the same ~25 and the arguments' on every call)."""
    return _KEY.fullmatch(key) is not None


@dataclass
class Request:
    hook: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)

    def arg(self, n: int) -> str:
        """The n-th hook argument (1-based), '' when absent."""
        return self.args[n - 1] if 0 < n <= len(self.args) else ""

    @property
    def caller(self) -> str:
        return self.env.get("agi_callerid", "")

    @property
    def caller_name(self) -> str:
        return self.env.get("agi_calleridname", "")

    @property
    def rdnis(self) -> str:
        """The forwarding number (``REDIRECTING(from-num)``); Asterisk sends ``unknown`` for none."""
        return self.env.get("agi_rdnis", "")


def _args(env: dict[str, str]) -> list[str]:
    out, n = [], 1
    while f"agi_arg_{n}" in env:
        out.append(env[f"agi_arg_{n}"])
        n += 1
    return out


def parse_request(env: dict[str, str], classic: bool = False) -> Request:
    """Hook name and arguments.

    FastAGI: the hook is the path of ``agi://host:port/route`` (any ``?query``
    dropped) and the arguments are ``agi_arg_N``. Classic script: the first
    argument names the hook (``AGI(calltracking,route,...)``).
    """
    args = _args(env)
    if classic:
        hook = args.pop(0) if args else ""
    else:
        hook = env.get("agi_network_script") or env.get("agi_request", "").rsplit("/", 1)[-1]
    hook = hook.split("?", 1)[0].strip().strip("/").lower()
    return Request(hook=hook, args=args, env=env)


def quote(value: object) -> str:
    """A value inside double quotes, escaped the way res_agi's parser reads it.

    Quotes and backslashes get a backslash; control characters (newlines end
    an AGI command) become spaces. Caller-ID names are attacker-controlled.
    """
    s = _CONTROL.sub(" ", str(value))[:MAX_VALUE]
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def set_variable(name: str, value: object) -> str:
    return f"SET VARIABLE {name} {quote(value)}"


def verbose(message: str, level: int = 1) -> str:
    return f"VERBOSE {quote('calltracking: ' + message)} {level}"


@dataclass
class Reply:
    code: int
    result: str = ""
    data: str = ""
    text: str = ""


def parse_reply(line: str) -> Reply:
    m = _REPLY.match(line.strip())
    if not m:
        raise Hangup(f"unexpected reply {line[:80]!r}")
    code, rest = int(m.group(1)), m.group(2) or ""
    if code == 511:
        raise Hangup("channel is dead")
    r = _RESULT.search(rest)
    return Reply(code, r.group(1) if r else "", (r.group(2) or "") if r else "", rest)


@dataclass
class Command:
    line: str


@dataclass
class Work:
    """Database work ``fn(budget) -> dict``; ``fallback()`` answers when it fails or is late.
    ``reads_only``: ``fn`` only reads (through :meth:`hooks.HookEnv.read`), so the FastAGI server
    may run it on its event loop when the database is a local SQLite file. ``steps``: the same
    reads and result as steps (:data:`calltracking.attribution.rawsql.Reads`), which the server
    runs on its event loop's PostgreSQL connections (:mod:`agi.pg_reads`)."""

    fn: Callable[[hooks.Budget], dict]
    fallback: Callable[[], dict]
    what: str = ""
    reads_only: bool = False
    steps: Optional[Callable[[], object]] = None


@dataclass
class Write:
    """The call row to upsert (FastAGI). The server queues it at once (and spools it in the
    same pass of its loop); when the dialog ends, before the channel goes on in the dialplan,
    the row is in the spool, and the server waits for its commit at most ``[agi]
    write_wait_ms`` (0 by default: :mod:`calltracking.hooks.spool`)."""

    values: dict
    overwrite: tuple


Dialog = Generator[object, object, None]


def mset_safe(name: str, value: object) -> bool:
    """Whether ``name=value`` can go through ``EXEC MSet`` without any escaping: a ``CT_*``
    variable with a plain value, or ``CALLERID(name)`` with a plain name (its label in
    brackets allowed). Saving the name's own round trip: 11 % of a route call's CPU."""
    s = str(value)
    if len(s) > MAX_VALUE:
        return False
    if name.startswith("CT_"):
        return _ct_name(name) and _MSET_SAFE.fullmatch(s) is not None
    return name == CALLERID_NAME and _NAME_SAFE.fullmatch(s) is not None


@functools.lru_cache(maxsize=256)
def _ct_name(name: str) -> bool:
    """A ``CT_*`` name MSet can set (the hooks send the same dozen on every call)."""
    return _KEY_SAFE.fullmatch(name) is not None


def mset_lines(pairs: list[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """``EXEC MSet "A=1,B=2"`` commands (each under :data:`MSET_LINE` bytes) and their names."""
    out: list[tuple[str, list[str]]] = []
    parts: list[str] = []
    names: list[str] = []
    size = 0
    for name, value in pairs:
        part = f"{name}={value}"
        n = len(part.encode("utf-8")) + 1
        if parts and size + n > MSET_LINE:
            out.append((f'EXEC MSet "{",".join(parts)}"', names))
            parts, names, size = [], [], 0
        parts.append(part)
        names.append(name)
        size += n
    if parts:
        out.append((f'EXEC MSet "{",".join(parts)}"', names))
    return out


def set_all(variables: dict[str, str], mset: bool = True) -> Dialog:
    """Set the variables on the channel.

    With ``mset`` the plain values (:func:`mset_safe`: ``CT_*`` and a plain caller-ID name) go
    in one ``EXEC MSet`` command (one round trip instead of one per variable); the others
    (values with quotes, commas, brackets...) and everything after a refused MSet (no such
    application: ``result=-2``) go one by one with ``SET VARIABLE``, which takes any value.
    """
    pending = dict(variables)
    if mset:
        safe = [(n, str(v)) for n, v in variables.items() if mset_safe(n, v)]
        if len(safe) > 1:
            for line, names in mset_lines(safe):
                reply = yield Command(line)
                if reply.code != 200 or reply.result == "-2":
                    break
                for n in names:
                    pending.pop(n, None)
    for name, value in pending.items():
        reply = yield Command(set_variable(name, value))
        if reply.code == 510 or reply.code == 520:
            yield Command(verbose(f"Asterisk refused to set {name}"))


def dialog(env: hooks.HookEnv, req: Request) -> Dialog:
    """The whole conversation of one hook request."""
    h = req.hook
    if h == "route":
        did, linkedid = req.arg(1) or req.env.get("agi_extension", ""), req.arg(2)
        if not linkedid:
            linkedid = req.env.get("agi_uniqueid", "")
        caller = req.arg(3) or req.caller
        if env.writer is None:          # classic script: one call, written before the answer
            result = yield Work(lambda b: hooks.route(env, did, linkedid, caller, req.caller_name,
                                                      budget=b, rdnis=req.rdnis),
                                lambda: hooks.defaults(env, "route", did, linkedid), "route")
        else:                           # FastAGI: the server writes the row in a batch
            result, values = yield Work(
                lambda b: hooks.plan_route(env, did, linkedid, caller, req.caller_name, req.rdnis),
                lambda: (hooks.defaults(env, "route", did, linkedid), None), "route", reads_only=True,
                steps=lambda: hooks.plan_route_steps(env, did, linkedid, caller, req.caller_name,
                                                     req.rdnis))
            if values is not None and values["linkedid"]:
                yield Write(values, hooks.ROUTE_OVERWRITE)
        yield from set_all(result, env.config.agi.mset)
    elif h == "promo":
        yield from promo_dialog(env, req)
    elif h == "tag":
        t = hooks.TagRequest(env, req.arg(1), req.arg(2))     # its fallback still writes the tag
        result = yield Work(t.run, t.fallback, "tag")
        yield from set_all(result, env.config.agi.mset)
    elif h == "lookup":
        linkedid, did = req.arg(1) or req.env.get("agi_uniqueid", ""), req.arg(2)
        result = yield Work(lambda b: hooks.lookup(env, linkedid, did, budget=b),
                            lambda: hooks.defaults(env, "route", did, linkedid), "lookup")
        yield from set_all(result, env.config.agi.mset)
    elif h == "ping":                       # `calltracking doctor`: a real handshake, no database
        yield from set_all({"CT_STATUS": "ok"}, env.config.agi.mset)
    else:
        yield Command(verbose(f"unknown hook {h[:40]!r}; known: {', '.join(hooks.HOOKS)}"))
        yield from set_all({"CT_STATUS": "error"}, env.config.agi.mset)


def promo_dialog(env: hooks.HookEnv, req: Request) -> Dialog:
    """``promo,LINKEDID[,CODE[,PROMPT[,MAXDIGITS[,TIMEOUT_MS]]]]``.

    With CODE the hook checks it once. Without, it reads the code with
    ``GET DATA PROMPT`` and allows ``[agi] promo_retries`` more attempts after
    a wrong one, playing ``pbx-invalid`` in between.
    """
    linkedid, code = req.arg(1) or req.env.get("agi_uniqueid", ""), req.arg(2)
    prompt = re.sub(r"[^\w/.&-]", "", req.arg(3)) or "beep"     # a&b: several sound files
    maxdigits = req.arg(4) if req.arg(4).isdigit() else "8"
    timeout = req.arg(5) if req.arg(5).isdigit() else "6000"
    attempts = 1 if code else 1 + env.config.agi.promo_retries
    result: dict = {"CT_PROMO": "invalid", "CT_STATUS": "ok"}
    for attempt in range(attempts):
        if not code:
            reply = yield Command(f"GET DATA {prompt} {timeout} {maxdigits}")
            if reply.result == "-1":
                raise Hangup("hangup during GET DATA")
            typed = reply.result
        else:
            typed = code
        result = yield Work(lambda b, c=typed: hooks.promo(env, linkedid, c, budget=b),
                            lambda: hooks.defaults(env, "promo"), "promo")
        if result.get("CT_PROMO") != "invalid":
            break
        if attempt + 1 < attempts:
            yield Command('STREAM FILE pbx-invalid ""')
    result = dict(result)
    result["CT_PROMO_ATTEMPTS"] = str(attempt + 1)
    yield from set_all(result, env.config.agi.mset)


def budget_seconds(config) -> float:
    """Time for the database work: the hook budget minus a reserve for sending the answer."""
    total = config.agi.timeout_ms / 1000.0
    return max(0.005, total * 0.85 - 0.005)
