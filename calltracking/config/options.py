"""The option machinery of the configuration: :func:`opt` declares a key, the converters
check and type its value, :class:`ConfigError` names what is wrong.

A key is a dataclass field whose metadata holds ``conv`` (the converter: the raw string ->
the typed value, or :class:`ValueError` with a message for the user), ``doc`` and ``secret``
(shown as ``********`` by ``calltracking config``). Every converter strips blanks first.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import field
from typing import Any, Callable

from calltracking import settings_rules


class ConfigError(ValueError):
    """A configuration value is missing or invalid."""

    def __init__(self, source: str, section: str, key: str, message: str):
        self.source, self.section, self.key = source, section, key
        super().__init__(f"{source}: [{section}] {key}: {message}")


def opt(default: Any, conv: Callable[[str], Any], doc: str = "", secret: bool = False):
    """A key of a section: its default, its converter, its one-line help, whether it is secret."""
    return field(default=default, metadata={"conv": conv, "doc": doc, "secret": secret})


def text(v: str) -> str:
    """Any text, without the blanks around it."""
    return v.strip()


def yes_no(v: str) -> bool:
    """1/yes/true/on or 0/no/false/off (any case); empty is no."""
    s = v.strip().lower()
    if s in ("1", "yes", "true", "on"):
        return True
    if s in ("0", "no", "false", "off", ""):
        return False
    raise ValueError(f"expected yes/no, got {v!r}")


def integer(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """An integer within [lo, hi] (a missing bound: none)."""
    def conv(v: str) -> int:
        try:
            n = int(v.strip())
        except ValueError:
            raise ValueError(f"expected an integer, got {v!r}") from None
        if lo is not None and n < lo:
            raise ValueError(f"must be >= {lo}, got {n}")
        if hi is not None and n > hi:
            raise ValueError(f"must be <= {hi}, got {n}")
        return n

    return conv


def number(lo: float | None = None) -> Callable[[str], float]:
    """A number, at least ``lo`` (None: any)."""
    def conv(v: str) -> float:
        try:
            n = float(v.strip())
        except ValueError:
            raise ValueError(f"expected a number, got {v!r}") from None
        if lo is not None and n < lo:
            raise ValueError(f"must be >= {lo}, got {n}")
        return n

    return conv


def iana_zone(v: str) -> str:
    """An IANA time zone name (:func:`calltracking.settings_rules.timezone`)."""
    return settings_rules.timezone(v.strip())


def hostport(v: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port); an empty host is 127.0.0.1."""
    s = v.strip()
    m = re.fullmatch(r"\[?([^\]]*?)\]?:(\d{1,5})", s)
    if not m:
        raise ValueError(f"expected HOST:PORT, got {v!r}")
    port = int(m.group(2))
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in {v!r}")
    return m.group(1) or "127.0.0.1", port


def listen_or_off(v: str):
    """HOST:PORT, or empty: not started."""
    return hostport(v) if v.strip() else None


def choice(*options: str) -> Callable[[str], str]:
    """One of ``options`` (lower case; the value may be written in any case)."""
    def conv(v: str) -> str:
        s = v.strip().lower()
        if s not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {v!r}")
        return s

    return conv


def region(v: str) -> str:
    """A two-letter ISO region code, upper case."""
    s = v.strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", s):
        raise ValueError(f"expected a two-letter ISO region code such as RU, got {v!r}")
    return s


def currency_code(v: str) -> str:
    """A three-letter ISO 4217 currency code, upper case."""
    s = v.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", s):
        raise ValueError(f"expected a three-letter ISO 4217 currency code such as RUB, got {v!r}")
    return s


def ident(v: str) -> str:
    """1-64 letters, digits, ``_``, ``.``, ``-``."""
    s = v.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", s):
        raise ValueError(f"expected 1-64 letters, digits, '_', '.', '-', got {v!r}")
    return s


def dburl(v: str) -> str:
    """A ``sqlite:///`` or ``postgresql://`` SQLAlchemy URL (a ``+driver`` may follow the scheme)."""
    s = v.strip()
    if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", s):
        raise ValueError(f"expected a sqlite:/// or postgresql:// URL, got {v!r}")
    return s


def contexts(v: str) -> tuple:
    """``from-internal, sales-out`` -> ("from-internal", "sales-out"); empty -> ()."""
    out = []
    for part in v.split(","):
        name = part.strip()
        if not name:
            continue
        if not re.fullmatch(r"[A-Za-z0-9_.+-]{1,80}", name):
            raise ValueError(f"not a dialplan context name: {name!r} (expected a comma-separated list)")
        if name not in out:
            out.append(name)
    return tuple(out)


def networks(v: str) -> tuple:
    """``127.0.0.1/8, ::1`` -> (IPv4Network('127.0.0.0/8'), IPv6Network('::1/128')).

    Comma-separated IPv4/IPv6 addresses (one host each) and CIDR networks (host bits may be
    set: ``127.0.0.1/8`` is ``127.0.0.0/8``). Host names are refused (no DNS at accept time);
    an empty list is refused, since no peer could connect (``0.0.0.0/0, ::/0`` admits any).
    """
    out = []
    for part in v.split(","):
        s = part.strip()
        if not s:
            continue
        try:
            net = ipaddress.ip_network(s, strict=False)
        except ValueError:
            raise ValueError(f"not an IP address or network: {s!r} (expected a comma-separated "
                             "list such as 127.0.0.1/8, ::1, 192.0.2.10)") from None
        if net not in out:
            out.append(net)
    if not out:
        raise ValueError("is empty: no peer could connect (0.0.0.0/0, ::/0 admits any address)")
    return tuple(out)


def proxies(v: str) -> tuple:
    """Empty -> (); else :func:`networks`. A ``/0`` network is refused: it would believe the
    forwarded address of any peer, so every client could pick its own address."""
    if not v.strip():
        return ()
    nets = networks(v)
    if any(n.prefixlen == 0 for n in nets):
        raise ValueError("a /0 network would trust every peer's X-Forwarded-For; list the proxies' "
                         "own addresses (e.g. 127.0.0.1, ::1)")
    return nets


def command_line(v: str) -> tuple:
    """A program and its arguments split like a shell would (quotes kept together, nothing
    expanded or run by a shell): ``/opt/stt --lang ru "{wav}"`` -> ("/opt/stt", "--lang", "ru",
    "{wav}"); empty -> ()."""
    import shlex

    try:
        return tuple(shlex.split(v.strip()))
    except ValueError as e:
        raise ValueError(f"cannot split into a program and its arguments: {e}") from None


#: converters whose value is a tuple of items, shown as a comma-separated list (any other tuple
#: is a (host, port) shown as HOST:PORT)
LIST_CONVERTERS = (contexts, networks, proxies, command_line)
