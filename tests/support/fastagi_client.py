"""Asterisk's side of FastAGI: the request header Asterisk 22 sends (recorded), and the answers
res_agi gives to each command, on a real loopback socket.

    res = call(port, headers("route", ("74950001001", "1795391970.0")))
    res.vars["CT_QUEUE"]
"""
from __future__ import annotations

import asyncio
import json
import socket

from support.fixtures import FIXTURES

#: The FastAGI session recorded from Asterisk 22 (``fastagi_route_session.json``).
RECORDED = json.loads((FIXTURES / "fastagi_route_session.json").read_text())[0]
HEADERS = RECORDED["asterisk_sent_headers"]


def headers(hook="route", args=("74950001001", "1795391970.0"), **fields) -> list[str]:
    """The header Asterisk 22 sent (fixture), with another hook, arguments or fields."""
    out = []
    for line in HEADERS:
        key = line.split(":", 1)[0]
        if key.startswith("agi_arg_"):
            continue
        if key == "agi_network_script":
            line = f"agi_network_script: {hook}"
        elif key == "agi_request":
            line = f"agi_request: agi://127.0.0.1:4573/{hook}"
        elif key in fields:
            line = f"{key}: {fields[key]}"
        out.append(line)
    out += [f"agi_arg_{i}: {a}" for i, a in enumerate(args, 1)]
    return out


class CallResult:
    """What one FastAGI call did: the commands the server sent, the variables set, whether the
    server closed the connection."""

    def __init__(self):
        self.commands: list[str] = []
        self.vars: dict[str, str] = {}
        self.closed = False


def unquote(arg: str) -> str:
    """What res_agi's parser makes of a quoted argument."""
    assert arg.startswith('"') and arg.endswith('"'), arg
    out, esc = [], False
    for ch in arg[1:-1]:
        if esc:
            out.append(ch)
            esc = False
        elif ch == "\\":
            esc = True
        else:
            assert ch != '"', f"unescaped quote in {arg!r}"
            out.append(ch)
    return "".join(out)


def agi_argv(cmd: str) -> list[str]:
    """res_agi's parse_args: words split on blanks, double quotes group, backslash escapes."""
    args: list[str] = []
    cur: list[str] = []
    quoted = escaped = started = False
    for ch in cmd:
        if escaped:
            cur.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch in " \t" and not quoted:
            if cur or started:
                args.append("".join(cur))
            cur, started = [], False
            continue
        else:
            cur.append(ch)
        started = True
    if cur or started:
        args.append("".join(cur))
    return args


def separate_args(buf: str, delim: str, arraylen: int = 99) -> list[str]:
    """A port of Asterisk's ``__ast_app_separate_args`` with ``remove_chars`` (AST_STANDARD_APP_ARGS):
    the delimiter splits outside quotes, parentheses and brackets; quotes are removed; a
    backslash makes the next character literal; the last slot takes the rest."""
    out: list[str] = []
    i, n = 0, len(buf)
    wasdelim = False
    while i < n and len(out) < arraylen - 1:
        cur: list[str] = []
        paren = quote = bracket = 0
        wasdelim = False
        while i < n:
            ch = buf[i]
            if ch == "(":
                paren += 1
            elif ch == ")":
                paren = max(0, paren - 1)
            elif ch == "[":
                bracket += 1
            elif ch == "]":
                bracket = max(0, bracket - 1)
            elif ch == '"' and delim != '"':
                quote ^= 1
                i += 1
                continue
            elif ch == "\\":
                i += 1
                if i < n:
                    cur.append(buf[i])
                    i += 1
                continue
            elif ch == delim and not paren and not quote and not bracket:
                wasdelim = True
                i += 1
                break
            cur.append(ch)
            i += 1
        out.append("".join(cur))
    if i < n:
        out.append(buf[i:])
    elif wasdelim:
        out.append("")
    return out


def mset(data: str, variables: dict[str, str]) -> None:
    """Asterisk's MSet(name1=value1,name2=value2,...) (pbx_builtin_setvar_multiple)."""
    for pair in separate_args(data, ","):
        parts = separate_args(pair, "=", 2)
        if len(parts) == 2:
            variables[parts[0]] = parts[1]


def answer(cmd: str, res: CallResult, digits: list[str], apps=("MSet",)) -> str:
    """What Asterisk answers to one AGI command (and what it does to ``res``): ``SET VARIABLE``
    and ``EXEC MSet`` set variables, ``GET DATA`` takes the next of ``digits``, ``EXEC`` of an
    application Asterisk lacks answers ``result=-2``."""
    res.commands.append(cmd)
    if cmd.startswith("EXEC "):
        argv = agi_argv(cmd)
        if len(argv) < 2:
            return "520 Invalid command syntax.  Proper usage not available."
        if argv[1] not in apps:
            return "200 result=-2"
        if argv[1] == "MSet":
            mset(argv[2] if len(argv) > 2 else "", res.vars)
        return "200 result=0"
    if cmd.startswith("SET VARIABLE "):
        name, _, value = cmd[len("SET VARIABLE "):].partition(" ")
        res.vars[name] = unquote(value)
        return "200 result=1"
    if cmd.startswith("GET DATA "):
        typed = digits.pop(0) if digits else ""
        return f"200 result={typed}" + ("" if typed else " (timeout)")
    if cmd.startswith("STREAM FILE"):
        return "200 result=0 endpos=1000"
    return "200 result=1"


def call(port: int, lines: list[str], digits=(), timeout=10.0, apps=("MSet",)) -> CallResult:
    """One FastAGI request the way Asterisk makes it (blocking socket); ``apps``: the dialplan
    applications this Asterisk has (EXEC of another one answers ``result=-2``)."""
    res, digits = CallResult(), list(digits)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(("\n".join(lines) + "\n\n").encode())
        f = s.makefile("rb")
        while True:
            raw = f.readline()
            if not raw:
                res.closed = True
                return res
            s.sendall((answer(raw.decode().rstrip("\n"), res, digits, apps) + "\n").encode())


async def acall(port: int, lines: list[str], digits=()) -> CallResult:
    """:func:`call` on asyncio streams (many calls at once on one event loop)."""
    res, digits = CallResult(), list(digits)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(("\n".join(lines) + "\n\n").encode())
    while True:
        raw = await reader.readline()
        if not raw:
            break
        writer.write((answer(raw.decode().rstrip("\n"), res, digits) + "\n").encode())
    writer.close()
    res.closed = True
    return res
