"""How long a text message is, in parts, and how a long one is trimmed.

* A text whose every character is in the GSM 03.38 alphabet (its basic table and its
  extension table, read by the ``gsm0338`` codec) is sent as **GSM-7**: 160 septets in one
  part, 153 per part of a longer, concatenated message. The extension characters
  ``^ { } \\ [ ~ ] | €`` and the form feed take two septets (an escape and the character).
* Any other character (Cyrillic, ``…``, emoji, ``ç``) makes the whole message **UCS-2**:
  70 UTF-16 code units in one part, 67 per part; a character outside the BMP (emoji) takes
  two units.
* A part never ends between an escape and its character, nor inside a surrogate pair.
* :func:`fit`: a text longer than ``max_parts`` parts is cut to the longest start that fits
  with the ellipsis, trailing blanks removed, and ends with ``…`` (UCS-2) or ``...`` (GSM-7:
  ``…`` is not in its alphabet and would turn the whole message into UCS-2, 70 characters
  a part instead of 160).
"""
from __future__ import annotations

from dataclasses import dataclass

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

GSM7, UCS2 = "GSM-7", "UCS-2"
SINGLE = {GSM7: 160, UCS2: 70}      # units in a message of one part
PER_PART = {GSM7: 153, UCS2: 67}    # units per part of a concatenated message (UDH takes the rest)
ELLIPSIS = {GSM7: "...", UCS2: "…"}


@dataclass(frozen=True)
class Length:
    """A text's encoding, its length in units (septets or UTF-16 code units) and its parts."""

    encoding: str
    units: int
    parts: int


def encoding_of(text: str) -> str:
    """``GSM-7`` when every character is in the GSM 03.38 alphabet, else ``UCS-2``."""
    try:
        text.encode("gsm03.38")
    except UnicodeEncodeError:
        return UCS2
    return GSM7


def _cost(ch: str, enc: str) -> int:
    if enc == GSM7:
        return len(ch.encode("gsm03.38"))
    return len(ch.encode("utf-16-le")) // 2


def split(text: str) -> list[str]:
    """The parts ``text`` is sent in (one part when it fits :data:`SINGLE`)."""
    enc = encoding_of(text)
    costs = [_cost(ch, enc) for ch in text]
    if sum(costs) <= SINGLE[enc]:
        return [text] if text else []
    parts, current, used = [], [], 0
    for ch, cost in zip(text, costs):
        if used + cost > PER_PART[enc]:
            parts.append("".join(current))
            current, used = [], 0
        current.append(ch)
        used += cost
    parts.append("".join(current))
    return parts


def length(text: str) -> Length:
    """:class:`Length` of ``text``."""
    enc = encoding_of(text)
    return Length(enc, sum(_cost(ch, enc) for ch in text), len(split(text)))


def fit(text: str, max_parts: int) -> str:
    """``text`` when it takes at most ``max_parts`` parts; else its longest start that does with
    the ellipsis of its encoding (``…`` or ``...``) after it, trailing blanks removed."""
    if len(split(text)) <= max_parts:
        return text
    enc = encoding_of(text)
    ellipsis = ELLIPSIS[enc]
    capacity = SINGLE[enc] if max_parts == 1 else PER_PART[enc] * max_parts
    budget = capacity - sum(_cost(ch, enc) for ch in ellipsis)
    end, used = 0, 0
    for ch in text:
        cost = _cost(ch, enc)
        if used + cost > budget:
            break
        used += cost
        end += 1
    while end > 0:
        candidate = text[:end].rstrip() + ellipsis
        if len(split(candidate)) <= max_parts:
            return candidate
        end -= 1
    return ellipsis
