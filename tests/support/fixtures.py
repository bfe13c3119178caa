"""Where the recorded fixtures are, and what the recordings contain.

- :data:`FIXTURES`: the vendored recordings of a real Asterisk 22 (``tests/fixtures/asterisk-22``,
  its README says how they were made): ``*.ami`` streams, ``expected_calls.json`` (Asterisk's own
  figures for each call), ``queue_log``, ``cdr_master.csv``, the FastAGI session, and the
  configuration they ran with (``queues.conf`` …).
- :data:`OWN`: our own AMI streams (``tests/ami/fixtures``): ``*.ami`` built by
  ``tests/ami/make_fixtures.py`` with ``expected.json``; :data:`RECORDED` (``recorded/``, from a live
  Asterisk by ``tests/ami/record_live.py``) and :data:`RESTARTS` (``restarts/``, by
  ``tests/ami/live_restarts.py``), each with its README.
- :data:`LIVE_PBX`: the Asterisk configuration of the live suite (``tests/live/pbx``).
"""
from __future__ import annotations

import json
from pathlib import Path

from calltracking.interpret.names import name_of_interface
from support.ami_server import queue_members_from_conf

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
FIXTURES = TESTS / "fixtures" / "asterisk-22"
OWN = TESTS / "ami" / "fixtures"
RECORDED = OWN / "recorded"
RESTARTS = OWN / "restarts"
LIVE_PBX = TESTS / "live" / "pbx"

#: The DIDs the vendored recordings call (a test tracks them all to record every call).
DIDS = ["74950001001", "74950001002", "74950001003", "74950001004", "74950001005", "74950001006",
        "74950001008", "74950001009", "74950001010", "74951110007", "74950001011", "74950001012"]


def queue_members() -> dict:
    """The queue members of the recordings' ``queues.conf``: {queue: [(interface, name)]}."""
    return queue_members_from_conf(FIXTURES / "queues.conf")


def registered_names() -> dict:
    """Extension -> member name of the recordings' queues.conf (``Local/102@operators/n`` -> Boris)."""
    return {name_of_interface(iface): name for members in queue_members().values() for iface, name in members}


def as_registered(exp: dict) -> dict:
    """expected_calls.json names a plain ``Dial()`` leg by its interface (``102``); the listener
    learns the queue members at login (QueueStatus) and names the leg by the registered operator
    of that interface (``Local/102@operators/n`` is Boris)."""
    names = registered_names()
    if exp.get("operator") in names:
        return dict(exp, operator=names[exp["operator"]])
    return exp


def expected_calls() -> list[dict]:
    """The records of ``expected_calls.json``, operators named as the listener names them."""
    return [as_registered(e) for e in json.loads((FIXTURES / "expected_calls.json").read_text())]
