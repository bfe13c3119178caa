"""A fake SMS gateway on loopback (real HTTP, ``http.server`` in a thread) that answers like
each provider's public API: Twilio's Messages API, SMS.ru ``/sms/send``, SMSC.ru
``/sys/send.php``, and anything else as a generic gateway (``200 OK``).

``gateway.script`` is a list of what the next requests get, in order: ``("status", 503)``,
``("hang", seconds)`` (no answer: the client times out), ``("answer", status, bytes)``,
``("redirect", status, location)``; once it
is empty each request is accepted. ``refuse`` holds numbers the gateway refuses (as the
provider's own error). Every request is kept in ``requests`` (method, path, query, headers,
raw body, form fields, JSON).
"""
from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Gateway:
    def __init__(self):
        self.requests: list[dict] = []
        self.script: list[tuple] = []
        self.refuse: set[str] = set()
        self.lock = threading.Lock()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sent_to(self, number: str) -> list[dict]:
        """The requests that carried ``number`` (with or without the +)."""
        digits = number.lstrip("+")
        return [r for r in self.requests if digits in json.dumps([r["form"], r["json"], r["query"]])]

    # what each provider answers when it accepts or refuses one number
    def _accept(self, path: str, form: dict) -> tuple[int, bytes]:
        n = len(self.requests)
        if path.endswith("/Messages.json"):
            to = form.get("To", "")
            if to in self.refuse:
                return 400, json.dumps({"code": 21211, "message": f"The 'To' number {to} is not a valid phone "
                                        "number.", "more_info": "https://www.twilio.com/docs/errors/21211",
                                        "status": 400}).encode()
            return 201, json.dumps({"sid": f"SM{n:032x}", "status": "queued", "to": to,
                                    "body": form.get("Body", ""), "num_segments": "1"}).encode()
        if path == "/sms/send":
            to = form.get("to", "")
            one = ({"status": "ERROR", "status_code": 207, "status_text": "На этот номер нельзя отправлять "
                    "сообщения"} if "+" + to in self.refuse else
                   {"status": "OK", "status_code": 100, "sms_id": f"000000-{n:08d}"})
            if form.get("api_id") != "smsru-api-id":
                return 200, json.dumps({"status": "ERROR", "status_code": 200,
                                        "status_text": "Неправильный api_id"}, ensure_ascii=False).encode()
            return 200, json.dumps({"status": "OK", "status_code": 100, "sms": {to: one}, "balance": 4122.56},
                                   ensure_ascii=False).encode()
        if path == "/sys/send.php":
            if form.get("phones") in self.refuse:
                return 200, json.dumps({"error": "invalid number", "error_code": 7, "id": n}).encode()
            return 200, json.dumps({"id": n, "cnt": 1}).encode()
        return 200, b"OK"

    @contextmanager
    def running(self):
        gw = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self):
                size = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(size) if size else b""
                u = urlsplit(self.path)
                ctype = self.headers.get("Content-Type", "")
                form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()} \
                    if "x-www-form-urlencoded" in ctype else {}
                body_json = json.loads(raw) if "json" in ctype and raw else None
                with gw.lock:
                    gw.requests.append({"method": self.command, "path": u.path,
                                        "query": {k: v[0] for k, v in parse_qs(u.query).items()},
                                        "headers": {k.lower(): v for k, v in self.headers.items()},
                                        "body": raw, "form": form, "json": body_json})
                    step = gw.script.pop(0) if gw.script else None
                if step and step[0] == "hang":
                    time.sleep(step[1])
                    return
                if step and step[0] == "status":
                    code, out = step[1], b'{"error": "internal secret detail"}'
                elif step and step[0] in ("answer", "redirect"):
                    code, out = step[1], b"" if step[0] == "redirect" else step[2]
                else:
                    code, out = gw._accept(u.path, form)
                self.send_response(code)
                if step and step[0] == "redirect":
                    self.send_header("Location", step[2])
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = _handle

            def log_message(self, *a):
                pass

        srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        srv.daemon_threads = True
        self.port = srv.server_address[1]
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        try:
            yield self
        finally:
            srv.shutdown()
            srv.server_close()
