"""Abuse limits of the public DNI endpoints (``/api/dni/assign``, ``/api/dni/heartbeat``).

The endpoints are public: anyone can ask for a number, and every number handed out is held
for a while. What keeps one client from holding the whole pool:

- **Who the client is** (:class:`ClientResolver`, :func:`client_key`): the TCP peer; the
  ``X-Forwarded-For`` header only when the peer is one of ``[web] trusted_proxies`` (then the
  right-most address that is not a trusted proxy). The limits count per *client key*: an IPv4
  address, or the /64 network of an IPv6 address (one subscriber's whole allocation).
- **Signed visitor ids** (:class:`VisitorSigner`): the server issues the ids (HMAC-SHA256 with
  a key derived from ``[web] secret_key``); an id without a valid signature is a new visitor.
- **Hold caps** (:class:`HoldLedger`): at most ``[dni] max_holds_per_client`` live holds per
  client key in a pool and ``[dni] max_holds_per_visitor`` per visitor id; a request beyond
  them is *refused*: the fallback number, no hold, no session.
- **Request rate** (:class:`RateLimiter`): a token bucket per client key.

Both DNI listeners (the web port's WSGI path and the asyncio DNI server) share one
``webui.dni.DniApi`` and so one ledger and one limiter. The ledger lives in the process: it is
filled from the database's live holds on first use (so a restart does not hand every client a
fresh quota) and then follows the holds this process hands out and extends; holds made by
another process sharing the database are not counted. Refusals are counted per pool
(:func:`refused_counts`, Prometheus ``calltracking_dni_refused_total``).
"""
from __future__ import annotations

import base64
import functools
import hashlib
import heapq
import hmac
import ipaddress
import logging
import secrets
import threading
import time
from collections import Counter, OrderedDict
from typing import Optional

from prometheus_client.core import CounterMetricFamily
from sqlalchemy import select

from calltracking import metrics, proxies
from calltracking.dni.holds import hold_end
from calltracking.dni.transactions import engine_key
from calltracking.models import NumberPool, PoolReservation, TrackingNumber, VisitorSession

log = logging.getLogger(__name__)

#: refusal reasons (the ``reason`` label of calltracking_dni_refused_total)
CLIENT_LIMIT, VISITOR_LIMIT = "client_limit", "visitor_limit"


# ------------------------------------------------------------------ clients
@functools.lru_cache(maxsize=8192)
def client_key(ip: str) -> str:
    """What the limits count: the IPv4 address, or the /64 network of an IPv6 address
    (``2001:db8:1:2::/64``). Anything else (no address) is one key of its own."""
    a = proxies.parse_address(ip or "")
    if a is None:
        return ip or "-"
    if a.version == 6:
        return str(ipaddress.IPv6Network((int(a) >> 64 << 64, 64)))
    return str(a)


class ClientResolver:
    """The client address of a request: the rule of :func:`calltracking.proxies.client_address`
    (the peer, or — when the peer is one of ``trusted`` — the right-most ``X-Forwarded-For``
    hop that is not a trusted proxy), shared with the web UI. Also warns (every 10 minutes at
    most) when a local peer sends the header without being trusted."""

    WARN_EVERY = 600.0

    def __init__(self, trusted=()):
        self.trusted = tuple(ipaddress.ip_network(n, strict=False) if isinstance(n, str) else n
                             for n in trusted)
        self._warned = 0.0

    def __call__(self, peer: str, forwarded: str = "") -> str:
        if not forwarded:                 # the peer itself (the common case: no parsing)
            return peer or ""
        if not proxies.is_trusted(proxies.parse_address(peer), self.trusted):
            self._warn_ignored(peer)
        return proxies.client_address(peer or "", forwarded, self.trusted)

    def _warn_ignored(self, peer: str):
        """A local peer that forwards addresses is probably a reverse proxy missing from
        ``[web] trusted_proxies``: every visitor behind it then counts as ONE client."""
        a = proxies.parse_address(peer)
        if a is None or not a.is_loopback:
            return
        now = time.monotonic()
        if now - self._warned >= self.WARN_EVERY:
            self._warned = now
            log.warning("DNI: X-Forwarded-For from %s ignored (not in [web] trusted_proxies): every "
                        "visitor behind that proxy counts as one client for the rate limit and the "
                        "hold caps; add the proxy's address to [web] trusted_proxies", peer)


# ------------------------------------------------------------------ visitor ids
class VisitorSigner:
    """Visitor ids issued by the server: ``v`` + 24 hex digits (96 random bits) + ``.`` + 22
    base64url characters (128 bits of HMAC-SHA256 over the first part, keyed by a key derived
    from the server secret). Changing ``[web] secret_key`` makes every visitor a new one."""

    def __init__(self, secret):
        if isinstance(secret, str):
            secret = secret.encode()
        if not secret:
            raise ValueError("the visitor id signer needs a secret ([web] secret_key)")
        key = hmac.new(secret, b"calltracking dni visitor id v1", hashlib.sha256).digest()
        # HMAC-SHA256 (RFC 2104) from the key's inner and outer hash states, copied per id:
        # 1.0 us a signature against 2.5 us for hmac.digest (OpenSSL sets up a context per call)
        block = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def _mac(self, body: str) -> str:
        inner, outer = self._inner.copy(), self._outer.copy()
        inner.update(body.encode())
        outer.update(inner.digest())
        return base64.urlsafe_b64encode(outer.digest()[:16])[:22].decode()

    def new(self) -> str:
        body = "v" + secrets.token_hex(12)
        return f"{body}.{self._mac(body)}"

    def valid(self, visitor_id) -> bool:
        if not isinstance(visitor_id, str) or len(visitor_id) != 48 or visitor_id[25:26] != ".":
            return False
        return hmac.compare_digest(visitor_id[26:], self._mac(visitor_id[:25]))


# ------------------------------------------------------------------ rate
class RateLimiter:
    """A token bucket per key, in memory, bounded: beyond ``max_keys`` keys the least recently
    used bucket is dropped (O(1)); a dropped key starts again with a full bucket. A client being
    limited keeps using its bucket, so a flood of new keys evicts idle clients, not it."""

    def __init__(self, max_keys: int = 100_000):
        self.buckets: "OrderedDict[str, tuple[float, float]]" = OrderedDict()
        self.lock = threading.Lock()
        self.max_keys = max_keys

    def allow(self, key: str, per_minute: float, burst: float) -> bool:
        now = time.monotonic()
        with self.lock:
            b = self.buckets.get(key)
            if b is None:
                tokens = float(burst)
                while len(self.buckets) >= self.max_keys:
                    self.buckets.popitem(last=False)
            else:
                tokens = min(float(burst), b[0] + (now - b[1]) * per_minute / 60.0)
                self.buckets.move_to_end(key)
            ok = tokens >= 1.0
            self.buckets[key] = (tokens - 1.0 if ok else tokens, now)
            return ok


# ------------------------------------------------------------------ holds
class HoldLedger:
    """The live holds of this process's DNI endpoints by pool, client key and visitor id, to
    cap them without a database query (O(log n) per request).

    An entry is (pool, visitor) → (client key, until): ``until`` follows the database's rule
    (a new hold: its provisional time; after a heartbeat: the pool's hold time). :meth:`claim`
    is called before a visitor may get a NEW hold and reserves the slot at once (so that
    concurrent requests of one client count each other); :meth:`settle` records the
    database's answer. Memory is bounded by ``max_entries`` (the entries closest to their end
    go first); expired entries are dropped as time passes.
    """

    PENDING = 30.0          # s a claimed slot waits for the database's answer

    def __init__(self, max_entries: int = 500_000):
        self.max_entries = max_entries
        self.lock = threading.Lock()
        # tuples of plain values only, which the garbage collector stops tracking: with 100,000
        # holds a claim took 4.1 us with lists here, 2.8 us with tuples (measured)
        self.entries: dict = {}     # (pool id, visitor id) -> (client key, until, seq)
        self.clients: dict = {}     # (pool id, client key) -> entries
        self.visitors: dict = {}    # visitor id -> entries
        self.heap: list = []        # (until, seq, pool id, visitor id); one item per entry
        self.seq = 0
        self.primed = False
        self.prime_lock = threading.Lock()

    # -- reading
    def held(self, pool_id: int, client: str, now: Optional[float] = None) -> int:
        with self.lock:
            self._expire(time.time() if now is None else now)
            return self.clients.get((pool_id, client), 0)

    def __len__(self):
        return len(self.entries)

    # -- writing
    def claim(self, pool_id: int, visitor_id: str, client: str, now: float, per_client: int,
              per_visitor: int) -> Optional[str]:
        """May this visitor get a hold in this pool? None: yes (it already holds one, or a slot
        is reserved now: settle it); else the refusal reason (:data:`CLIENT_LIMIT`,
        :data:`VISITOR_LIMIT`)."""
        with self.lock:
            self._expire(now)
            key = (pool_id, visitor_id)
            if key in self.entries:
                return None
            if self.clients.get((pool_id, client), 0) >= per_client:
                return CLIENT_LIMIT
            if self.visitors.get(visitor_id, 0) >= per_visitor:
                return VISITOR_LIMIT
            self._add(key, client, now + self.PENDING)
            return None

    def settle(self, pool_id: int, visitor_id: str, client: str, until: Optional[float]):
        """The database's answer: the visitor holds a number of this pool until ``until``
        (None: it holds none). An entry's end only moves forward."""
        with self.lock:
            key = (pool_id, visitor_id)
            e = self.entries.get(key)
            if until is None:
                if e is not None:
                    self._remove(key, e)
            elif e is None:
                self._add(key, client, until)
            elif until > e[1]:                # its heap item is moved on when it comes up
                self.entries[key] = (e[0], until, e[2])

    def prime(self, rows, now: float):
        """Fill from the database: ``rows`` of (pool id, visitor id, client key, until)."""
        with self.lock:
            for pool_id, visitor_id, client, until in rows:
                if until > now and (pool_id, visitor_id) not in self.entries:
                    self._add((pool_id, visitor_id), client, until)
            self.primed = True

    # -- internals (under self.lock)
    def _add(self, key, client, until):
        while len(self.entries) >= self.max_entries and self.heap:
            _, seq, p, v = heapq.heappop(self.heap)
            e = self.entries.get((p, v))
            if e is not None and e[2] == seq:
                self._remove((p, v), e)
        self.seq += 1
        self.entries[key] = (client, until, self.seq)
        ck = (key[0], client)
        self.clients[ck] = self.clients.get(ck, 0) + 1
        self.visitors[key[1]] = self.visitors.get(key[1], 0) + 1
        heapq.heappush(self.heap, (until, self.seq, key[0], key[1]))

    def _remove(self, key, e):
        del self.entries[key]
        for counts, k in ((self.clients, (key[0], e[0])), (self.visitors, key[1])):
            n = counts[k] - 1
            if n > 0:
                counts[k] = n
            else:
                del counts[k]

    def _expire(self, now: float):
        heap = self.heap
        while heap and heap[0][0] <= now:
            _, seq, p, v = heapq.heappop(heap)
            e = self.entries.get((p, v))
            if e is None or e[2] != seq:
                continue                      # removed meanwhile
            if e[1] > now:                    # extended: its item goes back with the new end
                heapq.heappush(heap, (e[1], seq, p, v))
            else:
                self._remove((p, v), e)


def load_live_holds(engine, now_dt) -> list:
    """The live holds in the database as :meth:`HoldLedger.prime` rows (ending at
    :func:`calltracking.dni.holds.hold_end`)."""
    TN, PR, VS, NP = (TrackingNumber.__table__, PoolReservation.__table__, VisitorSession.__table__,
                      NumberPool.__table__)
    q = (select(PR.c.pool_id, VS.c.visitor_id, VS.c.ip, PR.c.assigned_at, PR.c.last_seen_at, NP.c.hold_seconds)
         .select_from(TN)
         .join(PR, (PR.c.tracking_number_id == TN.c.id) & PR.c.released_at.is_(None))
         .join(VS, VS.c.id == PR.c.session_id).join(NP, NP.c.id == PR.c.pool_id)
         .where(TN.c.pool_held.is_(True)))
    rows = []
    with engine.connect() as conn:
        for pool_id, visitor_id, ip, assigned, seen, hold in conn.execute(q):
            end = hold_end(assigned, seen, hold).timestamp()
            rows.append((pool_id, visitor_id, client_key(ip or ""), end))
    return rows


# ------------------------------------------------------------------ counts
_counts_lock = threading.Lock()
#: (database url, pool id) -> Counter(reason -> refusals); labels: (database url, pool id) -> label
_refused: dict = {}
_labels: dict = {}
#: requests turned away before any pool was chosen: reason -> count
_rejected: Counter = Counter()


def db_key(engine) -> str:
    """The database a count belongs to (its URL): pool ids are only unique within one."""
    return engine_key(engine)


def count_refused(db: str, pool_id: int, label: str, reason: str):
    with _counts_lock:
        _refused.setdefault((db, pool_id), Counter())[reason] += 1
        _labels[(db, pool_id)] = label


def count_rejected(reason: str):
    with _counts_lock:
        _rejected[reason] += 1


def refused_counts(db: str, pool_id: int) -> dict:
    """Refused new holds of a pool since this process started: reason -> count."""
    with _counts_lock:
        return dict(_refused.get((db, pool_id), {}))


class _Collector:
    """calltracking_dni_refused_total{pool, reason} and calltracking_dni_rejected_total{reason}."""

    def collect(self):
        refused = CounterMetricFamily("calltracking_dni_refused", "New DNI holds refused by a hold cap "
                                      "(the visitor got the fallback number)", labels=["pool", "reason"])
        rejected = CounterMetricFamily("calltracking_dni_rejected", "DNI requests turned away before "
                                       "assignment (rate limit, missing or foreign Origin)", labels=["reason"])
        with _counts_lock:
            for key, reasons in _refused.items():
                for reason, n in reasons.items():
                    refused.add_metric([_labels.get(key, str(key[1])), reason], n)
            for reason, n in _rejected.items():
                rejected.add_metric([reason], n)
        yield refused
        yield rejected


metrics.REGISTRY.register(_Collector())

