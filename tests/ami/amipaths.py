"""Paths and helpers of the AMI tests, importable by name (``from conftest import`` is ambiguous
when pytest collects several test folders in one run)."""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parents[0] / "fixtures" / "asterisk-22"
OWN = HERE / "fixtures"


def event_count(frames) -> int:
    return sum(1 for f in frames if f.startswith(b"Event: ") and b"ActionID: " not in f)
