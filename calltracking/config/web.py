"""The sections of the web side: ``[web]`` (the UI) and ``[dni]`` (the public DNI server)."""
from __future__ import annotations

from dataclasses import dataclass

from calltracking.config.options import (currency_code, hostport, integer, listen_or_off, opt, proxies, text,
                                         yes_no)

#: The placeholder shipped in config.example.ini. The web UI refuses it.
EXAMPLE_SECRET_KEY = "CHANGE-ME-run-install.sh-or-generate-one"


@dataclass(frozen=True)
class WebConfig:
    listen: tuple = opt(("127.0.0.1", 8080), hostport, "Web UI listen address")
    secret_key: str = opt("", text, "Required: random string used to sign sessions", secret=True)
    public_url: str = opt("", text, "URL under which browsers reach the UI (for links, dni.js)")
    threads: int = opt(8, integer(1, 256), "WSGI worker threads")
    secure_cookies: bool = opt(True, yes_no, "Mark session cookies Secure (needs HTTPS)")
    trusted_proxies: tuple = opt((), proxies, "Reverse proxies (addresses, CIDR networks) whose "
                                 "X-Forwarded-For and X-Forwarded-Proto are believed, by the web UI "
                                 "and the DNI server; empty: none (the peer is the client)")
    currency: str = opt("RUB", currency_code, "ISO 4217 code of the money shown in the UI (values, spend)")


@dataclass(frozen=True)
class DniConfig:
    listen: object = opt(("127.0.0.1", 8081), listen_or_off, "Address of the asyncio server of the public "
                         "DNI endpoints (dni.js, /api/dni/*), started next to the web UI; empty: not started")
    max_holds_per_client: int = opt(4, integer(1, 1_000_000), "Pool numbers one client (an IPv4 address, an "
                                    "IPv6 /64) may hold at once in a pool; beyond it a new visitor gets the "
                                    "fallback number")
    max_holds_per_visitor: int = opt(3, integer(1, 1000), "Numbers one visitor id may hold at once (in "
                                     "different pools of a project)")
    rate_per_minute: int = opt(120, integer(1), "Requests a minute to /api/dni/* per client")
    rate_burst: int = opt(60, integer(1), "Burst of requests above the rate per client")
    callback_per_client: int = opt(20, integer(1, 100_000), "Callback requests (/api/dni/callback) an hour "
                                   "per client, whatever their answer")
    callback_per_visitor: int = opt(3, integer(1, 1000), "Callback requests with a valid number an hour "
                                    "per visitor id")
