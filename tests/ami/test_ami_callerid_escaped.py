"""Caller-ID names as Asterisk 22 writes them in AMI events: C-escaped.

Recorded by the live suite (``tests/live/test_live_callerid.py``, the five calls of
``tests/ami/fixtures/callerid_escaped_live.ami``): the trunk sets a hostile name, the ``route``
hook puts the source's label in front. Asterisk writes ``O'Brien, "Boss" \\ <x>`` as
``O\\'Brien, \\"Boss\\" \\\\ <x>`` in ``CallerIDName``; the listener must record the name itself.
"""
import pytest

from calltracking.interpret.names import caller_id_text
from support.fixtures import OWN
from support.replay import interpret

FIXTURE = OWN / "callerid_escaped_live.ami"
RAW = {   # caller number: the name the trunk set (tests/live/test_live_callerid.py)
    "79160000901": 'O\'Brien, "Boss" \\ <x>',
    "79160000902": "Иван Петров, ООО «Рога»",
    "79160000903": "a)b(c [d] {e} $f ${EXTEN} ;g|h",
    "79160000904": "[Ads] already labelled",
    "79160000905": "Plain Name",
}


def test_the_recording_holds_escaped_names():
    text = FIXTURE.read_bytes().decode()
    assert 'CallerIDName: O\\\'Brien, \\"Boss\\" \\\\ <x>\r\n' in text
    assert "CallerIDName: O'Brien" not in text


def test_the_listener_records_the_names_unescaped():
    it = interpret(FIXTURE)
    recs = {c.record()["caller_number"]: c.record() for c in it.calls.values()}
    assert set(recs) == set(RAW)
    for number, raw in RAW.items():
        want = raw if raw.startswith("[Ads] ") else f"[Ads] {raw}"     # the hook's name, last set
        assert recs[number]["caller_name"] == want, number
        assert recs[number]["status"] == "answered"


@pytest.mark.parametrize("escaped, text", [
    ("Plain", "Plain"),
    ('O\\\'Brien \\"Boss\\"', 'O\'Brien "Boss"'),
    ("back\\\\slash", "back\\slash"),
    ("a\\\\nb", "a\\nb"),               # an escaped backslash, then the letter n
    ("line\\none\\ttwo", "line one two"),   # escaped control characters: spaces
    ("why\\?", "why?"),
    ("\\x41 stays", "\\x41 stays"),     # not an escape Asterisk writes: kept
    ("trailing\\", "trailing\\"),
    ("Иван\\'", "Иван'"),
])
def test_caller_id_text(escaped, text):
    assert caller_id_text(escaped) == text
