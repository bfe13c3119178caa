"""A dedicated asyncio HTTP/1.1 server for the public DNI endpoints (``[dni] listen``).

Only ``GET /dni.js``, ``POST|OPTIONS /api/dni/assign|heartbeat|ping|callback`` and ``GET /healthz`` (else 404
JSON), with the SAME code as the web port (:meth:`webui.dni.DniApi.handle`, :func:`webui.dni.snippet`);
it exists because the WSGI server costs far more CPU per request than the assignment itself.

- Its own event loop (uvloop when installed) in a thread: the FastAGI loop is never shared.
- No database work on the loop: a new visitor goes to :mod:`calltracking.dni.new_visitors`'s batching
  writer (futures settled once per batch), the rest to a small thread pool; ``DNI_DB_TIMEOUT``
  (1.5 s) of database time per request, then ``503`` JSON; a full pool answers 503 at once.
- HTTP (:mod:`webui.dni_http`): keep-alive, pipelining answered in order, ``Connection: close``
  and HTTP/1.0 close; head ≤ 16 KiB (431), body ≤ ``DNI_MAX_BODY`` (413), no chunked bodies (411),
  malformed → 400 and close; ``HEADER_IDLE``/``HEADER_TOTAL`` against slow clients (408),
  ``KEEPALIVE`` for idle connections, at most ``max_connections`` (the longest idle one is closed
  for a new one, else 503). Client IP: the peer; ``X-Forwarded-For`` only from a peer listed in
  ``[web] trusted_proxies`` (:meth:`webui.dni.DniApi.client_ip`, as on the web port).
"""
from __future__ import annotations

import asyncio
import gc
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from webui import dni_http as H
from webui.dni import DniApi, FastStep, Refresh, render, snippet

log = logging.getLogger(__name__)

HEADER_IDLE = 10.0          # s without a byte while a request is being received (or before the first)
HEADER_TOTAL = 30.0         # s for a whole head (and for a whole body)
KEEPALIVE = 65.0            # s an idle keep-alive connection stays open (longer than nginx's 60 s)
HEALTH = json.dumps({"status": "ok"}).encode()


class Busy(Exception):
    """The database thread pool is full."""


class _Conn(asyncio.Protocol):
    """One client connection. Phases: idle → head → body → busy (the answer) → idle …"""

    def __init__(self, server: "DniServer"):
        self.server = server
        self.transport = None
        self.buf = bytearray()
        self.head = None                  # parsed Head waiting for its body
        self.phase = "idle"
        self.since = self.last = time.monotonic()
        self.fresh = True                 # no request answered yet
        self.busy = False
        self.closed = False
        self.write_paused = False
        self.read_paused = False
        self.processing = False           # inside _process (answers do not recurse into it)
        self.eof = False
        self.ip = ""

    # -------------------------------------------------------------- asyncio callbacks
    def connection_made(self, transport):
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.ip = peer[0] if isinstance(peer, tuple) and peer else ""
        if not self.server._admit(self):
            self.closed = True
            transport.write(H.response(503, [("Content-Type", "application/json")],
                                       H.error_body("too many connections"), False, self.server.date()))
            transport.close()

    def connection_lost(self, exc):
        self.closed = True
        self.server.conns.pop(self, None)

    def pause_writing(self):
        self.write_paused = True

    def resume_writing(self):
        self.write_paused = False
        if not self.busy and not self.closed:
            self._process()

    def data_received(self, data):
        if self.closed:
            return
        self.last = time.monotonic()
        if self.phase == "idle" and not self.busy:
            self.phase, self.since = "head", self.last
            conns = self.server.conns                     # to the end: newest activity last
            conns.pop(self, None)
            conns[self] = None
        self.buf += data
        if self.busy or self.write_paused:
            if len(self.buf) > H.MAX_HEAD + self.server.max_body() + 1024 and not self.read_paused:
                self.read_paused = True                   # a pipelining client that does not read
                self.transport.pause_reading()
            return
        self._process()

    def eof_received(self):
        self.eof = True
        return self.busy                                  # an answer is on its way: close after it

    # -------------------------------------------------------------- requests
    def _process(self):
        """Parse and dispatch the requests in ``buf``, one at a time."""
        if self.processing:
            return
        self.processing = True
        try:
            self._requests()
        finally:
            self.processing = False
        if self.read_paused and not (self.busy or self.closed or self.write_paused):
            self.read_paused = False                      # what is left is a partial request
            self.transport.resume_reading()

    def _requests(self):
        while not (self.busy or self.closed or self.write_paused):
            if self.head is None:
                while self.buf[:2] == b"\r\n":            # tolerated before a request line
                    del self.buf[:2]
                end = self.buf.find(b"\r\n\r\n", 0, H.MAX_HEAD + 4)
                if end < 0:
                    if len(self.buf) > H.MAX_HEAD:
                        return self._fail(431, "request head too large (at most 16 KiB)")
                    if not self.buf:
                        self.phase, self.since = "idle", time.monotonic()
                    return
                try:
                    self.head = H.parse_head(bytes(self.buf[:end]))
                except H.HttpError as e:
                    return self._fail(e.status, e.message)
                del self.buf[:end + 4]
                self.phase = "body"
                head = self.head
                if head.length and head.length > self.server.max_body() and head.path not in DniApi.PATHS:
                    return self._fail(413, f"request body too large (at most {self.server.max_body()} bytes)")
                if head.length and head.headers.get("expect", "").lower() == "100-continue" \
                        and head.length <= self.server.max_body():
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            head = self.head
            if head.length > self.server.max_body():      # API path: the handler answers 413 (or 429)
                self.head, body, head.keep_alive = None, None, False
            else:
                if len(self.buf) < head.length:
                    return
                body = bytes(self.buf[:head.length])
                del self.buf[:head.length]
                self.head = None
            self.phase, self.busy = "busy", True
            self._dispatch(head, body)

    def _dispatch(self, head, body):
        path, method = head.path, head.method
        if path in DniApi.PATHS and method == "HEAD":       # no body may follow a HEAD answer
            self.respond(405, [("Allow", "POST, OPTIONS"), ("Content-Type", "application/json")],
                         H.error_body("use POST"), head.keep_alive, True)
        elif path in DniApi.PATHS:
            h = head.headers
            api = self.server.api
            ip = api.client_ip(self.ip, h.get("x-forwarded-for", ""))
            gen = api.handle(method, path, h.get("origin"), ip, h.get("user-agent", ""), body)
            _Call(self, gen, head.keep_alive).advance(None, None)
        elif path == "/dni.js" or path == "/healthz":
            if method not in ("GET", "HEAD"):
                self.respond(405, [("Allow", "GET, HEAD"), ("Content-Type", "application/json")],
                             H.error_body("use GET"), head.keep_alive)
            elif path == "/healthz":
                self.respond(200, [("Content-Type", "application/json"), ("Cache-Control", "no-store")],
                             HEALTH, head.keep_alive, method == "HEAD")
            else:
                status, data, headers = snippet(head.headers.get("if-none-match", ""))
                self.respond(status, headers, data, head.keep_alive, method == "HEAD")
        else:
            self.respond(404, [("Content-Type", "application/json")], H.error_body("not found"),
                         head.keep_alive)

    def respond(self, status: int, headers: list, body: bytes, keep_alive: bool, head_only: bool = False):
        """Send one answer; then the next pipelined request, or close."""
        self.busy = False
        if self.closed:
            return
        keep_alive = keep_alive and not self.server.stopping and not self.eof
        self.transport.write(H.response(status, headers, body, keep_alive, self.server.date(), head_only))
        self.fresh = False
        if not keep_alive:
            self.closed = True
            self.transport.close()
            return
        self.phase, self.since = ("head" if self.buf else "idle"), time.monotonic()
        self._process()

    def _fail(self, status: int, message: str):
        self.busy = True
        self.respond(status, [("Content-Type", "application/json")], H.error_body(message), False)

    def expired(self, now: float) -> bool:
        """The sweeper's check: True → answered 408 (or dropped) and closed."""
        if self.busy or self.closed:
            return False
        if self.phase == "idle":
            limit = HEADER_IDLE if self.fresh else KEEPALIVE
            if now - self.since > limit:
                self.closed = True
                self.transport.close()
                return True
            return False
        if now - self.last > HEADER_IDLE or now - self.since > HEADER_TOTAL:
            self._fail(408, "request not received in time")
            return True
        return False


class _Call:
    """One API request in flight: drives ``DniApi.handle`` with its steps off the loop."""

    __slots__ = ("conn", "gen", "keep_alive", "timer", "pending", "finished")

    def __init__(self, conn: _Conn, gen, keep_alive: bool):
        self.conn, self.gen, self.keep_alive = conn, gen, keep_alive
        self.timer = None
        self.pending = None               # (asyncio future, writer slot or None)
        self.finished = False

    def advance(self, send, exc):
        server = self.conn.server
        while True:
            try:
                step = self.gen.send(send) if exc is None else self.gen.throw(exc)
            except StopIteration as stop:
                return self._finish(*stop.value)
            except Exception:             # a bug: never leave the connection hanging
                log.exception("DNI server: handler failed")
                return self._finish(500, {"error": "internal error"}, [])
            send = exc = None
            if isinstance(step, Refresh) and step.stale is not None:
                server._refresh(step)     # in the background; this request uses the expired settings
                send = step.stale
                continue
            try:
                fut, slot = server._start(step)
            except Exception as e:        # Busy, or the writer is closed: the handler decides
                exc = e
                continue
            self.pending = (fut, slot)
            if self.timer is None:
                self.timer = server.loop.call_later(server.api.cfg("DNI_DB_TIMEOUT"), self.timeout)
            fut.add_done_callback(self._resume)
            return

    def _resume(self, fut):
        if self.finished or fut.cancelled():
            return
        self.pending = None
        exc = fut.exception()
        self.advance(None if exc is not None else fut.result(), exc)

    def timeout(self):
        self.timer = None
        if self.finished:
            return
        if self.pending is not None:
            fut, slot = self.pending
            if slot is not None:
                slot.dropped = True       # not yet written: the writer skips it
            fut.cancel()                  # an executor job not yet started is cancelled too
        self.gen.close()
        log.warning("DNI server: the database did not answer within %.1f s", self.conn.server.api.cfg("DNI_DB_TIMEOUT"))
        self._finish(503, {"error": "temporarily unavailable (database timeout)"}, [])

    def _finish(self, status, payload, headers):
        self.finished = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        _, headers, body = render(status, payload, headers)
        self.conn.respond(status, headers, body, self.keep_alive)


class DniServer:
    """The server in a thread with its own event loop: :meth:`start` (binds; raises OSError),
    :meth:`close`. ``port`` is the bound port (useful with port 0)."""

    def __init__(self, api: DniApi, host: str = "127.0.0.1", port: int = 8081, workers: int = 4,
                 max_connections: int = 1000, max_pending: int = 256):
        self.api, self.host, self.port = api, host, port
        self.workers, self.max_connections, self.max_pending = workers, max_connections, max_pending
        self.conns: dict = {}             # _Conn -> None, least recently active first
        self.pending = 0                  # executor jobs queued or running
        self.refreshing: set = set()      # project keys being reloaded in the background
        self.stopping = False
        self.loop = None
        self.pool = None
        self.thread = None
        self._dates = H.DateCache()
        self._ready = threading.Event()
        self._error = None
        self._stop = None

    # ---------------------------------------------------------------- helpers (on the loop)
    def max_body(self) -> int:
        return self.api.cfg("DNI_MAX_BODY")

    def date(self) -> str:
        return self._dates.get(time.time())

    def _admit(self, conn: _Conn) -> bool:
        if self.stopping:
            return False
        if len(self.conns) >= self.max_connections:
            idle = next((c for c in self.conns if c.phase == "idle" and not c.busy), None)
            if idle is None:
                log.warning("DNI server: %d connections, refusing a new one", len(self.conns))
                return False
            idle.closed = True
            idle.transport.close()
            self.conns.pop(idle, None)
        self.conns[conn] = None
        return True

    def _start(self, step):
        """Start a step of a handler: (asyncio future, writer slot or None)."""
        if isinstance(step, FastStep):
            slot = step.submit(self.loop)
            return slot.afut, slot
        if self.pending >= self.max_pending:
            raise Busy("the database threads are all busy")
        self.pending += 1
        fut = self.loop.run_in_executor(self.pool, step.run)
        fut.add_done_callback(self._job_done)
        return fut, None

    def _job_done(self, _fut):
        self.pending -= 1

    def _refresh(self, step: Refresh):
        key = step.args[1]
        if key in self.refreshing or self.pending >= self.max_pending:
            return
        self.refreshing.add(key)
        self.pending += 1
        fut = self.loop.run_in_executor(self.pool, step.run)

        def done(f):
            self.pending -= 1
            self.refreshing.discard(key)
            if not f.cancelled() and f.exception() is not None:
                log.warning("DNI server: reloading project %r failed: %s", key, f.exception())

        fut.add_done_callback(done)

    async def _sweep(self):
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for conn in [c for c in list(self.conns) if c.expired(now)]:
                self.conns.pop(conn, None)

    # ---------------------------------------------------------------- life cycle
    def start(self, timeout: float = 10.0) -> "DniServer":
        self.thread = threading.Thread(target=self._thread, name="dni-server", daemon=True)
        self.thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the DNI server did not start")
        if self._error is not None:
            self.thread.join(timeout)
            raise self._error
        return self

    def _thread(self):
        try:
            import uvloop            # installed on Linux (setup.cfg); elsewhere the stock loop
        except ModuleNotFoundError as e:
            if e.name != "uvloop":
                raise
            loop = asyncio.new_event_loop()
        else:
            loop = uvloop.new_event_loop()
        self.loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as e:        # noqa: BLE001 - reported to start() or logged
            if not self._ready.is_set():
                self._error = e
                self._ready.set()
            else:
                log.exception("DNI server stopped on an error")
        finally:
            loop.close()

    async def _serve(self):
        self._stop = asyncio.Event()
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="dni-db")
        try:
            server = await self.loop.create_server(lambda: _Conn(self), self.host, self.port, backlog=1024,
                                                   reuse_address=True)
        except BaseException:
            self.pool.shutdown(wait=False)
            raise
        self.port = server.sockets[0].getsockname()[1]
        sweeper = asyncio.create_task(self._sweep())
        gc.freeze()     # what is loaded by now lives long: keep it out of the collector's passes (p99)
        log.info("DNI endpoints listening on http://%s:%s/", self.host, self.port)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            self.stopping = True
            server.close()
            sweeper.cancel()
            for conn in list(self.conns):             # idle ones now; requests in flight finish
                if not conn.busy:
                    conn.closed = True
                    conn.transport.close()
            deadline = time.monotonic() + 3.0
            while any(c.busy and not c.closed for c in self.conns) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            for conn in list(self.conns):
                conn.transport.abort()
            self.pool.shutdown(wait=False, cancel_futures=True)
            await asyncio.sleep(0)

    def close(self, timeout: float = 10.0) -> None:
        """Stop serving (from any thread): requests in flight get up to 3 s to finish."""
        loop, thread = self.loop, self.thread
        if loop is None or thread is None or not thread.is_alive():
            return
        try:
            loop.call_soon_threadsafe(self._stop.set)
        except RuntimeError:              # the loop is already closed
            return
        if threading.current_thread() is not thread:
            thread.join(timeout)


def make_dni_server(config, sessionmaker=None, api: DniApi | None = None, workers: int = 4):
    """The DNI server of ``[dni] listen`` (not started), or None when the key is empty.

    ``api``: the web application's :class:`DniApi` (``app.extensions["dni_api"]``), so both
    listeners share settings, rate-limit buckets and hold caps; else one with ``config``'s
    settings on ``sessionmaker``'s engine (visitor ids signed with ``[web] secret_key``)."""
    listen = config.dni.listen
    if not listen:
        return None
    if api is None:
        if sessionmaker is None:
            from calltracking.db import engine_from_config, make_sessionmaker

            sessionmaker = make_sessionmaker(engine_from_config(config))
        engine = sessionmaker.kw["bind"]
        api = DniApi({}, lambda: engine, config=config, secret=config.require_web_secret())
    return DniServer(api, listen[0], listen[1], workers=workers)


def start_next_to(web_server, config, sessionmaker):
    """Start ``[dni] listen`` next to a waitress server of :func:`webui.server.make_server`
    (sharing its DniApi). A failure (port taken) is logged, not fatal: the web port serves the
    same endpoints. Returns the started server or None."""
    app = getattr(web_server, "application", None)
    api = app.extensions.get("dni_api") if app is not None else None
    srv = make_dni_server(config, sessionmaker, api)
    if srv is None:
        return None
    try:
        return srv.start()
    except OSError as e:
        log.error("DNI server NOT started on %s:%s: %s (the web UI port still serves /dni.js and /api/dni/)",
                  config.dni.listen[0], config.dni.listen[1], e)
        return None
