"""Settling asyncio futures from a writer thread: each event loop woken once per batch.

The batching writers (:mod:`calltracking.hooks.writer`, :mod:`calltracking.dni.new_visitors`) finish
many requests at a time; one ``call_soon_threadsafe`` per loop and batch (instead of one per
request) keeps the loops' wake-ups, and their share of the interpreter lock, low.
"""
from __future__ import annotations

from typing import Iterable


def settle_batch(items: Iterable[tuple]) -> None:
    """``items``: ``(loop, future, result, exception or None)``; a closed loop is skipped
    (nobody waits there any more)."""
    by_loop: dict = {}
    for loop, fut, result, exc in items:
        by_loop.setdefault(loop, []).append((fut, result, exc))
    for loop, group in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, group)
        except RuntimeError:
            pass


def _settle(group) -> None:
    """On the event loop."""
    for fut, result, exc in group:
        if fut.done():
            continue
        if exc is None:
            fut.set_result(result)
        else:
            fut.set_exception(exc)
