"""One caller-number rule for both paths: a withheld number is stored as ``''``.

Asterisk puts ``anonymous`` (or ``Restricted``, ``unknown``, ``<unknown>``) in
``CALLERID(num)`` when the caller hides their number. The AGI ``route`` hook and the AMI
listener both store the call's ``caller_number`` through :func:`calltracking.phone.caller_number`;
here the recorded answered call is replayed through the listener's real writer with its
caller number replaced, and the stored row must agree with what the hook answers.
"""
import pytest
from sqlalchemy import select
from test_ami_rebuild import items_of, setup_world

from calltracking.callstore.ingest import Processor
from calltracking import phone
from calltracking.callstore.store import CallStore
from calltracking.hooks import inputs as hooks
from calltracking.models import Call
from support.ami_server import load
from support.fixtures import FIXTURES

RECORDED_CALLER = b"CallerIDNum: 79161110001\r\n"


@pytest.mark.parametrize("raw, stored", [
    ("anonymous", ""), ("Anonymous", ""), ("Restricted", ""), ("unknown", ""), ("<unknown>", ""), ("", ""),
    ("8 (916) 111-00-01", "+79161110001"), ("79161110001", "+79161110001"), ("101", "101"), ("abc", ""),
])
def test_the_rule(raw, stored):
    assert phone.caller_number(raw, "RU") == stored
    assert hooks.caller_number(raw, "RU") == stored


@pytest.mark.db
@pytest.mark.parametrize("raw, stored", [("anonymous", ""), ("Restricted", ""), ("79161110001", "+79161110001")])
def test_the_listener_stores_what_the_hook_answers(session_factory, raw, stored):
    setup_world(session_factory)
    frames = load(FIXTURES / "answered_queue.ami")
    assert any(RECORDED_CALLER in f for f in frames), "the recording's caller changed: update RECORDED_CALLER"
    frames = [f.replace(RECORDED_CALLER, b"CallerIDNum: " + raw.encode() + b"\r\n") for f in frames]
    Processor(CallStore(session_factory, "pbx1", "RU")).process(items_of(frames))
    with session_factory() as s:
        numbers = s.scalars(select(Call.caller_number)).all()
    assert numbers == [stored]
