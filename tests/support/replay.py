"""A recorded AMI stream straight through the interpreter: no socket, no database.

:func:`replay` reads a ``.ami`` recording (its path, or its bytes) with the listener's own frame
parser (:class:`calltracking.interpret.FrameParser`), feeds every event to an
:class:`~calltracking.interpret.Interpreter` dated by its ``Timestamp``, as the listener does,
and returns the call records (:func:`calltracking.interpret.record.call_record`): the figures
the listener would write, before the database's part (attribution by DID, registered
operators' names, telling outbound calls apart). ``queue_members`` ({queue: [(interface,
name)]}, e.g. :func:`support.fixtures.queue_members`) are fed first as ``QueueMember`` events:
what the listener learns at login from ``QueueStatus``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from calltracking.interpret import FrameParser, Interpreter

Source = Union[bytes, str, Path]


def frames(source: Source) -> list[dict]:
    """The events of a recording (responses to actions left out), as the listener parses them."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    return [f for f in FrameParser().feed(data) if "Event" in f]


def interpret(source: Source, queue_members: Optional[dict] = None) -> Interpreter:
    """The interpreter after the whole recording (its calls, stats and cross-check mismatches)."""
    it = Interpreter()
    for queue, members in (queue_members or {}).items():
        for interface, name in members:
            it.feed({"Event": "QueueMember", "Queue": queue, "Location": interface, "Name": name,
                     "Status": "1", "Paused": "0"}, 0.0)
    for ev in frames(source):
        it.feed(ev, float(ev.get("Timestamp") or 0))
    return it


def replay(source: Source, queue_members: Optional[dict] = None) -> list[dict]:
    """The record of every call the recording shows, in the order the calls began."""
    return [call.record() for call in interpret(source, queue_members).calls.values()]
