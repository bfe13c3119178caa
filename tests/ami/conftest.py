"""Fixtures of the AMI listener tests: a real AMI server, the real listener in a thread."""
from __future__ import annotations

import json

import pytest

from calltracking import entities as svc
from support.ami_server import FakeAsterisk
from support.config import make_config
from support.fixtures import DIDS, queue_members
from support.listener import Listener


@pytest.fixture
def tracked(session_factory):
    """A project whose source owns every DID of the recordings."""
    with session_factory() as s, s.begin():
        p = svc.add_project(s, "acme", timezone="Europe/Moscow")
        src = svc.add_source(s, p, "Recorded", channel="ads")
        for did in DIDS:
            svc.add_number(s, p, did, source=src)
    return "acme"


@pytest.fixture
def asterisk():
    """The fake Asterisk with the recordings' queue members, writing in 701-byte pieces (frames
    split across reads, as on a real socket)."""
    srv = FakeAsterisk(members=queue_members(), chunk=701).start()
    yield srv
    srv.stop()


@pytest.fixture
def listener(db_url, session_factory, asterisk):
    """``listener(wait=True, **settings)`` starts a listener on ``asterisk`` (``settings`` as
    :func:`support.config.make_config` takes them); every one started is stopped at the end."""
    made = []

    def start(wait=True, **settings):
        lst = Listener(make_config(db_url, ami__port=asterisk.port, **settings), session_factory).start(wait)
        made.append(lst)
        return lst

    yield start
    for lst in made:
        if lst.thread.is_alive():
            lst.stop()


@pytest.fixture
def calls(run_cli):
    """``calls()``: the stored calls as ``calltracking calls list --format json`` prints them."""
    def get():
        return json.loads(run_cli("calls", "list", "--format", "json").output)

    return get
