"""Outbound calls: telling a call an operator placed from an inbound one. Pure (no I/O).

A call is *outbound* when its first channel (the one whose Uniqueid is the Linkedid):

- carries ``CT_CALLBACK_FOR`` or ran in the ``calltracking-callback`` context: our own
  click-to-call (:mod:`calltracking.calls.originate`), ``originated_by_us``;
- is an operator's device: its interface (the channel name without the ``-0000001a``
  suffix, e.g. ``PJSIP/101``) is an active operator's interface;
- was created in one of the contexts of ``[asterisk] outbound_contexts``;

and is not the PBX calling back a website callback request (``CT_CALLBACK_REQUEST``, the
``calltracking-callback-request`` context): that call is recorded like an inbound one.

The number called is read from what the operator's channel dialled (``DialString``'s user
part, the callee channel's caller ID, which ``Dial`` sets to the dialled extension, the
operator channel's extension at the time of the ``Dial``) and from its first extension;
the first that reads as a phone number wins. Internal calls (operator to operator) have no
such number and are not outbound calls.
"""
from __future__ import annotations

from typing import Iterable, Optional

from calltracking.interpret.names import base_interface, interface_of, is_outside_number, local_twin
from calltracking.interpret.state import CallState

CALLBACK_CONTEXT = "calltracking-callback"
CALLBACK_VAR = "CT_CALLBACK_FOR"
#: a website callback request's call (:mod:`calltracking.callbacks.link`): never outbound
CALLBACK_REQUEST_VAR = "CT_CALLBACK_REQUEST"
CALLBACK_REQUEST_CONTEXT = "calltracking-callback-request"


def first_interface(call: CallState) -> str:
    return interface_of(call.first_channel) if call.first_channel else ""


def operator_side(call: CallState) -> list[str]:
    """Interfaces of the operator's side, best first: the phone that answered when the first
    channel is a Local ``;1`` whose ``;2`` half rang it (an Originate of the operator's route,
    ``Local/101@operators`` ringing ``PJSIP/201``), then the first channel's own interface."""
    out = []
    twin = local_twin(call.first_channel) if call.first_channel else None
    two = next((uid for uid, name in call.names.items() if name == twin), None) if twin else None
    if two and two not in call.caller_side:      # not the inbound half of a trunk's Local pair
        phone, depth = call.deepest_answer(two, skip=frozenset({call.linkedid}))
        if depth:
            out.append(interface_of(call.names[phone]))
    first = first_interface(call)
    if first and first not in out:
        out.append(first)
    return out


def originated_by_us(call: CallState) -> bool:
    return bool(call.ct.get(CALLBACK_VAR)) or CALLBACK_CONTEXT in call.contexts


def detect(call: CallState, operator_interfaces: Iterable[str] = (),
           outbound_contexts: Iterable[str] = ()) -> Optional[str]:
    """Why ``call`` is outbound ("callback", "operator" or "context"), or None when it is not."""
    if not call.first_channel:
        return None
    if call.ct.get(CALLBACK_REQUEST_VAR) or CALLBACK_REQUEST_CONTEXT in call.contexts:
        return None       # the PBX calling a website visitor back: an inbound-like call record
    if originated_by_us(call):
        return "callback"
    if any(base_interface(i) in operator_interfaces for i in operator_side(call)):
        return "operator"
    if call.first_context and call.first_context in outbound_contexts:
        return "context"
    return None


def callback_for(call: CallState) -> Optional[int]:
    """The missed call's id our click-to-call passed in ``CT_CALLBACK_FOR``, if it reads as one."""
    raw = (call.ct.get(CALLBACK_VAR) or "").strip()
    return int(raw) if raw.isdigit() and len(raw) < 18 else None


def dialed_number(dial_string: str) -> str:
    """The number in a ``Dial()`` string: ``89161234567@trunk`` -> ``89161234567``,
    ``trunk/sip:+79161234567@sip.example.net`` -> ``+79161234567``, ``102@operators/n`` -> ``102``."""
    for part in dial_string.strip().split("&", 1)[0].split("/"):
        for scheme in ("sip:", "sips:", "tel:"):
            if part.startswith(scheme):
                part = part[len(scheme):]
        user = part.split("@", 1)[0].split(";", 1)[0].strip()
        if user and user.lstrip("+").isdigit():
            return user
    return ""


def _digits(raw: str) -> str:
    return "".join(c for c in raw if c.isdigit())


def callee_candidates(call: CallState) -> list[str]:
    """Raw numbers the operator's channel called, best first (answered dial before the others)."""
    answered = call.answer_leg
    order = sorted(call.dials.items(), key=lambda kv: kv[0] != answered)
    out: list[str] = []
    for _, (dial_string, dest_cid, exten) in order:
        for raw in (dialed_number(dial_string), dest_cid, exten):
            if raw and raw not in out:
                out.append(raw)
    if call.first_exten and call.first_exten not in out:
        out.append(call.first_exten)
    return [r for r in out if is_outside_number(r)]


def pick_number(candidates: list[str], normalize) -> str:
    """The first candidate ``normalize`` (raw -> E.164 or None) accepts, else the first one's digits."""
    for raw in candidates:
        e164 = normalize(raw)
        if e164:
            return e164
    if candidates:
        raw = candidates[0]
        return ("+" if raw.startswith("+") else "") + _digits(raw)[:31]
    return ""
