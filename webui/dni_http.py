"""HTTP/1.1 request heads and responses for the DNI server (pure: no I/O; see ``dni_server``).

Strict on purpose (the server faces the Internet, possibly without a proxy):
request line ``METHOD SP /target SP HTTP/1.x``, header lines ``name: value``
with a token name and no whitespace before the colon, no obsolete line
folding, no control characters, at most :data:`MAX_HEAD` bytes and
:data:`MAX_HEADERS` lines; ``Content-Length`` digits only (duplicates must
agree); ``Transfer-Encoding`` is refused (411: send a Content-Length). Every
violation is an :class:`HttpError` with the status and a message for the
client; the connection is closed after answering it.
"""
from __future__ import annotations

import json
import re
from email.utils import formatdate

from webui.dni import STATUS

MAX_HEAD = 16 * 1024        # request line + headers
MAX_HEADERS = 100

_METHOD_RX = re.compile(rb"[A-Z]{1,20}")
_TOKEN_RX = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_VALUE_BAD_RX = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_VERSION_RX = re.compile(rb"HTTP/(\d)\.(\d)")


class HttpError(Exception):
    """A request we answer with ``status`` and ``{"error": message}``, then close."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class Head:
    """A parsed request head: ``headers`` maps lower-case names to values (repeats joined by ", ")."""

    __slots__ = ("method", "path", "version", "headers", "length", "keep_alive")

    def __init__(self, method: str, path: str, version: tuple, headers: dict, length: int, keep_alive: bool):
        self.method, self.path, self.version, self.headers = method, path, version, headers
        self.length, self.keep_alive = length, keep_alive


def parse_head(raw: bytes) -> Head:
    """Parse the bytes before the blank line (``\\r\\n\\r\\n`` excluded). Raises HttpError."""
    lines = raw.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not _METHOD_RX.fullmatch(parts[0]):
        raise HttpError(400, "malformed request line")
    method, target, proto = parts
    m = _VERSION_RX.fullmatch(proto)
    if m is None:
        raise HttpError(400, "malformed request line")
    version = (int(m.group(1)), int(m.group(2)))
    if version[0] != 1:
        raise HttpError(505, "only HTTP/1.0 and HTTP/1.1 are supported")
    if target.startswith(b"http://") or target.startswith(b"https://"):     # absolute form
        slash = target.find(b"/", target.find(b"//") + 2)
        target = target[slash:] if slash > 0 else b"/"
    if not target.startswith(b"/") or _VALUE_BAD_RX.search(target) or b"\t" in target:
        raise HttpError(400, "malformed request target")
    if len(lines) - 1 > MAX_HEADERS:
        raise HttpError(431, "too many header lines")
    headers: dict = {}
    for line in lines[1:]:
        colon = line.find(b":")
        if colon <= 0:
            raise HttpError(400, "malformed header line")
        name = line[:colon]
        if not _TOKEN_RX.fullmatch(name):      # also refuses "Name :" and folded lines
            raise HttpError(400, "malformed header name")
        value = line[colon + 1:].strip(b" \t")
        if _VALUE_BAD_RX.search(value):
            raise HttpError(400, "control character in a header value")
        key = name.decode("ascii").lower()
        text = value.decode("latin-1")
        if key in headers:
            if key == "content-length" and headers[key] != text:
                raise HttpError(400, "conflicting Content-Length headers")
            if key in ("content-length", "host"):
                continue
            text = headers[key] + ", " + text
        headers[key] = text
    if "transfer-encoding" in headers:
        raise HttpError(411, "Transfer-Encoding is not supported; send the body with a Content-Length")
    cl = headers.get("content-length")
    length = 0
    if cl is not None:
        if not cl.isdigit() or len(cl) > 12:
            raise HttpError(400, "invalid Content-Length")
        length = int(cl)
    conn = headers.get("connection", "").lower()
    keep_alive = version == (1, 1) and "close" not in [t.strip() for t in conn.split(",")]
    path = target.split(b"?", 1)[0].decode("latin-1")
    return Head(method.decode("ascii"), path, version, headers, length, keep_alive)


class DateCache:
    """The ``Date`` header value, formatted at most once a second."""

    def __init__(self):
        self.second, self.value = -1, ""

    def get(self, now_epoch: float) -> str:
        s = int(now_epoch)
        if s != self.second:
            self.second, self.value = s, formatdate(s, usegmt=True)
        return self.value


def response(status: int, headers: list, body: bytes, keep_alive: bool, date: str, head_only: bool = False) -> bytes:
    """The bytes of one HTTP/1.1 response (Content-Length added unless already in ``headers``)."""
    out = ["HTTP/1.1 ", STATUS.get(status) or f"{status} Status", "\r\nDate: ", date,
           "\r\nServer: calltracking-dni\r\n"]
    has_length = no_body = status in (204, 304)              # never a Content-Length there
    for k, v in headers:
        if k == "Content-Length":
            if no_body:
                continue
            has_length = True
        out += (k, ": ", v, "\r\n")
    if not has_length:
        out += ("Content-Length: ", str(len(body)), "\r\n")
    out.append("Connection: keep-alive\r\n\r\n" if keep_alive else "Connection: close\r\n\r\n")
    data = "".join(out).encode("latin-1")
    return data if head_only or status in (204, 304) else data + body


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()
