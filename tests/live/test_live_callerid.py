"""Live: hostile caller-ID names through the ``route`` hook on a real Asterisk 22.

The trunk context sets each caller's ``CALLERID(name)`` from AstDB (quotes, commas, backslashes,
brackets, parentheses, Cyrillic, a name that already carries a label). The hook answers with the
source's label in front (``[Ads] <name>``, :func:`calltracking.hooks.answer.prefixed_name`), and
Asterisk must end up with exactly that name on the caller's channel (its ``NewCallerid`` event,
where Asterisk C-escapes it: recorded in ``tests/ami/fixtures/callerid_escaped_live.ami``),
whatever the characters: one ``EXEC MSet`` for the plain ``CT_*`` values with a plain labelled name
(``[Ads] Plain Name``, ``[Ads] already labelled``: :func:`agi.protocol.mset_safe`), ``SET VARIABLE``
for any other name. The call record holds a name, never its escaped AMI form, and every call is
routed.
"""
from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.live

NAMES = {   # caller number: the caller-ID name the trunk delivers
    "79160000901": 'O\'Brien, "Boss" \\ <x>',
    "79160000902": "Иван Петров, ООО «Рога»",
    "79160000903": "a)b(c [d] {e} $f ${EXTEN} ;g|h",
    "79160000904": "[Ads] already labelled",
    "79160000905": "Plain Name",
}


def _seed(world) -> None:
    from calltracking import entities as svc

    with world.session() as s:
        p = svc.add_project(s, "named", timezone="Europe/Moscow", default_queue="sales")
        src = svc.add_source(s, p, "Yandex Direct", channel="ads", short_label="Ads")
        svc.add_number(s, p, "74950009001", source=src, record=False)


@pytest.fixture(scope="module")
def named(world):
    w = world
    _seed(w)
    time.sleep(3)           # the FastAGI catalogue notices a change within its 2 s check
    w.db_put(**{f"name/{caller}": name for caller, name in NAMES.items()},
             **{"ring/101": 1, "talk/101": 2, "ring/106": 1, "talk/106": 2})
    placed = {}
    for caller in NAMES:
        placed[caller] = w.call("74950009001", caller, tag=f"named-{caller[-3:]}", stay=20,
                                context="from-trunk-named")
        w.wait_hungup([placed[caller]], timeout=40)      # one at a time: two operators take them
    return placed, w.records(list(placed.values()))


def ami_escaped(name: str) -> str:
    """How Asterisk 22 writes a caller-ID name in an AMI event (``ast_escape_c``)."""
    for ch in "\\'\"?":
        name = name.replace(ch, "\\" + ch)
    return name


@pytest.mark.parametrize("caller", list(NAMES))
def test_asterisk_got_the_labelled_name_exactly(world, named, caller):
    placed, records = named
    name = NAMES[caller]
    want = name if name.startswith("[Ads]") else f"[Ads] {name}"
    seen = [e.get("CallerIDName") for e in world.events(placed[caller].linkedid, "NewCallerid")]
    assert ami_escaped(name) in seen and ami_escaped(want) in seen, (want, seen)
    rec = records[placed[caller].linkedid]
    # the name the call had when its row was first written: the Originate's (the trunk sets the
    # hostile one a moment later), the trunk's or the labelled one; never in its escaped AMI form
    assert rec["caller_name"] in (f"Caller {caller[-4:]}", name, want), rec["caller_name"]
    assert rec["source"] == "Yandex Direct" and rec["status"] == "answered"
