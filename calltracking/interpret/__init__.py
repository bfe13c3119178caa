"""AMI events -> call records, as pure code (no I/O).

- :mod:`.record`: THE call record: every figure (wait, queue wait, talk, hold, ring time,
  status, missed reason, the operator who answered) defined once, with its rule;
- :mod:`.state`: calls, legs, channels (the mutable state the record is derived from);
- :mod:`.legs`: legs and the answer (which leg answered, a leg's kind and outcome);
- :mod:`.names`: channel and interface names, numbers;
- :mod:`.handlers`: the handler of every event type (``EVENTTYPE_MAP``), from :mod:`.channels`,
  :mod:`.queues`, :mod:`.dials`, :mod:`.bridges` and :mod:`.crosscheck`;
- :mod:`.interpreter`: the :class:`Interpreter` that dispatches, dedupes and measures talk;
- :mod:`.reconcile`, :mod:`.queuelog`, :mod:`.gaps`: the calls brought in line after a gap
  (the snapshot, what queue_log says, the estimates left and how later events narrow them);
- :mod:`.outbound`: telling a call an operator placed from an inbound one;
- :mod:`.frames`: parsing the AMI byte stream into events (shared by the listener,
  tests, benchmark and ``ami rebuild``).
"""
from calltracking.interpret.frames import FrameParser, parse_frame
from calltracking.interpret.handlers import EVENTTYPE_MAP, IGNORED
from calltracking.interpret.interpreter import Interpreter
from calltracking.interpret.state import CallState, Leg

__all__ = ["EVENTTYPE_MAP", "IGNORED", "Interpreter", "CallState", "Leg", "FrameParser", "parse_frame"]
