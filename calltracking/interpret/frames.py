"""The AMI wire format: ``Key: Value`` lines, CRLF, a blank line ends a frame.

The parser works on bytes and decodes whole frames, so a multi-byte UTF-8
character split across two TCP reads is kept (panoramisk decodes each read
on its own and drops it). Lines without ``": "`` are skipped; a frame with
neither ``Event`` nor ``Response`` is malformed and counted; a frame that
grows beyond ``max_frame`` bytes without an end is dropped and counted.
"""
from __future__ import annotations

from typing import Optional

SEP = b"\r\n\r\n"


def parse_frame(text: str) -> Optional[dict]:
    headers: dict = {}
    for line in text.split("\r\n") if "\r\n" in text else text.split("\n"):
        key, sep, value = line.partition(": ")
        if not sep:
            key, sep, value = line.partition(":")
            if not sep or not key or " " in key:
                continue
            key = key.strip()
        if key not in headers:
            headers[key] = value
    if "Event" in headers or "Response" in headers:
        return headers
    return None


class FrameParser:
    """Bytes in, frames out. With ``skip``, events of those types (and VarSets of other
    variables than ``keep_vars``) are counted and dropped before they are decoded; frames
    answering an action (``ActionID``) are never dropped."""

    def __init__(self, max_frame: int = 1 << 20, skip: frozenset = frozenset(),
                 keep_vars: Optional[tuple] = None):
        self.buf = b""
        self.max_frame = max_frame
        self.malformed = 0
        self.banner: Optional[str] = None
        self.skip = frozenset(n.encode() if isinstance(n, str) else n for n in skip)
        self.keep_vars = keep_vars
        self.skipped = 0
        self.privileges: dict = {}      # Privilege header of skipped events -> count

    def feed(self, data: bytes) -> list[dict]:
        buf = self.buf + data if self.buf else data
        if self.banner is None and buf:
            if buf.startswith(b"Asterisk Call Manager/"):
                line, sep, rest = buf.partition(b"\r\n")
                if not sep:
                    self.buf = buf
                    return []
                self.banner = line.decode("utf-8", "replace")
                buf = rest
            else:
                self.banner = ""
        parts = buf.split(SEP)
        self.buf = parts.pop()
        if len(self.buf) > self.max_frame:
            self.malformed += 1
            self.buf = b""
        out = []
        skip, keep_vars = self.skip, self.keep_vars
        for raw in parts:
            if not raw.strip():
                continue
            if skip and raw.startswith(b"Event: ") and b"\r\nActionID: " not in raw:
                end = raw.find(b"\r\n")
                name = raw[7:end] if end > 0 else raw[7:]
                if name in skip or (name == b"VarSet" and keep_vars is not None
                                    and not any(v in raw for v in keep_vars)):
                    self.skipped += 1
                    if end > 0 and raw.startswith(b"Privilege: ", end + 2):
                        stop = raw.find(b"\r\n", end + 2)
                        priv = raw[end + 13:stop if stop > 0 else None]
                        self.privileges[priv] = self.privileges.get(priv, 0) + 1
                    continue
            frame = parse_frame(raw.decode("utf-8", "replace"))
            if frame is None:
                self.malformed += 1
            else:
                out.append(frame)
        return out
