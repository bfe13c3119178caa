"""Channel and interface names as Asterisk writes them. Pure.

A channel name is ``<tech>/<resource>-<hex sequence>`` (``PJSIP/101-0000002a``) or, for a Local
channel, ``Local/<exten>@<context>-<hex>;1`` and its twin ``...;2``. An *interface* is what a
queue member or a ``Dial()`` names (``PJSIP/101``, ``Local/101@operators/n``); operators are
matched by their interface without channel options (:func:`base_interface`). An extension
is a *number* when it is digits (a leading ``+`` allowed), an *outside number* (a DID, a
customer's number) when it has at least :data:`OUTSIDE_DIGITS` of them.

Caller-ID names arrive C-escaped (:func:`caller_id_text`).
"""
from __future__ import annotations

import re
from typing import Optional

#: Channels that sit in a bridge without being a party (ConfBridge announcers, recorders).
NOT_A_PARTY = ("Announcer/", "Recorder/", "CBAnn/", "CBRec/", "Snoop/")
#: Fewer digits than this is an internal extension (``101``, ``s``), not an outside number.
OUTSIDE_DIGITS = 7


#: Asterisk 22 writes a channel's caller-ID name in AMI events with ``ast_escape_c``: a quote,
#: apostrophe, backslash or question mark gets a backslash, control characters become ``\n``,
#: ``\t``... (recorded: ``O'Brien, "Boss" \ <x>`` arrives as ``O\'Brien, \"Boss\" \\ <x>``).
_C_ESCAPE = re.compile(r"\\([\\'\"?abfnrtv])")


def caller_id_text(value: str) -> str:
    """A caller-ID name as the caller sent it, from its C-escaped AMI form (one pass, left to
    right: ``\\\\n`` is a backslash and an ``n``); an escaped control character becomes a space
    (a name is one line)."""
    if "\\" not in value:
        return value
    return _C_ESCAPE.sub(lambda m: m.group(1) if m.group(1) in "\\'\"?" else " ", value)


def is_party(channel: str) -> bool:
    """A channel in a bridge is a party (someone talking) unless it is an announcer, a recorder
    or a spy (:data:`NOT_A_PARTY`); a channel whose name is unknown ("") counts as a party."""
    return not channel.startswith(NOT_A_PARTY)


def local_twin(name: str) -> Optional[str]:
    """``Local/x@ctx-0001;1`` -> ``Local/x@ctx-0001;2`` and back; None for other channels."""
    if name.startswith("Local/") and name[-2:] in (";1", ";2"):
        return name[:-1] + ("2" if name[-1] == "1" else "1")
    return None


def interface_of(channel: str) -> str:
    """``PJSIP/101-0000002a`` -> ``PJSIP/101``; ``Local/101@operators-00000001;1`` -> ``Local/101@operators``."""
    base = channel
    if base.endswith((";1", ";2")):
        base = base[:-2]
    head, sep, tail = base.rpartition("-")
    if sep and tail and all(c in "0123456789abcdef" for c in tail.lower()) and "/" in head:
        return head
    return base


def base_interface(interface: str) -> str:
    """An interface as operators are matched: channel options dropped (``Local/102@operators/n``
    or ``/nj`` -> ``Local/102@operators``, ``PJSIP/101/n`` -> ``PJSIP/101``), blanks trimmed."""
    iface = interface.strip()
    tech, sep, rest = iface.partition("/")
    head, sep2, opts = rest.partition("/")
    if sep and sep2 and opts.isalpha():
        return f"{tech}/{head}"
    return iface


def name_of_interface(interface: str) -> str:
    """``Local/102@operators/n`` or ``PJSIP/102`` -> ``102``."""
    res = interface.split("/", 1)[1] if "/" in interface else interface
    return res.split("@", 1)[0].split("/", 1)[0]


def is_number(exten: str) -> bool:
    """``74950001001``, ``+7495...``, ``101``: digits, a leading ``+`` allowed."""
    return exten.lstrip("+").isdigit()


def is_outside_number(exten: str) -> bool:
    """A number of at least :data:`OUTSIDE_DIGITS` digits: a DID or a customer's number, not an
    operator's extension."""
    return is_number(exten) and len(exten.lstrip("+")) >= OUTSIDE_DIGITS
