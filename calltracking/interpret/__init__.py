"""AMI events -> call records, as pure code (no I/O).

- :mod:`.state`: calls, legs, channels and the record they give (the contract's definitions);
- :mod:`.handlers`: one small function per event type, in ``EVENTTYPE_MAP``;
- :mod:`.interpreter`: the :class:`Interpreter` that dispatches, dedupes and reconciles;
- :mod:`.frames`: parsing the AMI byte stream into events (shared by the listener,
  tests, benchmark and ``ami rebuild``).
"""
from calltracking.interpret.frames import FrameParser, parse_frame
from calltracking.interpret.handlers import EVENTTYPE_MAP, IGNORED
from calltracking.interpret.interpreter import Interpreter
from calltracking.interpret.state import CallState, Leg

__all__ = ["EVENTTYPE_MAP", "IGNORED", "Interpreter", "CallState", "Leg", "FrameParser", "parse_frame"]
