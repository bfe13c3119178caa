"""The client's address behind reverse proxies (``[web] trusted_proxies``).

The rule: the peer of the TCP connection is the client, unless the peer is one of the trusted
proxies. Then ``X-Forwarded-For`` is read from the right: a hop that is itself a trusted proxy
is skipped, the first one that is not is the client. Whatever a client writes into the header
itself stands left of the hops the proxies appended, so it is never reached while a trusted
proxy appended its own peer (nginx ``$proxy_add_x_forwarded_for``) or replaced the header with
it (``$remote_addr``). A malformed hop ends the walk at the last address known good.

Used by the web UI (:class:`TrustedProxies`, a WSGI middleware) and by the DNI server
(:func:`client_address` on its peer and header).
"""
from __future__ import annotations

import ipaddress
import re
from typing import Iterable, Optional

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_BRACKETED = re.compile(r"\[([0-9A-Fa-f:.%]+)\](?::\d{1,5})?")
_V4_PORT = re.compile(r"(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}")

#: request headers (WSGI names) through which a proxy says who the client is
FORWARDED_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST",
                     "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_BY", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def parse_address(text: str) -> Optional[IPAddress]:
    """An address as proxies write it (``203.0.113.5``, ``2001:db8::1``, ``[2001:db8::1]:443``,
    ``203.0.113.5:8080``); an IPv4-mapped IPv6 address is its IPv4 address. None if malformed."""
    s = (text or "").strip().strip('"')
    m = _BRACKETED.fullmatch(s) or _V4_PORT.fullmatch(s)
    if m:
        s = m.group(1)
    try:
        ip = ipaddress.ip_address(s)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_trusted(ip: Optional[IPAddress], trusted: Iterable) -> bool:
    return ip is not None and any(ip in net for net in trusted)


def client_address(peer: str, forwarded_for: Optional[str], trusted: Iterable) -> str:
    """The client's address: ``peer`` unless it is in ``trusted`` (networks), then the rightmost
    ``X-Forwarded-For`` hop that is not a trusted proxy (see the module's rule)."""
    trusted = tuple(trusted)
    current = parse_address(peer)
    if not trusted or not is_trusted(current, trusted):
        return peer
    for hop in reversed((forwarded_for or "").split(",")):
        ip = parse_address(hop)
        if ip is None:
            break
        current = ip
        if not is_trusted(ip, trusted):
            break
    return str(current)


class TrustedProxies:
    """WSGI middleware: ``REMOTE_ADDR`` becomes :func:`client_address`; from a trusted proxy,
    ``X-Forwarded-Proto`` (``http``/``https``) sets ``wsgi.url_scheme``. The forwarded headers
    are then removed, from every peer, so nothing further in reads them again. The proxy's own
    address stays in ``calltracking.proxy_peer``. With no trusted proxy this does nothing (the
    production server, waitress, then drops the forwarded headers itself)."""

    def __init__(self, app, trusted: Iterable):
        self.app, self.trusted = app, tuple(trusted)

    def __call__(self, environ, start_response):
        if self.trusted:
            peer = environ.get("REMOTE_ADDR") or ""
            if is_trusted(parse_address(peer), self.trusted):
                environ["calltracking.proxy_peer"] = peer
                environ["REMOTE_ADDR"] = client_address(peer, environ.get("HTTP_X_FORWARDED_FOR"),
                                                        self.trusted)
                proto = (environ.get("HTTP_X_FORWARDED_PROTO") or "").split(",")[-1].strip().lower()
                if proto in ("http", "https"):
                    environ["wsgi.url_scheme"] = proto
            for name in FORWARDED_HEADERS:
                environ.pop(name, None)
        return self.app(environ, start_response)
