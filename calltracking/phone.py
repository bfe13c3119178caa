"""Phone numbers in E.164 (``+74951234567``), read with the ``phonenumbers`` library."""
from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

_JUNK = re.compile(r"[\s().\-/]")


class InvalidNumber(ValueError):
    """The text is not a valid phone number; the message quotes it."""


def normalize(raw: str, region: str = "RU") -> str:
    """Return the E.164 form of ``raw`` or raise :class:`InvalidNumber`.

    National forms use ``region``: with RU, ``8 (495) 123-45-67`` and
    ``74951234567`` both become ``+74951234567``. A leading ``+`` or ``00``
    marks an international number. Asterisk often passes Russian numbers as
    11 digits starting with 7 and no plus; those are read as international.
    """
    if raw is None:
        raise InvalidNumber("invalid phone number '': empty")
    text = str(raw).strip()
    shown = text if len(text) <= 64 else text[:61] + "..."
    if not text:
        raise InvalidNumber("invalid phone number '': empty")
    if len(text) > 64:
        raise InvalidNumber(f"invalid phone number {shown!r}: too long")
    compact = _JUNK.sub("", text)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    candidates = [compact]
    if not compact.startswith("+") and compact.isdigit():
        # "74951234567" from a trunk: try it as international first when it is
        # already a full number for the region's country code.
        cc = str(phonenumbers.country_code_for_region(region.upper()))
        if compact.startswith(cc) and len(compact) > 10:
            candidates.insert(0, "+" + compact)
    for cand in candidates:
        try:
            num = phonenumbers.parse(cand, region.upper())
        except phonenumbers.NumberParseException as e:
            last = str(e)
            continue
        if phonenumbers.is_valid_number(num):
            return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
        last = "not a valid number"
    raise InvalidNumber(f"invalid phone number {shown!r}: {last}")


def try_normalize(raw: str | None, region: str = "RU") -> str | None:
    """Like :func:`normalize` but returns None for anything invalid."""
    try:
        return normalize(raw or "", region)
    except InvalidNumber:
        return None


#: What Asterisk puts in CALLERID(num) when there is no number to show (withheld, unknown).
NO_NUMBER = frozenset({"", "unknown", "anonymous", "restricted", "<unknown>"})


@lru_cache(maxsize=65536)
def caller_number(raw: str | None, region: str = "RU") -> str:
    """The caller number as stored on a call: one rule for the AGI hooks and the AMI listener.

    E.164 when the text reads as a valid number (``8 (495) 123-45-67`` -> ``+74951234567``);
    otherwise its digits, at most 32 (an internal extension ``101`` stays ``101``); ``''`` when
    the caller withheld or has no number (:data:`NO_NUMBER`, any case: ``anonymous``,
    ``Restricted``, ...) or the text has no digits. Remembered: regular callers repeat all day.
    """
    text = (raw or "").strip()
    if text.lower() in NO_NUMBER:
        return ""
    e164 = try_normalize(text[:64], region)
    if e164:
        return e164
    return re.sub(r"\D", "", text)[:32]


def digits(e164: str) -> str:
    """``+74951234567`` -> ``74951234567`` (the form trunks usually send)."""
    return e164.lstrip("+")
