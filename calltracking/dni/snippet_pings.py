"""Where and when the website snippet runs: one row per (project, page origin).

On every page load the snippet (``webui/static/dni.js``) says that it ran: its number request
carries ``snippet`` (its version), ``origin`` and ``page`` (the path), and when it sends no
number request (a page restored from the browser's back/forward cache, a browser without
``fetch``) it posts the same fields alone to ``/api/dni/ping``. The rules:

- **Origin**: the browser's ``Origin`` header when there is one (page scripts cannot change
  it), else the body's ``origin``; normalised by :func:`normalise_origin` (``http``/``https``
  only, lower case, no default port, IDN hosts in punycode, at most 255 characters); anything
  else stores nothing.
- **Path**: the page's path only, never its query or fragment (they carry click ids and
  personal data), control characters removed, at most 500 characters (:func:`clean_path`).
- **Version**: ``[0-9A-Za-z._-]{1,20}``, else empty (:func:`clean_version`).
- **Throttle**: per process, per (database, project, origin), at most one write every
  :data:`THROTTLE_SECONDS`; the page loads in between are counted in memory and added to
  ``pings`` by the next write (:class:`PingThrottle`, at most :data:`THROTTLE_KEYS` keys, the
  least recently written dropped first). A busy site costs one small write a minute.
- **Bound**: at most :data:`MAX_ORIGINS` origins per project; a write that makes more deletes
  the least recently seen ones (:func:`record`), so forged origins cannot grow the table.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from calltracking.dni.transactions import engine_key, retrying
from calltracking.models import DniSnippetPing, utcnow

#: the version the snippet of this release reports (``VERSION`` in ``webui/static/dni.js``)
SNIPPET_VERSION = "2"
#: a throttled ping costs about 20 µs in the endpoint's handler, a written one 1.6–2.9 ms
#: (bench/dni_ping.py, SQLite and PostgreSQL, on a shared 2-core machine)
THROTTLE_SECONDS = 60.0
THROTTLE_KEYS = 10_000
MAX_ORIGINS = 20
#: a site not seen for this long gets a hint on the setup page
STALE_AFTER = dt.timedelta(days=1)

_T = DniSnippetPing.__table__
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RX = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_VERSION_RX = re.compile(r"[0-9A-Za-z._-]{1,20}")
_CTRL_RX = re.compile(r"[\x00-\x1f\x7f]")
_DEFAULT_PORT = {"http": 80, "https": 443}


def normalise_origin(text) -> Optional[str]:
    """``scheme://host[:port]`` of a page origin, or None when ``text`` is not one."""
    if not isinstance(text, str) or not text or len(text) > 300 or _CTRL_RX.search(text):
        return None
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    if scheme not in _DEFAULT_PORT or not host or parts.username is not None or parts.password is not None \
            or parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        host = f"[{ip.compressed}]" if ip.version == 6 else ip.compressed
    else:
        try:
            host = host.rstrip(".").encode("idna").decode("ascii").lower()
        except UnicodeError:
            return None
        if not _HOST_RX.fullmatch(host):
            return None
    out = f"{scheme}://{host}" + ("" if port in (None, _DEFAULT_PORT[scheme]) else f":{port}")
    return out if len(out) <= 255 else None


def clean_path(text) -> str:
    """The page's path (query and fragment dropped), at most 500 characters; "/" when none."""
    if not isinstance(text, str):
        return "/"
    text = _CTRL_RX.sub("", text[:2000]).strip()
    if "://" in text:
        try:
            text = urlsplit(text).path
        except ValueError:
            return "/"
    text = text.split("?", 1)[0].split("#", 1)[0]
    if not text.startswith("/"):
        text = "/" + text
    return text[:500]


def clean_version(text) -> str:
    return text if isinstance(text, str) and _VERSION_RX.fullmatch(text) else ""


@dataclass(frozen=True)
class Ping:
    """One page load that ran the snippet."""
    project_id: int
    origin: str
    path: str
    version: str


def from_request(project_id: int, origin_header, data: dict) -> Optional[Ping]:
    """The ping a request carries (see the module doc); None: no valid origin."""
    origin = normalise_origin(origin_header) if origin_header else normalise_origin(data.get("origin"))
    if origin is None:
        return None
    return Ping(project_id, origin, clean_path(data.get("page")), clean_version(data.get("snippet")))


class PingThrottle:
    """At most one write per ``interval`` seconds per key; the pings in between are counted."""

    def __init__(self, interval: float = THROTTLE_SECONDS, max_keys: int = THROTTLE_KEYS):
        self.interval, self.max_keys = interval, max_keys
        self._entries: OrderedDict = OrderedDict()      # key -> [time of the last write, pings held back]
        self._lock = threading.Lock()

    def __len__(self):
        return len(self._entries)

    def note(self, key, now: float) -> int:
        """Count a ping at monotonic time ``now``: 0 = held back, else write now, counting that many."""
        with self._lock:
            e = self._entries.get(key)
            if e is None:
                if len(self._entries) >= self.max_keys:
                    self._entries.popitem(last=False)
                self._entries[key] = [now, 0]
                return 1
            if now - e[0] < self.interval:
                e[1] += 1
                return 0
            n = e[1] + 1
            e[0], e[1] = now, 0
            self._entries.move_to_end(key)
            return n

    def failed(self, key, count: int) -> None:
        """The write of ``count`` pings failed: the next ping writes them again."""
        with self._lock:
            e = self._entries.get(key)
            if e is not None:
                e[0], e[1] = float("-inf"), e[1] + count


class SnippetPings:
    """What the DNI endpoints do when a request says the snippet ran: :meth:`note` → the write to
    run (or None: throttled, or no origin); :meth:`failed` when that write failed."""

    def __init__(self, interval: float = THROTTLE_SECONDS, max_origins: int = MAX_ORIGINS):
        self.throttle = PingThrottle(interval)
        self.max_origins = max_origins

    def note(self, engine: Engine, ping: Optional[Ping], now: float) -> Optional[tuple]:
        """``(key, count)`` of the write to run now with :func:`record`, or None."""
        if ping is None:
            return None
        key = (engine_key(engine), ping.project_id, ping.origin)
        n = self.throttle.note(key, now)
        return (key, n) if n else None

    def write(self, engine: Engine, ping: Ping, count: int) -> None:
        record(engine, ping, count, max_origins=self.max_origins)

    def failed(self, key, count: int) -> None:
        self.throttle.failed(key, count)


def record(engine: Engine, ping: Ping, count: int = 1, now: Optional[dt.datetime] = None,
           max_origins: int = MAX_ORIGINS) -> None:
    """Store ``count`` page loads of ``ping`` (one transaction): the (project, origin) row's last
    time, path and version, its count; then the project's oldest origins beyond ``max_origins``
    are deleted."""
    now = now or utcnow()
    ins = (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(_T)
    stmt = ins.values(project_id=ping.project_id, origin=ping.origin, last_path=ping.path, version=ping.version,
                      pings=count, first_seen=now, last_seen=now)
    ex = stmt.excluded
    stmt = stmt.on_conflict_do_update(index_elements=["project_id", "origin"], set_={
        "last_path": ex.last_path, "version": ex.version, "pings": _T.c.pings + ex.pings, "last_seen": ex.last_seen})

    def write(conn):
        conn.execute(stmt)
        extra = conn.execute(select(_T.c.id).where(_T.c.project_id == ping.project_id)
                             .order_by(_T.c.last_seen.desc(), _T.c.id.desc()).offset(max_origins)).scalars().all()
        if extra:
            conn.execute(delete(_T).where(_T.c.id.in_(extra)))

    retrying(engine, write, write_first=True)


@dataclass
class Site:
    """A site (origin) where the project's snippet ran."""
    origin: str
    path: str
    version: str
    pings: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    outdated: bool          # an older snippet (a copy kept by the site, or a cache)
    stale: bool             # not seen for :data:`STALE_AFTER`

    @property
    def url(self) -> str:
        return self.origin + self.path


def sites(session: Session, project_id: int, now: Optional[dt.datetime] = None) -> list[Site]:
    """The project's sites, the most recently seen first."""
    now = now or utcnow()
    rows = session.scalars(select(DniSnippetPing).where(DniSnippetPing.project_id == project_id)
                           .order_by(DniSnippetPing.last_seen.desc(), DniSnippetPing.id.desc()))
    return [Site(r.origin, r.last_path, r.version, r.pings, r.first_seen, r.last_seen,
                 outdated=r.version != SNIPPET_VERSION, stale=now - r.last_seen > STALE_AFTER) for r in rows]
