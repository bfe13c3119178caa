"""Reading the tail of Asterisk's queue_log (``[ami] queue_log``) for the reconciliation.

Asterisk appends one line per queue event (``epoch|callid|queue|agent|event|data...``), in
time order. After a gap the listener reads the lines written since the gap began, from the
end of the file backwards, at most :data:`MAX_BYTES`; a file that cannot be read (the listener
runs on another host, no permission, not configured) gives no lines and is reported once.
"""
from __future__ import annotations

import logging
import os
from typing import Optional

log = logging.getLogger("calltracking.ami")

BLOCK = 1 << 16
#: The most read back per reconnect (about 200,000 lines): older lines are left alone.
MAX_BYTES = 16 << 20


class QueueLog:
    def __init__(self, path: str):
        self.path = path
        self._reported: Optional[str] = None

    def __call__(self, since: float) -> list[str]:
        """The complete lines whose epoch is at least ``since``, oldest first."""
        if not self.path:
            return []
        try:
            lines = self._tail(since)
        except OSError as e:
            if self._reported != e.strerror:
                self._reported = e.strerror
                log.warning("cannot read queue_log %s (%s): times of what happened while the listener "
                            "was away come from AMI alone", self.path, e.strerror)
            return []
        self._reported = None
        return lines

    def _tail(self, since: float) -> list[str]:
        out: list[bytes] = []
        with open(self.path, "rb") as f:
            end = pos = f.seek(0, os.SEEK_END)
            buf, first = b"", True
            while pos > 0 and end - pos < MAX_BYTES:
                step = min(BLOCK, pos)
                pos -= step
                f.seek(pos)
                parts = (f.read(step) + buf).split(b"\n")
                if first:
                    parts.pop()         # after the last newline: empty, or a line still being written
                    first = False
                # the first piece may be cut (unless at the start of the file): keep it for the next round
                buf = parts.pop(0) if pos > 0 else b""
                for raw in reversed(parts):
                    head = raw.split(b"|", 1)[0]
                    if head.isdigit() and int(head) < since:
                        out.reverse()
                        return [r.decode("utf-8", "replace") for r in out if r]
                    out.append(raw)
        out.reverse()
        return [r.decode("utf-8", "replace") for r in out if r]
