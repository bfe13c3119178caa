"""Amounts of money typed by people (a call's value, an ad spend row): one parsing rule.

The text is read in the user's language with Babel (``1,234.56`` in English, ``1 234,56`` in
Russian: any kind of space groups thousands); a lone ``,`` or ``.`` followed by one or two
digits is read as the decimal separator in any language (``1234,5``, ``99.90``). At most two
decimal places, from 0 up to :data:`MAX_AMOUNT`. Every error quotes the text exactly as typed.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from babel.core import UnknownLocaleError
from babel.numbers import NumberFormatError, parse_decimal

MAX_AMOUNT = Decimal("999999999999.99")
CENT = Decimal("0.01")
_SPACES = re.compile(r"[\s\u00a0\u202f\u2009']")
_PLAIN = re.compile(r"^-?\d+(?:[.,]\d{1,2})?$")


class MoneyError(ValueError):
    """The text is not an amount (the message quotes the text as typed)."""


def _read(text: str, locale: str) -> Decimal:
    s = _SPACES.sub("", text)
    if _PLAIN.match(s):
        return Decimal(s.replace(",", "."))
    try:
        return parse_decimal(s, locale=locale or "en", strict=True)
    except (NumberFormatError, UnknownLocaleError, InvalidOperation, ValueError):
        raise MoneyError(f"invalid amount {text!r}: expected a number such as 1234.50") from None


def parse_money(text: str | None, locale: str = "en") -> Decimal | None:
    """An amount as typed in ``locale``; ``None`` for an empty text."""
    if not (text or "").strip():
        return None
    typed = text.strip()
    d = _read(typed, locale)
    if not d.is_finite():
        raise MoneyError(f"invalid amount {typed!r}")
    if d < 0:
        raise MoneyError(f"negative amount {typed!r}")
    if d > MAX_AMOUNT:
        raise MoneyError(f"amount {typed!r} is too large")
    if d != d.quantize(CENT):
        raise MoneyError(f"amount {typed!r} has more than 2 decimal places")
    return d.quantize(CENT)
