"""Waiting for a condition another thread or process brings about."""
from __future__ import annotations

import time


def poll(pred, timeout: float = 20.0, what: str = "the condition", interval: float = 0.05):
    """``pred()``'s first truthy value, asked every ``interval`` s; AssertionError naming ``what``
    after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
