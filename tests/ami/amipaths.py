"""Paths and helpers of the AMI tests, importable by name (``from conftest import`` is ambiguous
when pytest collects several test folders in one run)."""
from __future__ import annotations

import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parents[0] / "fixtures" / "asterisk-22"
OWN = HERE / "fixtures"


def event_count(frames) -> int:
    return sum(1 for f in frames if f.startswith(b"Event: ") and b"ActionID: " not in f)


def registered_names() -> dict:
    """Extension -> member name of the recordings' queues.conf (``Local/102@operators/n`` -> Boris)."""
    from amiserver import queue_members_from_conf

    from calltracking.interpret.state import name_of_interface

    return {name_of_interface(iface): name for members in queue_members_from_conf(FIXTURES / "queues.conf").values()
            for iface, name in members}


def as_registered(exp: dict) -> dict:
    """expected_calls.json names a plain ``Dial()`` leg by its interface (``102``); the listener
    learns the queue members at login (QueueStatus) and names the leg by the registered operator
    of that interface (``Local/102@operators/n`` is Boris)."""
    names = registered_names()
    if exp.get("operator") in names:
        return dict(exp, operator=names[exp["operator"]])
    return exp


def poll(fn, timeout=20.0):
    """``fn()`` once it is truthy, polled every 50 ms; AssertionError after ``timeout`` s."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)
