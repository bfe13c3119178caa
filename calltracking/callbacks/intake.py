"""A phone number typed into the website's callback form, read and checked before any call.

:func:`check` applies these rules in order; the first one that fails is the reason
(:data:`REASONS`), and an accepted number comes back in E.164:

1. ``empty``: nothing but spaces.
2. ``too_long``: more than :data:`MAX_CHARS` characters (E.164 numbers have at most 15 digits;
   the rest leaves room for spaces, brackets and dashes).
3. ``characters``: anything but digits, spaces, brackets, dashes, dots and one leading ``+``.
   Letters are refused: ``phonenumbers`` would read ``1-800-FLOWERS`` as digits, and a visitor
   who types letters has not typed their number.
4. ``invalid``: not a possible and valid number for ``phonenumbers``. National forms are read
   with the default region (``[general] default_region``): with RU, ``8 (916) 123-45-67`` and
   ``79161234567`` are ``+79161234567`` (:func:`calltracking.phone.normalize`, the one E.164
   rule of the project).
5. ``region``: the number's region (its country; ``+7 7xx`` is Kazakhstan, ``+7 9xx`` Russia)
   is not one of the allowed regions. No allowed regions means the default region only.
6. The number's type: the PBX calls only numbers a person answers and that cost the usual
   price — fixed line, mobile, either, and VoIP (:data:`CALLABLE`). Refused:
   ``premium_rate`` and ``shared_cost`` (the caller pays more: revenue-share fraud makes a PBX
   call them), ``toll_free`` (``8-800`` in Russia: an inbound service line, it reaches a
   company's switchboard, never a visitor, and that company pays for the call), and
   ``not_personal`` (universal access numbers, forwarding "personal numbers", pagers, voicemail
   access, and numbers whose type is unknown).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

import phonenumbers
from phonenumbers import PhoneNumberType as T

from calltracking import phone

#: the longest text read as a number
MAX_CHARS = 32
_ALLOWED_CHARS = re.compile(r"\+?[0-9 \u00a0().\-\u2010-\u2015]*")

#: number types the PBX may call
CALLABLE = frozenset({T.FIXED_LINE, T.MOBILE, T.FIXED_LINE_OR_MOBILE, T.VOIP})
_REFUSED_TYPES = {T.PREMIUM_RATE: "premium_rate", T.SHARED_COST: "shared_cost", T.TOLL_FREE: "toll_free"}

#: reason code -> what it means (English; the widget has its own words in its languages)
REASONS = {
    "empty": "enter a phone number",
    "too_long": f"a phone number has at most {MAX_CHARS} characters",
    "characters": "a phone number has only digits, spaces, brackets, dashes and a leading +",
    "invalid": "not a valid phone number",
    "region": "numbers of this country are not called back",
    "premium_rate": "premium-rate numbers are not called back",
    "shared_cost": "shared-cost numbers are not called back",
    "toll_free": "toll-free service numbers are not called back",
    "not_personal": "only fixed-line and mobile numbers are called back",
}


@dataclass(frozen=True)
class Intake:
    """The outcome: ``phone`` (E.164) when accepted, else ``reason`` (a :data:`REASONS` key)."""

    phone: str = ""
    reason: str = ""

    @property
    def ok(self) -> bool:
        return not self.reason

    @property
    def message(self) -> str:
        return REASONS.get(self.reason, "")


def parse_regions(text: str | Iterable[str] | None) -> frozenset:
    """``"RU, kz"`` (or a list) -> ``{"RU", "KZ"}``; anything that is not two letters is dropped."""
    items = re.split(r"[\s,;]+", text) if isinstance(text, str) else list(text or ())
    return frozenset(r.strip().upper() for r in items if re.fullmatch(r"[A-Za-z]{2}", r.strip() or ""))


def check(raw, *, default_region: str = "RU", allowed_regions: str | Iterable[str] | None = None) -> Intake:
    """Read ``raw`` as a number the PBX may call back (the rules of the module doc)."""
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        return Intake(reason="empty")
    if len(text) > MAX_CHARS:
        return Intake(reason="too_long")
    if not _ALLOWED_CHARS.fullmatch(text):
        return Intake(reason="characters")
    region = (default_region or "RU").upper()
    try:
        e164 = phone.normalize(text, region)
        num = phonenumbers.parse(e164, None)
    except (phone.InvalidNumber, phonenumbers.NumberParseException):
        return Intake(reason="invalid")
    if not (phonenumbers.is_possible_number(num) and phonenumbers.is_valid_number(num)):
        return Intake(reason="invalid")
    allowed = parse_regions(allowed_regions) or frozenset({region})
    if phonenumbers.region_code_for_number(num) not in allowed:
        return Intake(reason="region")
    kind = phonenumbers.number_type(num)
    if kind not in CALLABLE:
        return Intake(reason=_REFUSED_TYPES.get(kind, "not_personal"))
    return Intake(phone=e164)
