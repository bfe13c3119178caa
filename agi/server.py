"""FastAGI server on asyncio (its own reader: panoramisk's spins at EOF, see STYLE.md).

Every connection: check the peer (``[agi] allowed_peers``, ``[agi] max_connections``),
read the ``agi_*`` header (size-limited, with a timeout), run the hook's dialog
(``agi/protocol.py``), close. Database work runs in a thread pool under
``asyncio.wait_for`` with the ``[agi] timeout_ms`` budget (the route hook's reads: on the
loop itself, SQLite's inline, PostgreSQL's on the loop's own connections, ``agi/pg_reads.py``);
when it fails or is late the channel gets the safe defaults and the late work is told not to
write (``Budget.cancelled``).

The peer is not trusted. Every read ends the session at end of file, is bounded in size
(:data:`agi.protocol.MAX_LINE` per line, :data:`MAX_REPLY` per reply) and in time: the
header within ``header_timeout``, each reply within the same bound (Asterisk answers a
command at once), except the reply to a command that plays a prompt or waits for the
caller (:data:`_WAITS_FOR_CALLER`), which only the whole request's
:data:`DIALOG_TIMEOUT` bounds. A bare connect/close, a half-sent header, a silent peer,
an endless line or garbage never blocks the other calls.
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
import gc
import ipaddress
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

from calltracking import metrics
from calltracking import hooks
from calltracking.hooks.env import commit_wait_ms
from calltracking.hooks.spool import Spool
from calltracking.hooks.writer import CallWriter
from calltracking.logsetup import CURRENT_LINKEDID

from agi import protocol as p
from agi.pg_reads import Lost, PgReads

log = logging.getLogger("calltracking.agi")

HEADER_TIMEOUT = 5.0       # seconds for the whole header, and for each reply to a command
DIALOG_TIMEOUT = 600       # seconds for a whole request (GET DATA waits for the caller)
MAX_REPLY = 32 * 1024      # bytes of one reply with its HANGUP notices and 520- usage lines
PRELOAD_WAIT = 5.0         # seconds start() waits for the catalogue before serving anyway
# Commands whose reply comes once a prompt has played or the caller typed: only the dialog's
# DIALOG_TIMEOUT bounds them (the others are answered at once, within HEADER_TIMEOUT).
_WAITS_FOR_CALLER = ("GET DATA", "STREAM FILE")
_HOOKS = frozenset({"route", "promo", "tag", "lookup", "ping"})   # metric labels (bounded)
_FELL_BACK: contextvars.ContextVar[bool] = contextvars.ContextVar("fell_back", default=False)


class PeerError(Exception):
    """The peer broke the protocol after the header (silent, endless line, oversized reply)."""


class _RateLimitedLog:
    """One WARNING per ``interval`` seconds at most; the next one counts those suppressed."""

    def __init__(self, interval: float = 10.0):
        self.interval, self.last, self.suppressed = interval, 0.0, 0

    def warning(self, msg, *args):
        now = time.monotonic()
        if now - self.last >= self.interval:
            if self.suppressed:
                msg += f" (and {self.suppressed} similar since the last message)"
            log.warning(msg, *args)
            self.last, self.suppressed = now, 0
        else:
            self.suppressed += 1


class AgiServer:
    """The FastAGI server. ``await start()``, then ``await close()``.

    ``header_timeout`` bounds the header and each reply to a command (default
    :data:`HEADER_TIMEOUT`); ``[agi] allowed_peers`` and ``[agi] max_connections`` are
    checked when a connection arrives.
    """

    def __init__(self, config, sessionmaker, clock=None, workers: int = 4,
                 host: Optional[str] = None, port: Optional[int] = None,
                 header_timeout: float = HEADER_TIMEOUT, cache: Optional[hooks.HookCache] = None,
                 reuse_port: bool = False):
        self.config = config
        self.env = hooks.HookEnv(config, sessionmaker, cache=cache or hooks.HookCache())
        self.env.writer = CallWriter(self.env.engine)
        if clock is not None:
            self.env.clock = clock
        self.host = host if host is not None else config.agi.listen[0]
        self.port = port if port is not None else config.agi.listen[1]
        self.header_timeout = header_timeout
        self.reuse_port = reuse_port            # several processes serve one port (Linux)
        self.workers = workers
        self.max_backlog = 1000                 # queued DB jobs before we answer defaults at once
        self.inflight = 0
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="agi-db")
        # SQLite: the route hook's reads and decisions (0.125 ms of CPU per call measured, on a
        # local file that never makes a reader wait for a lock in WAL mode) run on the event
        # loop, bounded by the budget (HookEnv.deadline), without a hand-off to a thread and
        # back. PostgreSQL's reads are network round trips, which must not hold the loop: the
        # route hook's run on the loop's own asynchronous connections (agi/pg_reads.py), the
        # other hooks' in the thread pool.
        self.inline_reads = self.env.engine.dialect.name == "sqlite"
        self.pg_reads: Optional[PgReads] = None
        self.preloaded = False      # the catalogue is read (never read on the loop: ~0.1 s)
        self.server: Optional[asyncio.AbstractServer] = None
        # the loop it serves on (asyncio.get_running_loop() is a getpid() system call each time)
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.connections: set[asyncio.Task] = set()
        self.max_connections = config.agi.max_connections
        self.allowed_peers = config.agi.allowed_peers
        self._peers: dict[str, bool] = {}      # peer address -> allowed
        # dropped: peers closed for silence, an endless line or an oversized reply;
        # refused_peer / refused_busy: closed at accept (not allowed / max_connections reached)
        self.stats = {"requests": 0, "fallbacks": 0, "bad_headers": 0, "dropped": 0,
                      "refused_peer": 0, "refused_busy": 0}
        # one limiter per kind: a flood of bad peers does not hide the database's warnings
        self._warn = _RateLimitedLog()          # the database (fallbacks)
        self._warn_bad = _RateLimitedLog()      # bad headers, silent or broken peers
        self._warn_peer = _RateLimitedLog()     # not in allowed_peers
        self._warn_busy = _RateLimitedLog()     # max_connections reached

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._open_spool()
        # Listening once the catalogue is read (at most PRELOAD_WAIT s: a database that does
        # not answer then gets the defaults): the first calls must not each wait for that read.
        preload = self.loop.run_in_executor(self.pool, self._preload)
        opening = None          # PostgreSQL: the loop's connections, opened meanwhile
        if self.env.dialect == "postgresql":
            self.pg_reads = PgReads(self.env.engine, self.workers, self.config.agi.timeout_ms,
                                    sync=lambda fn: self.loop.run_in_executor(self.pool, self.env.read, fn))
            opening = self.loop.create_task(self.pg_reads.open(PRELOAD_WAIT))
        try:
            await asyncio.wait_for(asyncio.shield(preload), PRELOAD_WAIT)
        except asyncio.TimeoutError:
            log.warning("FastAGI: the catalogue was not read within %.0f s; serving anyway", PRELOAD_WAIT)
        if opening is not None:
            await opening
        self.server = await asyncio.start_server(self._accept, self.host, self.port,
                                                 limit=p.MAX_LINE, reuse_address=True, backlog=1024,
                                                 reuse_port=self.reuse_port or None)
        self.port = self.server.sockets[0].getsockname()[1]
        log.info("FastAGI listening on %s:%s", self.host, self.port)

    def _open_spool(self) -> None:
        """This process's call-row spool, after queueing the rows that stopped servers left
        in theirs (before any new call's). A directory we cannot use: no spool (logged), the
        hooks then wait for their commits."""
        where = self.config.agi.spool_dir
        if not where:
            return
        writer = self.env.writer
        try:
            adopted = Spool.adopt(where)
            writer.spool = Spool.open(where)
        except OSError as e:
            log.warning("FastAGI: no call-row spool (%s: %s); each hook waits up to %d ms for "
                        "its row's commit instead", where, e.strerror or e,
                        commit_wait_ms(self.config, spooled=False))
            return
        for spool, rows in adopted:
            writer.replay(spool, rows)
        if adopted:
            log.info("FastAGI: writing %d call row(s) left in %d spool file(s) by a stopped "
                     "server", sum(len(r) for _, r in adopted), len(adopted))

    def _preload(self) -> None:
        try:
            n = hooks.preload_fallback_queues(self.env)
            log.debug("remembered the default queue of %d numbers", n)
        except Exception as e:  # noqa: BLE001 - only an optimisation for outages
            log.warning("could not preload the numbers' default queues: %s", e)
        gc.freeze()     # what is loaded now lives long: keep it out of the collector's passes
        self.preloaded = True

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.connections):
            task.cancel()
        if self.connections:
            await asyncio.gather(*self.connections, return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()
        if self.pg_reads is not None:
            await self.pg_reads.close()
        self.pool.shutdown(wait=False, cancel_futures=True)
        await asyncio.get_running_loop().run_in_executor(None, self.env.writer.close)
        self.env.close_connections()

    # ----------------------------------------------------------- connection
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if not peer:                          # gone before we looked (connect/close)
            writer.transport.abort()
            return
        if not self.peer_allowed(peer[0]):
            self.stats["refused_peer"] += 1
            self._warn_peer.warning("FastAGI: refused a connection from %s: not in [agi] "
                                    "allowed_peers", peer[0])
            writer.transport.abort()
            return
        if len(self.connections) >= self.max_connections:
            self.stats["refused_busy"] += 1
            self._warn_busy.warning("FastAGI: %d connections open ([agi] max_connections); "
                                    "closed a new one from %s", len(self.connections), peer[0])
            writer.transport.abort()
            return
        task = asyncio.current_task(self.loop)
        self.connections.add(task)
        try:
            await self._handle(reader, writer)
        except asyncio.CancelledError:
            # close() cancelled it (the connection is closed by _handle). Not re-raised: a
            # cancelled connection task makes Python 3.11's StreamReaderProtocol log an
            # "Exception in callback" traceback per open connection at every stop.
            pass
        finally:
            self.connections.discard(task)

    def peer_allowed(self, host: str) -> bool:
        """Whether ``host`` (a peer's address) is in ``[agi] allowed_peers``; an IPv4 peer of a
        dual-stack (``::``) listener, ``::ffff:127.0.0.1``, counts as its IPv4 address."""
        known = self._peers.get(host)
        if known is not None:
            return known
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        allowed = any(addr in net for net in self.allowed_peers)
        if len(self._peers) < 1024:         # the PBXes: a handful of addresses, checked once
            self._peers[host] = allowed
        return allowed

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # One timer per connection, moved for each phase (:class:`_Clock`): the header and each
        # reply within header_timeout, the whole request within DIALOG_TIMEOUT. A timer per read
        # (a Timeout, its task lookup and a timer handle each) cost 9 % of a route call's CPU.
        loop = self.loop
        clock = _Clock(loop, self.header_timeout)
        try:
            async with clock:
                env = await self._read_header(reader, writer)
                if env is None:
                    return
                self.stats["requests"] += 1
                req = p.parse_request(env)
                _FELL_BACK.set(False)
                CURRENT_LINKEDID.set((req.arg(2) if req.hook == "route" else req.arg(1))
                                     or env.get("agi_uniqueid") or None)
                clock.dialog()
                await self._drive(p.dialog(self.env, req), req, reader, writer, clock)
            _requests(req.hook if req.hook in _HOOKS else "other",
                      "fallback" if _FELL_BACK.get() else "ok").inc()
        except p.Hangup as e:
            log.debug("channel gone: %s", e)
        except PeerError as e:
            self.stats["dropped"] += 1
            self._warn_bad.warning("FastAGI: dropped a peer: %s", e)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except TimeoutError:
            if clock.waiting is _HEADER:
                self.stats["dropped"] += 1
                self._warn_bad.warning("FastAGI: no complete header within %.0f s; closing",
                                       self.header_timeout)
            elif clock.waiting is not None:
                self.stats["dropped"] += 1
                self._warn_bad.warning("FastAGI: dropped a peer: no reply to %s within %g s",
                                       " ".join(clock.waiting.split()[:2]), self.header_timeout)
            else:
                log.warning("FastAGI: a request was still running after %d s; closed", DIALOG_TIMEOUT)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - one request must never take the server down
            log.exception("FastAGI request failed")
        finally:
            if writer.transport.get_write_buffer_size():
                writer.transport.abort()      # a peer that reads nothing: never wait to flush
            else:
                writer.close()
                try:
                    await writer.wait_closed()
                except (ConnectionError, OSError):
                    pass
            # The channel went on. The writer thread's turn (CallWriter.release) comes now when
            # no other call is in progress, so that its share of the interpreter lock falls
            # between calls; else at the writer's release timer, with the rows of the calls
            # answered meanwhile: one commit for many instead of one each.
            if len(self.connections) <= 1:
                self.env.writer.release(loop)

    async def _read_header(self, reader, writer) -> Optional[dict]:
        """The ``agi_*`` header (the connection's timer bounds it: ``header_timeout``)."""
        env: dict[str, str] = {}
        total = 0
        try:
            line = await reader.readuntil(b"\n")            # garbage is refused at its first line
            total = len(line)
            if p.parse_header_line(line, env):
                return env
            if not line.endswith(b"\r\n"):
                # Asterisk's header (~25 lines, under one line's limit) in one read: its first
                # byte (a blank line ends it), then up to the blank line
                first = await reader.readexactly(1)
                if first == b"\n":
                    return env
                try:
                    rest = first + await reader.readuntil(b"\n\n")
                except asyncio.LimitOverrunError:
                    rest = first        # longer: left buffered, read line by line below
                if rest.endswith(b"\n\n"):
                    p.parse_header_lines(rest[:-2], env)
                    return env
                line = rest + await reader.readuntil(b"\n")
                total += len(line)
                p.parse_header_line(line, env)
            while True:
                line = await reader.readuntil(b"\n")
                total += len(line)
                if total > p.MAX_HEADER:
                    raise p.HeaderError("header too large")
                if p.parse_header_line(line, env):
                    return env
        except asyncio.IncompleteReadError as e:
            if e.partial or env:
                self._warn_bad.warning("FastAGI: connection closed in the middle of the header")
            return None                      # a bare connect/close (health check): nothing to say
        except asyncio.LimitOverrunError:
            err = "header line too long"
        except p.HeaderError as e:
            err = str(e)
        self.stats["bad_headers"] += 1
        self._warn_bad.warning("FastAGI: rejected a request: %s", err)
        writer.write((p.verbose(f"bad AGI request: {err}") + "\n").encode())
        try:
            await asyncio.wait_for(writer.drain(), 1.0)
        except (asyncio.TimeoutError, ConnectionError):
            pass
        return None

    async def _command(self, line: str, reader, writer, clock: "_Clock") -> p.Reply:
        """Send one command and read its reply. End of file is a hangup; a reply that is
        late (see the module's docstring) ends the connection (``clock``), one with a line over
        ``MAX_LINE`` bytes or over :data:`MAX_REPLY` bytes in all is a :class:`PeerError`."""
        writer.write(line.encode("utf-8") + b"\n")
        if writer.transport.get_write_buffer_size() > 65536:
            await writer.drain()
        if line.startswith(_WAITS_FOR_CALLER):
            return await self._reply(reader)      # the dialog's DIALOG_TIMEOUT bounds it
        clock.reply(line)
        reply = await self._reply(reader)
        clock.dialog()
        return reply

    async def _reply(self, reader) -> p.Reply:
        size = 0
        while True:
            raw = await _line(reader)
            size += len(raw)
            if size > MAX_REPLY:
                raise PeerError(f"a reply longer than {MAX_REPLY} bytes")
            text = raw.decode("utf-8", "replace").strip()
            if text == "HANGUP" or text == "":
                continue                      # Asterisk's hangup notice: the reply follows
            reply = p.parse_reply(text)
            if reply.code == 520 and text.startswith("520-"):
                while not raw.startswith(b"520 "):  # the usage, to "520 End of proper usage."
                    raw = await _line(reader)
                    size += len(raw)
                    if size > MAX_REPLY:
                        raise PeerError(f"a 520 usage text longer than {MAX_REPLY} bytes")
            return reply

    async def _work(self, step: p.Work, started: float) -> dict:
        if self.inflight >= self.max_backlog:
            self.stats["fallbacks"] += 1
            self._warn.warning("FastAGI: %d database jobs waiting; answering %s with defaults",
                               self.inflight, step.what)
            return step.fallback()
        budget = hooks.Budget(p.budget_seconds(self.config) - (time.monotonic() - started))
        if step.reads_only and self.inline_reads and self.preloaded:
            try:
                with self.env.deadline(budget.deadline):
                    return step.fn(budget)
            except Exception as e:  # noqa: BLE001 - interrupted at the deadline, DB gone, bug
                return self._fell_back(step, budget, e)
        if step.steps is not None and self.pg_reads is not None:
            task = self.pg_reads.start(step.steps, budget)
            if task is not None:
                try:
                    return await self._within(task, budget)
                except Lost:
                    pass                    # its connection broke: read through a thread
                except Exception as e:  # noqa: BLE001 - late, DB gone, bug: fail open
                    return self._fell_back(step, budget, e)
        try:
            return await self._within(self.loop.run_in_executor(self.pool, _guarded, step.fn, budget),
                                      budget)
        except Exception as e:  # noqa: BLE001 - late, DB down, locked, bug: fail open
            return self._fell_back(step, budget, e)

    async def _within(self, job: asyncio.Future, budget: hooks.Budget):
        """``job``'s result, waited for at most the time ``budget`` has left (TimeoutError).
        The job counts as in flight until it ends, late or not (``max_backlog``)."""
        self.inflight += 1
        job.add_done_callback(self._done)
        return await asyncio.wait_for(asyncio.shield(job), max(budget.remaining(), 0.001))

    def _fell_back(self, step: p.Work, budget: hooks.Budget, e: Exception) -> dict:
        """The defaults instead of ``step``'s answer (``e``: why); its late work writes nothing."""
        budget.cancelled = True
        self.stats["fallbacks"] += 1
        if isinstance(e, asyncio.TimeoutError) or budget.remaining() <= 0:
            self._warn.warning("FastAGI: %s took longer than %d ms; answered with defaults",
                               step.what, self.config.agi.timeout_ms)
        else:
            self._warn.warning("FastAGI: %s failed (%s: %s); answered with defaults", step.what,
                               type(e).__name__, str(e).splitlines()[0] if str(e) else "")
        return step.fallback()

    def _submit(self, step: p.Write):
        """Queue the call row for the writer thread (and the spool, in the same pass of the
        loop); whether the channel waits for its commit is decided once the variables are set
        (:meth:`_wait_written`)."""
        return self.env.writer.submit(step.values, step.overwrite, self.loop)

    async def _wait_written(self, job, since: float) -> bool:
        """Before the channel goes on: the row in the spool (written now if this pass of the
        loop has not yet), then committed or ``[agi] write_wait_ms`` (counted from the
        submission; :func:`~calltracking.hooks.env.commit_wait_ms`) passed and it is
        written in the background. With the spool and ``write_wait_ms = 0`` nothing waits:
        the writer thread gets the row once the connection is closed and no other call is
        open, else at the writer's release timer (:meth:`_handle`)."""
        loop = self.loop
        writer = self.env.writer
        writer.hand_over(loop)
        if not job.finished:
            wait = commit_wait_ms(self.config, job.spooled) / 1000.0 - (time.monotonic() - since)
            if wait <= 0 and job.spooled:
                return True             # on disk; committed in the background
            writer.release(loop)        # waited for: the thread gets it now
            waiter = job.wait_on()
            if waiter is not None:
                timer = loop.call_later(max(wait, 0.0), _wake, waiter)
                try:
                    await waiter
                finally:
                    timer.cancel()
            if not job.finished:
                writer.stats["late"] += 1       # written in the background
                return False
        return job.error is None        # a failure: the writer logged it; the routing stands

    def _done(self, fut) -> None:
        self.inflight -= 1
        if not fut.cancelled():
            fut.exception()                   # mark a late failure as retrieved

    async def _drive(self, gen: p.Dialog, req: p.Request, reader, writer, clock: "_Clock") -> None:
        started = time.monotonic()
        value = None
        rescued = False
        written = None                  # (future of the call row's commit, when submitted)
        while True:
            try:
                step = gen.send(value)
            except StopIteration:
                if written is not None:
                    await self._wait_written(*written)
                return
            except p.Hangup:
                raise
            except Exception:  # noqa: BLE001 - a bug in a hook: still answer the channel
                log.exception("FastAGI %s: dialog failed; answering with defaults", req.hook)
                if rescued:
                    return
                rescued = True
                gen = p.set_all(hooks.defaults(self.env, req.hook if req.hook in ("promo", "tag")
                                               else "route", req.arg(1), req.arg(2)),
                                 self.config.agi.mset)
                value = None
                continue
            if isinstance(step, p.Write):
                written = (self._submit(step), time.monotonic())
                value = None
                continue
            if isinstance(step, p.Work):
                fallbacks = self.stats["fallbacks"]
                value = await self._work(step, started)
                _latency(req.hook if req.hook in _HOOKS else "other").observe(time.monotonic() - started)
                if self.stats["fallbacks"] != fallbacks:
                    _FELL_BACK.set(True)
                started = time.monotonic()
            else:
                value = await self._command(step.line, reader, writer, clock)
                if step.line.startswith("GET DATA"):
                    started = time.monotonic()   # the budget restarts after the caller typed


_HEADER = "the header"


class _Clock:
    """The one timer of a connection (an async context manager: ``TimeoutError`` out of it
    once the deadline passes, as ``asyncio.timeout_at`` would), and what it waits for:
    :data:`_HEADER`, the reply to a command (the command's line) or None (the request, within
    :data:`DIALOG_TIMEOUT` of its header).

    A deadline moved later leaves the loop's timer where it is: the timer fires at the deadline
    it was set for and, finding the deadline moved on, sets itself for the new one. A call of a
    millisecond or so arms it once and cancels it once; moving an ``asyncio.Timeout`` for each
    reply and back (a timer handle cancelled and one made each time) was 3 % of the event
    loop's time at saturation."""

    __slots__ = ("loop", "step", "waiting", "end", "when", "armed", "handle", "task", "expired",
                 "cancelling")

    def __init__(self, loop, step: float):
        self.loop, self.step = loop, step
        self.waiting: Optional[str] = _HEADER
        self.end = 0.0
        self.when = loop.time() + step      # the deadline
        self.armed = 0.0                    # when the loop's timer fires
        self.handle = None
        self.task: Optional[asyncio.Task] = None
        self.expired = False
        self.cancelling = 0

    async def __aenter__(self) -> "_Clock":
        self.task = asyncio.current_task(self.loop)
        self.cancelling = self.task.cancelling()
        self._arm(self.when)
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        if self.expired and self.task.uncancel() <= self.cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc     # our cancellation, not the server's close()

    def _arm(self, at: float) -> None:
        self.armed = at
        self.handle = self.loop.call_at(at, self._fire)

    def _fire(self) -> None:
        self.handle = None
        if self.loop.time() < self.when:    # moved on since it was armed
            self._arm(self.when)
            return
        self.expired = True
        self.task.cancel()

    def _move(self, when: float) -> None:
        self.when = when
        if self.handle is not None and when < self.armed:      # sooner: the timer must move
            self.handle.cancel()
            self._arm(when)

    def dialog(self) -> None:
        """The header is read or a reply came: the request's own deadline bounds what follows."""
        if not self.end:
            self.end = self.loop.time() + DIALOG_TIMEOUT
        self.waiting = None
        self._move(self.end)

    def reply(self, line: str) -> None:
        """A command was sent: its reply within ``header_timeout`` (nor past the request's end)."""
        self.waiting = line
        self._move(min(self.loop.time() + self.step, self.end))


def _wake(waiter: "asyncio.Future") -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _line(reader: asyncio.StreamReader) -> bytes:
    """One reply line with its newline: end of file is a hangup, an endless line a PeerError."""
    try:
        return await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError:
        raise p.Hangup("connection closed") from None
    except asyncio.LimitOverrunError:
        raise PeerError(f"a reply line longer than {p.MAX_LINE} bytes") from None


@functools.lru_cache(maxsize=None)
def _requests(hook: str, outcome: str):
    """The request counter of one hook and outcome (labels() per call cost a lock and a lookup)."""
    return metrics.AGI_REQUESTS.labels(hook, outcome)


@functools.lru_cache(maxsize=None)
def _latency(hook: str):
    return metrics.AGI_LATENCY.labels(hook)


def _guarded(fn, budget: hooks.Budget):
    budget.check()            # waited in the queue past the budget: the channel has its answer
    return fn(budget)


async def run_agi(config, sessionmaker, stop: asyncio.Event, ready: Optional[asyncio.Event] = None,
                  **kwargs) -> None:
    """Serve FastAGI on ``[agi] listen`` until ``stop`` is set; sets ``ready`` once listening."""
    server = AgiServer(config, sessionmaker, **kwargs)
    await server.start()
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        await server.close()
        log.info("FastAGI server stopped")
