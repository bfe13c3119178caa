"""The AMI wire format: ``Key: Value`` lines, CRLF, a blank line ends a frame.

The parser works on bytes and decodes whole frames, so a multi-byte UTF-8
character split across two TCP reads is kept (panoramisk decodes each read
on its own and drops it). Lines without ``": "`` are skipped; a frame with
neither ``Event`` nor ``Response`` is malformed and counted; a frame that
grows beyond ``max_frame`` bytes without an end is dropped and counted.

Values no event of Asterisk carries are marked at the edge, on the bytes (the frame keeps
them under ``_raw`` for the listener's log): a frame with a NUL byte (Asterisk's strings are
C strings; PostgreSQL's text refuses it) or a value over :data:`MAX_VALUE` characters gets
``_quarantine`` (its reason) and is set aside by the listener; bytes that are not UTF-8 are
decoded as U+FFFD and the frame gets ``_undecodable`` (kept: a caller name sent in cp1251
must not lose the call). :class:`StreamClock` judges ``Timestamp`` values.
"""
from __future__ import annotations

import math
import os
import re
from typing import Optional

SEP = b"\r\n\r\n"
#: Longest header value an event may carry (characters). Asterisk's own are far shorter: channel
#: names and uniqueids stop at 80 and 150 characters, a file name at 4096 (``PATH_MAX``).
MAX_VALUE = 8192
#: Longest ``Linkedid``/``Uniqueid`` an event may carry: the database columns' size.
MAX_ID = 64
#: Why an event is set aside (the ``reason`` of ``calltracking_ami_events_quarantined_total``).
NUL_BYTE, VALUE_TOO_LONG, ID_TOO_LONG = "nul_byte", "value_too_long", "id_too_long"
#: Why an event is kept with a value replaced.
TIMESTAMP, UNDECODABLE = "timestamp", "undecodable"
#: A ``Timestamp`` more than this far (seconds) from the stream's clock is not believed.
WINDOW = 86400.0
#: The earliest ``Timestamp`` believed (2000-01-01): a PBX booted without a clock says 1970.
EARLIEST = 946684800.0
#: Consecutive events that must agree on a new clock before it is believed.
AGREE = 3
#: A logged frame shows at most this many characters.
LOG_CHARS = 2000
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


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
        # one search for all the kept variables (VarSet: 22 % of the events of the recorded calls,
        # 44,091 of 200,000 in bench/ami_ingest.py's stream): their common prefix is a literal the
        # regular expression engine scans for at C speed; no kept variable: a search never found
        self._keep = None
        if keep_vars is not None:
            common = os.path.commonprefix(list(keep_vars)) if keep_vars else b""
            rest = b"|".join(re.escape(v[len(common):]) for v in keep_vars) if keep_vars else b"(?!)"
            self._keep = re.compile(re.escape(common) + b"(?:" + rest + b")")
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
        skip, keep = self.skip, self._keep
        privileges = self.privileges
        skipped = 0
        for raw in parts:
            if skip and raw[:7] == b"Event: ":
                end = raw.find(b"\r\n")
                name = raw[7:end] if end > 0 else raw[7:]
                if (name in skip or (name == b"VarSet" and keep is not None and keep.search(raw) is None)) \
                        and b"\r\nActionID: " not in raw:
                    skipped += 1
                    if end > 0 and raw.startswith(b"Privilege: ", end + 2):
                        stop = raw.find(b"\r\n", end + 2)
                        priv = raw[end + 13:stop if stop > 0 else None]
                        privileges[priv] = privileges.get(priv, 0) + 1
                    continue
            if not raw.strip():
                continue
            try:
                frame = parse_frame(raw.decode())
                flawed = False
            except UnicodeDecodeError:
                frame = parse_frame(raw.decode("utf-8", "replace"))
                flawed = True
            if frame is None:
                self.malformed += 1
                continue
            if len(raw) > MAX_VALUE and max(map(len, frame.values())) > MAX_VALUE:
                frame["_quarantine"], flawed = VALUE_TOO_LONG, True
            elif 0 in raw:                  # memchr: a NUL byte
                frame["_quarantine"], flawed = NUL_BYTE, True
            elif flawed:
                frame["_undecodable"] = True
            if flawed:
                frame["_raw"] = raw
            out.append(frame)
        self.skipped += skipped
        return out


def shown(frame) -> str:
    """A frame as one log-safe line: ``Key: Value`` lines joined by an escaped CRLF, control
    characters and bytes that are not UTF-8 escaped (``\\x00``, ``\\xc8``), cut at
    :data:`LOG_CHARS` characters. ``frame``: the raw bytes or a parsed event."""
    if isinstance(frame, dict):
        raw = frame.get("_raw")
        text = (raw.decode("utf-8", "backslashreplace") if raw is not None
                else "\r\n".join(f"{k}: {v}" for k, v in frame.items() if not k.startswith("_")))
    else:
        text = frame.decode("utf-8", "backslashreplace")
    text = text.rstrip("\r\n")
    more = len(text) - LOG_CHARS
    text = _CONTROL.sub(_escape, text[:LOG_CHARS])
    return text + (f"... ({more} more characters)" if more > 0 else "")


def _escape(m) -> str:
    c = m.group()
    named = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}.get(c)
    return named or (f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}")


class StreamClock:
    """Asterisk's clock as the event stream shows it, to judge each event's ``Timestamp``.

    The rule: a ``Timestamp`` is used when it is a finite number within :data:`WINDOW` (a day)
    of the stream's clock: the receive time plus Asterisk's offset (``Timestamp`` minus receive
    time) learnt from the events before. The first one learns the offset when it lies between
    2000-01-01 and a day ahead of our clock. Any other (not a number, infinite, negative, before
    2000, more than a day off) is replaced by the stream's clock at its receive time (our
    receive time until an offset is learnt), and :meth:`read` says so. A jump of more than a
    day is believed once :data:`AGREE` events in a row agree on it (a PBX clock set right, a
    recording replayed); one event alone never moves the clock. Asterisk's clock, not ours, is
    the reference: a PBX whose clock is off, or a replayed recording, keeps its own times."""

    def __init__(self):
        self.offset: Optional[float] = None
        self.jumps: list[float] = []

    def read(self, raw: str, recv: float) -> tuple[float, bool]:
        """(the time to give the event, whether its own ``Timestamp`` is that time)."""
        try:
            ts = float(raw)
        except ValueError:
            ts = math.nan
        off, ref = ts - recv, self.offset
        if ref is not None and -WINDOW <= off - ref <= WINDOW:     # NaN fails both comparisons
            self.offset = off
            if self.jumps:
                self.jumps = []
            return ts, True
        return self._outlier(ts, off, recv)

    def _outlier(self, ts: float, off: float, recv: float) -> tuple[float, bool]:
        if not EARLIEST <= ts <= recv + WINDOW:
            return recv + (self.offset or 0.0), False
        if self.offset is None:
            self.offset = off
            return ts, True
        self.jumps = [j for j in self.jumps if abs(j - off) <= WINDOW] + [off]
        if len(self.jumps) >= AGREE:
            self.offset, self.jumps = off, []
            return ts, True
        return recv + self.offset, False

    def usable(self, raw, recv: float) -> Optional[float]:
        """``raw`` as a time when :meth:`read` would use it as it is (nothing learnt), else None."""
        try:
            ts = float(raw)
        except (TypeError, ValueError):
            return None
        if not EARLIEST <= ts <= recv + WINDOW:
            return None
        ref = self.offset
        return ts if ref is None or abs(ts - recv - ref) <= WINDOW else None
