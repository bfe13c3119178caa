"""The helper process of :mod:`ami_listener.parse_process`: AMI bytes in, parsed frames out.

Run as a script (``python parse_worker.py``, the project on ``PYTHONPATH``) so that it imports
the frame parser alone, not the listener's package. On stdin, messages of one type byte and a
4-byte big-endian length: ``C`` starts a new stream (a new connection; payload: ``marshal`` of
``(skip, keep_vars)``), ``D`` is one socket read of the current stream. On stdout, for every
``D`` and in the same order, a 4-byte length and ``marshal`` of ``(frames, skipped,
privileges, malformed, banner, leftover)``: the frames parsed from that read, the stream's
counters so far (events skipped unread, the ``Privilege`` headers of the skipped ones since the
last answer, malformed frames), Asterisk's banner and the length of the partial frame the read
left. Ends at the end of stdin (the listener is gone).
"""
from __future__ import annotations

import marshal
import os
import struct
import sys

HEAD = struct.Struct(">cI")
LENGTH = struct.Struct(">I")


def answer(parser, frames: list) -> bytes:
    """The answer to one read (the layout the module docstring gives)."""
    privileges = dict(parser.privileges)
    parser.privileges.clear()
    blob = marshal.dumps((frames, parser.skipped, privileges, parser.malformed,
                          parser.banner, len(parser.buf)))
    return LENGTH.pack(len(blob)) + blob


def serve(rfd: int, wfd: int) -> None:
    from calltracking.interpret.frames import FrameParser

    parser = FrameParser()
    buf = bytearray()
    while True:
        data = os.read(rfd, 1 << 20)
        if not data:
            return
        buf += data
        out = []
        pos = 0
        while len(buf) - pos >= HEAD.size:
            kind, n = HEAD.unpack_from(buf, pos)
            if len(buf) - pos - HEAD.size < n:
                break
            payload = bytes(buf[pos + HEAD.size:pos + HEAD.size + n])
            pos += HEAD.size + n
            if kind == b"D":
                out.append(answer(parser, parser.feed(payload)))
            elif kind == b"C":
                skip, keep_vars = marshal.loads(payload)
                parser = FrameParser(skip=frozenset(skip), keep_vars=keep_vars)
        del buf[:pos]
        if out:
            view = memoryview(b"".join(out))
            while view:
                view = view[os.write(wfd, view):]


if __name__ == "__main__":
    try:
        serve(sys.stdin.fileno(), sys.stdout.fileno())
    except (BrokenPipeError, KeyboardInterrupt):
        pass
