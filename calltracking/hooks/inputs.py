"""What the hooks accept from the dialplan, cleaned before any use.

The caller number is :func:`calltracking.phone.caller_number`, the rule the AMI listener
applies too; a promo code and a tag name are cleaned by their hooks.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Optional

from calltracking import phone
from calltracking.phone import caller_number

__all__ = ["caller_name", "caller_number", "clean_linkedid", "dialled", "forwarded_from", "normalize"]

_NOT_LINKEDID = re.compile(r"[^0-9A-Za-z._-]")


def clean_linkedid(value: str) -> str:
    """The call's ``CHANNEL(linkedid)``: letters, digits, ``.``, ``_``, ``-``; at most 64."""
    return _NOT_LINKEDID.sub("", value or "")[:64]


@lru_cache(maxsize=65536)
def normalize(raw: str, region: str) -> Optional[str]:
    """The DID in E.164 (:func:`phone.try_normalize`), remembered (DIDs repeat all day)."""
    return phone.try_normalize(raw, region)


def dialled(did: str, region: str) -> tuple[Optional[str], str]:
    """``(E.164 or None, the DID as stored on the call)``: E.164 when it reads as a number,
    else the text as dialled (at most 32 characters)."""
    e164 = normalize((did or "")[:64], region)
    return e164, e164 or (did or "").strip()[:32]


def forwarded_from(raw: str, region: str) -> str:
    """The number that forwarded the call (``agi_rdnis``, Asterisk's ``REDIRECTING(from-num)``),
    by the caller-number rule (:func:`phone.caller_number`): E.164 when it reads as a number,
    else its digits (at most 32), ``''`` for ``unknown`` or no digits (a call dialled directly)."""
    return caller_number((raw or "")[:200], region)


def caller_name(raw: str) -> str:
    """``CALLERID(name)``: ``''`` when it says there is none (the words of
    :data:`phone.NO_NUMBER`), else at most 200 characters."""
    raw = (raw or "").strip()
    return "" if raw.lower() in phone.NO_NUMBER else raw[:200]
