"""The load client of ``bench/dni.py load``: cheap, and it checks every answer.

Raw HTTP/1.1 keep-alive on asyncio (uvloop when installed) in one process:
the request bytes are built once (every request is a NEW visitor: no visitor
id, so each answer must carry a distinct pool number); a response is read by
Content-Length and its JSON body decoded (status 200, ``kind`` "pool", the
number) — so a double assignment or a fallback is always seen.

Closed loop (``rate`` 0): each connection sends its next request when the
answer arrives. Open loop (``rate`` > 0): each connection sends on a fixed
schedule of ``connections / rate`` seconds and the latency counts from the
scheduled time, so a slow server is not hidden by the client waiting
(no coordinated omission).

CPU of other processes (the server, PostgreSQL) is read from ``/proc``.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids) -> float:
    """utime + stime of these processes (seconds); vanished ones count 0."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / _TICK


def children(ppid: int) -> list:
    out = [ppid]
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    if int(f.read().rsplit(b")", 1)[1].split()[1]) == ppid:
                        out.append(int(name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def request_bytes(path: str, body: dict, headers: dict) -> bytes:
    raw = json.dumps(body).encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}Content-Length: {len(raw)}\r\n\r\n"
            .encode() + raw)


class _Conn(asyncio.Protocol):
    def __init__(self):
        self.buf = bytearray()
        self.waiter = None
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        lower = bytes(self.buf[:end]).lower()
        i = lower.find(b"\r\ncontent-length:")
        length = int(lower[i + 17:lower.find(b"\r\n", i + 2)]) if i >= 0 else 0
        if len(self.buf) < end + 4 + length:
            return
        status = int(self.buf[9:12])
        body = bytes(self.buf[end + 4:end + 4 + length])
        del self.buf[:end + 4 + length]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((status, body))

    def connection_lost(self, exc):
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((0, b""))


async def _run(port, req, connections, t_measure, t_end, rate):
    loop = asyncio.get_running_loop()
    lat, statuses, kinds, numbers, warmup_bad, done = [], Counter(), Counter(), [], Counter(), [0]

    async def one_conn(k):
        _, conn = await loop.create_connection(_Conn, "127.0.0.1", port)
        interval = connections / rate if rate else 0.0
        nxt = time.monotonic() + (k * interval / connections if interval else 0.0)
        while True:
            if interval:
                pause = nxt - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
                t0, nxt = nxt, nxt + interval
            else:
                t0 = time.monotonic()
            if t0 >= t_end:
                break
            conn.waiter = loop.create_future()
            conn.transport.write(req)
            status, body = await conn.waiter
            t1 = time.monotonic()
            if status == 0:                                 # connection lost: reconnect
                _, conn = await loop.create_connection(_Conn, "127.0.0.1", port)
            data = json.loads(body) if status == 200 else {}
            if data.get("kind") == "pool":
                numbers.append(data["number"])              # every answer, warm-up included
            elif t0 < t_measure:
                warmup_bad[status, data.get("kind")] += 1
            if t_measure <= t1 < t_end:
                done[0] += 1                                # answered inside the window
            if t0 < t_measure:
                continue
            lat.append(t1 - t0)
            statuses[status] += 1
            if status == 200:
                kinds[data.get("kind")] += 1
        conn.transport.close()

    await asyncio.gather(*(one_conn(k) for k in range(connections)))
    return lat, statuses, kinds, numbers, sum(warmup_bad.values()), done[0]


def client(port, req, connections, t_measure, t_end, rate, out_q):
    """Runs in a process of its own; puts (latencies, statuses, kinds, numbers, warm-up failures, cpu s,
    answers received inside the window)."""
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    c0 = time.process_time()
    lat, statuses, kinds, numbers, bad, done = asyncio.run(_run(port, req, connections, t_measure, t_end, rate))
    out_q.put((lat, dict(statuses), dict(kinds), numbers, bad, time.process_time() - c0, done))


def summarize(seconds, lat, statuses, kinds, numbers) -> dict:
    """Figures of the requests SENT inside the window (open loop: the offered ones)."""
    lat = sorted(lat)
    dup = Counter(numbers)

    def pct(q):
        return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 2) if lat else None

    return {"requests": len(lat), "statuses": statuses, "kinds": kinds,
            "errors": len(lat) - statuses.get(200, 0),
            "assignments_per_s": round(kinds.get("pool", 0) / seconds, 1),
            "requests_per_s": round(len(lat) / seconds, 1),
            "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": pct(1.0),
            "double_assigned": sum(1 for c in dup.values() if c > 1)}
