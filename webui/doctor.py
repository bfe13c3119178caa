"""`calltracking doctor` checks of the web side: the web UI port and the DNI server answer."""
from __future__ import annotations

import http.client
import json

from calltracking.doctor import FAIL, OK, Result, check, reachable


def healthz(host: str, port: int, timeout: float = 2.0) -> tuple[int, str, dict]:
    """``GET /healthz``: (status, Server header, JSON body or {})."""
    conn = http.client.HTTPConnection(reachable(host), port, timeout=timeout)
    try:
        conn.request("GET", "/healthz", headers={"Connection": "close"})
        r = conn.getresponse()
        raw = r.read(4096)
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        return r.status, r.getheader("Server", ""), body if isinstance(body, dict) else {}
    finally:
        conn.close()


@check("web ui")
def _web(ctx):
    host, port = ctx.config.web.listen
    try:
        status, _, body = healthz(host, port)
    except OSError as e:
        return [Result(FAIL, "web ui", f"nothing answers on {host}:{port}: {e}",
                       "start it: `calltracking run` (or `calltracking web`); check [web] listen")]
    if status != 200 or body.get("status") != "ok":
        return [Result(FAIL, "web ui", f"{host}:{port} answered HTTP {status}, not calltracking's web UI",
                       "another program uses the port; change [web] listen")]
    return [Result(OK, "web ui", f"web UI answers on http://{host}:{port}/")]


@check("dni server")
def _dni(ctx):
    listen = ctx.config.dni.listen
    if not listen:
        return [Result(OK, "dni server", "not started ([dni] listen is empty): the web UI port serves "
                       "dni.js and /api/dni/*")]
    host, port = listen
    try:
        status, server, body = healthz(host, port)
    except OSError as e:
        return [Result(FAIL, "dni server", f"nothing answers on {host}:{port}: {e}",
                       "start it: `calltracking run` (or `calltracking web`), which start it next to "
                       "the web UI; check [dni] listen (empty: not started)")]
    if status != 200 or server != "calltracking-dni" or body.get("status") != "ok":
        return [Result(FAIL, "dni server", f"{host}:{port} answered HTTP {status} "
                       f"(server {server[:40]!r}), not calltracking's DNI server",
                       "another program uses the port; change [dni] listen and the reverse proxy's "
                       "upstream for /dni.js and /api/dni/")]
    return [Result(OK, "dni server", f"DNI server answers on http://{host}:{port}/ (publish /dni.js "
                   "and /api/dni/ through the reverse proxy)")]
