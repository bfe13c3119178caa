"""The recipients of an SMS rule: phone numbers, stored and sent in E.164."""
from __future__ import annotations

import re

from calltracking.phone import InvalidNumber, normalize

MAX_RECIPIENTS = 20


class BadRecipients(ValueError):
    """The recipients of an SMS rule are refused; ``number`` is the invalid one, if any."""

    def __init__(self, message: str, number: str = ""):
        super().__init__(message)
        self.number = number


def recipients(target: str, region: str = "RU") -> list[str]:
    """The numbers of an SMS rule's ``target`` in E.164, each once, in the order given.

    Numbers are separated by commas, semicolons or new lines (a space stays inside a number:
    ``+7 999 123-45-67``); national forms are read with ``region`` (``[general] default_region``):
    ``8 (999) 123-45-67`` → ``+79991234567``. :class:`BadRecipients` naming the first invalid
    number, for no number, or for more than :data:`MAX_RECIPIENTS`.
    """
    out = []
    for raw in re.split(r"[,;\n]+", target or ""):
        if not raw.strip():
            continue
        try:
            number = normalize(raw, region)
        except InvalidNumber as e:
            raise BadRecipients(str(e), raw.strip()[:64]) from None
        if number not in out:
            out.append(number)
    if not out:
        raise BadRecipients("no phone number given")
    if len(out) > MAX_RECIPIENTS:
        raise BadRecipients(f"at most {MAX_RECIPIENTS} phone numbers per rule, got {len(out)}")
    return out


def masked(number: str) -> str:
    """A number as the log shows it: ``+7999*****67``."""
    return number[:4] + "*" * max(len(number) - 6, 0) + number[-2:] if len(number) > 6 else "***"
