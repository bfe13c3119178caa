"""The asyncio DNI server (webui.dni_server) over real sockets: the same answers as the WSGI path,
keep-alive, pipelining, limits, garbage, slow clients, concurrency (both databases)."""
from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
from sqlalchemy import func, select

from calltracking.db import session_scope
from calltracking.models import PoolReservation

from support.dni import FALLBACK, SNIPPET_ROOT, FastServer, make_project
from support.web import UA, LiveServer, post_json, raw_exchange, read_response, request_bytes

SITE = "https://shop.example"
O = {"Origin": SITE}           # browsers send it with every POST; required when origins are listed


@pytest.fixture
def fast(db_url, session_factory):
    ids = make_project(session_factory, origins=f"{SITE}\nhttps://www.shop.example")
    s = FastServer(db_url, session_factory)
    s.ids = ids
    yield s
    s.close()


def test_assign_and_heartbeat_over_one_keepalive_connection(fast):
    with socket.create_connection(("127.0.0.1", fast.port), timeout=10) as sock:
        buf = bytearray()
        sock.sendall(request_bytes("POST", "/api/dni/assign", {"project": "acme", "utm_source": "google"},
                                   {"Origin": SITE, "Content-Type": "text/plain"}))
        st, h, body = read_response(sock, buf)
        a = json.loads(body)
        assert st == 200 and a["kind"] == "pool" and a["number"] == "+74950002000"
        assert a["default"] == "+74951234567" and h["access-control-allow-origin"] == SITE
        assert h["cache-control"] == "no-store" and h["content-type"] == "application/json"
        assert h["connection"] == "keep-alive"
        for _ in range(3):        # several requests on the same connection
            sock.sendall(request_bytes("POST", "/api/dni/heartbeat",
                                       {"project": "acme", "visitor_id": a["visitor_id"]}, {"Origin": SITE}))
            st, _, body = read_response(sock, buf)
            assert st == 200 and json.loads(body)["number"] == a["number"]
        # the returning visitor (general path, in the thread pool) keeps its number
        sock.sendall(request_bytes("POST", "/api/dni/assign", {"project": "acme", "visitor_id": a["visitor_id"]}, O))
        st, _, body = read_response(sock, buf)
        assert st == 200 and json.loads(body)["number"] == a["number"]
        sock.sendall(request_bytes("GET", "/healthz"))
        st, _, body = read_response(sock, buf)
        assert (st, json.loads(body)) == (200, {"status": "ok"})


def test_pipelined_requests_are_answered_in_order(fast):
    reqs = (request_bytes("GET", "/healthz")
            + request_bytes("POST", "/api/dni/assign", {"project": "acme", "utm_term": "one"}, O)
            + request_bytes("GET", "/nowhere")
            + request_bytes("POST", "/api/dni/assign", {"project": "acme", "utm_term": "two"}, O)
            + request_bytes("OPTIONS", "/api/dni/assign", headers={"Origin": SITE, "Connection": "close"}))
    with socket.create_connection(("127.0.0.1", fast.port), timeout=10) as sock:
        sock.sendall(reqs)
        buf = bytearray()
        got = [read_response(sock, buf) for _ in range(5)]
        assert sock.recv(10) == b""                             # Connection: close honoured
    assert [g[0] for g in got] == [200, 200, 404, 200, 204]
    assert json.loads(got[2][2]) == {"error": "not found"}
    assert json.loads(got[1][2])["number"] == "+74950002000" and json.loads(got[3][2])["number"] == "+74950002001"
    assert got[4][1]["connection"] == "close"


def test_cors_preflight_and_foreign_origin(fast):
    out = raw_exchange(fast.port, request_bytes("OPTIONS", "/api/dni/assign", headers={
        "Origin": SITE, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type",
        "Connection": "close"}))
    head = out.decode("latin-1")
    assert head.startswith("HTTP/1.1 204 ") and f"Access-Control-Allow-Origin: {SITE}\r\n" in head
    assert "Access-Control-Allow-Headers: Content-Type" in head and "Content-Length" not in head
    out = raw_exchange(fast.port, request_bytes("POST", "/api/dni/assign", {"project": "acme"},
                                                {"Origin": "https://evil.example", "Connection": "close"}))
    head, body = out.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 403 ") and b"Access-Control-Allow-Origin" not in head
    assert "origin" in json.loads(body)["error"]
    out = raw_exchange(fast.port, request_bytes("GET", "/api/dni/assign", headers={"Connection": "close"}))
    assert out.startswith(b"HTTP/1.1 405 ") and b"Allow: POST, OPTIONS" in out


def test_snippet_is_served_with_cache_headers(fast):
    with socket.create_connection(("127.0.0.1", fast.port), timeout=10) as sock:
        buf = bytearray()
        sock.sendall(request_bytes("GET", "/dni.js?v=3"))
        st, h, body = read_response(sock, buf)
        assert st == 200 and body == SNIPPET_ROOT.read_bytes()
        assert h["content-type"].startswith("application/javascript") and "max-age=300" in h["cache-control"]
        assert h["access-control-allow-origin"] == "*" and h["etag"]
        sock.sendall(request_bytes("GET", "/dni.js", headers={"If-None-Match": h["etag"]}))
        st, h2, body = read_response(sock, buf)
        assert (st, body) == (304, b"") and h2["etag"] == h["etag"]
        sock.sendall(request_bytes("HEAD", "/dni.js"))
        sock.sendall(request_bytes("GET", "/healthz"))           # HEAD has no body: the next answer follows
        st, h3, body = _head_response(sock, buf)
        assert st == 200 and int(h3["content-length"]) == len(SNIPPET_ROOT.read_bytes())
        st, _, body = read_response(sock, buf)
        assert st == 200 and json.loads(body) == {"status": "ok"}


def _head_response(sock, buf):
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(65536)
    end = buf.index(b"\r\n\r\n")
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    del buf[:end + 4]
    return int(lines[0].split(" ")[1]), {k.lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:])}, b""


def test_rate_limit_429(db_url, session_factory):
    make_project(session_factory, origins="*")
    s = FastServer(db_url, session_factory, config={"web__trusted_proxies": "127.0.0.1"},
                   DNI_RATE_BURST=3, DNI_RATE_PER_MINUTE=60)
    try:
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as sock:
            buf = bytearray()
            codes = []
            for _ in range(5):        # behind a trusted local proxy: the forwarded client address counts
                sock.sendall(request_bytes("POST", "/api/dni/assign", {"project": "acme"},
                                           {"X-Forwarded-For": "203.0.113.9", **O}))
                st, h, body = read_response(sock, buf)
                codes.append(st)
            assert codes == [200, 200, 200, 429, 429]
            assert h["retry-after"] == "10" and json.loads(body) == {"error": "too many requests"}
            sock.sendall(request_bytes("POST", "/api/dni/assign", {"project": "acme"},
                                       {"X-Forwarded-For": "198.51.100.1", **O}))
            assert read_response(sock, buf)[0] == 200             # another client, another bucket
        # waitress on the same application shares the buckets (one DniApi): limited there too
        w = LiveServer(db_url, session_factory, app=s.app)
        try:
            st, body, _ = post_json(f"{w.url}/api/dni/assign", {"project": "acme"},
                                    {"X-Forwarded-For": "203.0.113.9", **O})
            assert (st, body) == (429, {"error": "too many requests"})
        finally:
            w.close()
    finally:
        s.close()


def test_oversized_and_bad_bodies(fast):
    out = raw_exchange(fast.port, request_bytes("POST", "/api/dni/assign", b"{" * 9000))
    head, body = out.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 413 ") and b"Connection: close" in head
    assert json.loads(body) == {"error": "request body too large (at most 8192 bytes)"}
    # announced but never sent: refused from the header alone, at once
    t = time.monotonic()
    out = raw_exchange(fast.port, b"POST /api/dni/assign HTTP/1.1\r\nContent-Length: 3000000\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 413 ") and time.monotonic() - t < 3
    out = raw_exchange(fast.port, request_bytes("POST", "/api/dni/assign", b"{not json",
                                                {"Connection": "close", **O}))
    assert out.startswith(b"HTTP/1.1 400 ") and b'"invalid JSON body"' in out
    out = raw_exchange(fast.port, b"POST /api/dni/assign HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  b"5\r\nhello\r\n0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 411 ") and b"Content-Length" in out


@pytest.mark.parametrize("garbage, status", [
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)) + b"\r\n\r\n", 400),   # TLS hello
    (b"GET /healthz\r\n\r\n", 400),
    (b"GET  /healthz HTTP/1.1\r\n\r\n", 400),
    (b"get /healthz HTTP/1.1\r\n\r\n", 400),
    (b"GET /healthz HTTP/2.0\r\n\r\n", 505),
    (b"GET healthz HTTP/1.1\r\n\r\n", 400),
    (b"GET /healthz HTTP/1.1\r\nNo colon here\r\n\r\n", 400),
    (b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    (b"GET /healthz HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n", 400),
    (b"GET /healthz HTTP/1.1\r\nX-A: a\x00b\r\n\r\n", 400),
    (b"POST /api/dni/assign HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
    (b"POST /api/dni/assign HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    (b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 17000 + b"\r\n\r\n", 431),
    (b"GET /healthz HTTP/1.1\r\n" + b"X-A: 1\r\n" * 150 + b"\r\n", 431),
])
def test_garbage_is_refused_and_the_server_keeps_serving(fast, garbage, status):
    out = raw_exchange(fast.port, garbage)
    head, body = out.split(b"\r\n\r\n", 1)
    assert head.startswith(f"HTTP/1.1 {status} ".encode()) and b"Connection: close" in head
    assert json.loads(body)["error"]
    out = raw_exchange(fast.port, request_bytes("POST", "/api/dni/assign", {"project": "acme"},
                                                {"Connection": "close", **O}))
    assert out.startswith(b"HTTP/1.1 200 ") and b'"kind":"pool"' in out


def test_http10_and_connection_close(fast):
    out = raw_exchange(fast.port, request_bytes("GET", "/healthz", version="HTTP/1.0"))
    assert out.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in out     # and closed (recv ended)
    out = raw_exchange(fast.port, request_bytes("POST", "/api/dni/assign", {"project": "acme"},
                                                {"Connection": "close", **O}))
    assert out.count(b"HTTP/1.1 ") == 1 and b"Connection: close" in out


def test_expect_100_continue(fast):
    body = json.dumps({"project": "acme", "referrer": "r" * 2000}).encode()
    with socket.create_connection(("127.0.0.1", fast.port), timeout=10) as sock:
        sock.sendall(f"POST /api/dni/assign HTTP/1.1\r\nUser-Agent: {UA}\r\nExpect: 100-continue\r\nOrigin: {SITE}\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n"
                     .encode())
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        st, _, data = read_response(sock, bytearray())
        assert st == 200 and json.loads(data)["kind"] == "pool"


def test_half_sent_head_is_closed_after_the_timeout_without_blocking_others(fast, monkeypatch):
    from webui import dni_server

    monkeypatch.setattr(dni_server, "HEADER_IDLE", 1.0)
    slow = socket.create_connection(("127.0.0.1", fast.port), timeout=10)
    silent = socket.create_connection(("127.0.0.1", fast.port), timeout=10)    # connects, sends nothing
    try:
        slow.sendall(b"POST /api/dni/assign HTTP/1.1\r\nHost: x\r\nContent-Le")
        t0 = time.monotonic()
        for i in range(5):                       # others are served meanwhile, at once
            out = raw_exchange(fast.port, request_bytes("POST", "/api/dni/assign", {"project": "acme"},
                                                        {"Connection": "close", **O}), timeout=2)
            assert out.startswith(b"HTTP/1.1 200 ")
        assert time.monotonic() - t0 < 1.0
        got = b""
        while True:
            chunk = slow.recv(1000)
            if not chunk:
                break
            got += chunk
        waited = time.monotonic() - t0
        assert got.startswith(b"HTTP/1.1 408 ") and 0.9 < waited < 4.0
        assert silent.recv(100) == b""           # the silent one is closed too (no answer owed)
    finally:
        slow.close()
        silent.close()


def test_connections_are_bounded(db_url, session_factory):
    make_project(session_factory)
    s = FastServer(db_url, session_factory, max_connections=3)
    socks = []
    try:
        for _ in range(3):                        # three clients, each in the middle of a head
            c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            c.sendall(b"GET /healthz HTTP/1.1\r\n")
            socks.append(c)
        time.sleep(0.2)
        out = raw_exchange(s.port, request_bytes("GET", "/healthz"))
        assert out.startswith(b"HTTP/1.1 503 ") and b"too many connections" in out
        socks[0].sendall(b"\r\n")                 # one finishes: now idle keep-alive
        st, _, _ = read_response(socks[0], bytearray())
        assert st == 200
        out = raw_exchange(s.port, request_bytes("GET", "/healthz", headers={"Connection": "close"}))
        assert out.startswith(b"HTTP/1.1 200 ")  # the idle one made room
        assert socks[0].recv(10) == b""
    finally:
        for c in socks:
            c.close()
        s.close()


def test_100_concurrent_new_visitors_on_a_small_pool(db_url, session_factory):
    ids = make_project(session_factory, pool_size=20, origins="*")
    # 100 visitors behind the reverse proxy (each its own client address)
    s = FastServer(db_url, session_factory, config={"web__trusted_proxies": "127.0.0.1"})
    payloads = [request_bytes("POST", "/api/dni/assign", {"project": "acme", "utm_term": f"kw{i}"},
                              {"Connection": "close", "X-Forwarded-For": f"198.51.100.{i}", **O})
                for i in range(100)]

    async def one(data):
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(data)
        out = await reader.read()
        writer.close()
        return out

    async def main():
        return await asyncio.gather(*(one(p) for p in payloads))

    try:
        outs = asyncio.run(main())
    finally:
        s.close()
    bodies = [json.loads(o.split(b"\r\n\r\n", 1)[1]) for o in outs]
    assert all(o.startswith(b"HTTP/1.1 200 ") for o in outs)
    pool = [b["number"] for b in bodies if b["kind"] == "pool"]
    assert len(pool) == 20 and len(set(pool)) == 20                       # never the same number twice
    assert all(b["kind"] == "fallback" and b["number"] == FALLBACK and b["exhausted"]
               for b in bodies if b["kind"] != "pool")
    with session_scope(session_factory) as sess:
        live = sess.execute(select(PoolReservation.tracking_number_id, func.count())
                            .where(PoolReservation.released_at.is_(None))
                            .group_by(PoolReservation.tracking_number_id)).all()
    assert len(live) == 20 and all(n == 1 for _, n in live)
    assert ids["pool"]


def test_a_pipelining_client_that_reads_late_gets_every_answer(fast):
    """Flow control: 300 pipelined requests sent before reading anything (reading is paused and
    resumed on the server meanwhile), then every answer arrives, in order."""
    n = 300
    fast.app.config.update(DNI_RATE_BURST=1000)     # 100 API requests at once from one client
    reqs = b"".join(request_bytes("POST", "/api/dni/assign", {"project": "acme", "utm_term": f"k{i}"}, O)
                    if i % 3 == 0 else request_bytes("GET", "/healthz" if i % 3 == 1 else "/dni.js")
                    for i in range(n))
    with socket.create_connection(("127.0.0.1", fast.port), timeout=20) as sock:
        sock.sendall(reqs)
        time.sleep(0.3)
        buf = bytearray()
        got = [read_response(sock, buf) for _ in range(n)]
    assert [g[0] for g in got] == [200] * n
    kinds = [json.loads(g[2])["kind"] for g in got[::3]]       # one client: 4 holds, then refused
    assert kinds == ["pool"] * 4 + ["refused"] * (len(kinds) - 4)
    assert all(g[2] == SNIPPET_ROOT.read_bytes() for g in got[2::3])


def test_head_on_the_api_has_no_body(fast):
    with socket.create_connection(("127.0.0.1", fast.port), timeout=10) as sock:
        sock.sendall(request_bytes("HEAD", "/api/dni/assign") + request_bytes("GET", "/healthz"))
        buf = bytearray()
        st, h, _ = _head_response(sock, buf)
        assert st == 405 and h["allow"] == "POST, OPTIONS"
        st, _, body = read_response(sock, buf)
        assert st == 200 and json.loads(body) == {"status": "ok"}
