"""The live listener and ``ami rebuild`` agree on every call, however the events were batched.

Every recorded and built stream goes through the listener's real :class:`Processor`
(interpretation and one database transaction per batch) in batches of different sizes, then is
re-derived from the stored events; every row written (calls, legs, outbound calls) must be the
same. Then the rules that make it so, each on the stream that broke it.
"""
import ast
import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from calltracking.callstore.ingest import Processor
from calltracking import entities as svc
from calltracking.callstore.store import CallStore
from calltracking.db import make_engine, make_sessionmaker
from calltracking.models import AmiEvent, Call, CallLeg, OutboundCall
from support.ami_server import headers, load
from support.ami_streams import Chan, Gen
from support.fixtures import FIXTURES, OWN, RECORDED

STREAMS = (sorted(RECORDED.glob("*.ami")) + sorted(FIXTURES.glob("*.ami"))
           + [OWN / f"{n}.ami" for n in ("no_operators", "blind_transfer", "attended_transfer")])
DIDS = sorted({m.decode() for p in STREAMS for m in re.findall(rb"Local/(7495\d{7})@from-trunk", p.read_bytes())})
OPERATORS = [("Anna", "Local/101@operators"), ("Boris", "Local/102@operators"), ("Vera", "Local/103@operators/n"),
             ("Ghost", "Local/199@operators/n"), ("Anna Petrova", "Local/201@phones"),
             ("Boris Ivanov", "Local/202@phones")]
SINCE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def setup_world(session_factory):
    with session_factory() as s, s.begin():
        p = svc.add_project(s, "acme", timezone="Europe/Moscow")
        src = svc.add_source(s, p, "Recorded", channel="ads")
        for did in DIDS:
            svc.add_number(s, p, did, source=src)
        for name, iface in OPERATORS:
            svc.add_operator(s, name, iface)


@pytest.fixture
def world(session_factory):
    setup_world(session_factory)


def items_of(frames) -> list:
    out = []
    for f in frames:
        if f.startswith(b"Event: "):
            ev = headers(f)
            out.append(("ev", float(ev.get("Timestamp") or 0), ev))
    return out


def run_live(session_factory, items, size, **store_kw):
    proc = Processor(CallStore(session_factory, "pbx1", "RU", **store_kw))
    for i in range(0, len(items), size):
        proc.process(items[i:i + size])
    return proc


def snapshot(session_factory) -> dict:
    def row(obj, skip=("id", "call_id", "created_at", "updated_at")):
        return {c.name: getattr(obj, c.name) for c in obj.__table__.c if c.name not in skip}

    with session_factory() as s:
        calls = {c.linkedid: row(c) for c in s.scalars(select(Call))}
        by_id = {c.id: c.linkedid for c in s.scalars(select(Call))}
        legs = {(by_id[l.call_id], l.uniqueid): row(l) for l in s.scalars(select(CallLeg))}
        outs = {o.linkedid: row(o) for o in s.scalars(select(OutboundCall))}
    return {"calls": calls, "legs": legs, "outbound": outs}


def test_any_batching_and_the_rebuild_write_the_same_rows(db_factory):
    """Each batching on a database of its own (same row ids, same lookups)."""
    runs = {}
    for size in (1, 9, 10**6):
        engine = make_engine(db_factory.migrated())
        factory = make_sessionmaker(engine)
        try:
            setup_world(factory)
            run_live(factory, items_of(f for p in STREAMS for f in load(p)), size)
            runs[size] = snapshot(factory)
            if size == 10**6:
                n_calls, n_events = CallStore(factory, "pbx1", "RU").rebuild(SINCE)
                rebuilt = snapshot(factory)
        finally:
            engine.dispose()
    first = runs[1]
    assert (len(first["calls"]), len(first["legs"]), len(first["outbound"])) == (16, 19, 3)
    for size, snap in runs.items():
        assert snap == first, f"batches of {size} events"
    assert n_calls == len(first["calls"]) + len(first["outbound"]) and n_events > 500
    assert rebuilt == first


def test_a_did_that_arrives_after_the_first_batch_is_still_tracked(world, session_factory):
    """A trunk channel is created with extension ``s``; the dialplan sends it on to the DID. The
    first batch sees no number yet: that must not make the call 'untracked' for good."""
    g = Gen(1796400000, 0)
    trunk = Chan(g, "PJSIP/trunk-00000001", context="from-trunk", exten="s", cid="79161110031",
                 cname="Caller 0031")
    g.ev("Newchannel", "call,all", trunk.block())
    split = len(g.frames)
    trunk.exten, trunk.state = DIDS[0], 6
    g.ev("Newstate", "call,all", trunk.block(), dt=0.05)
    g.join(trunk, "sales")
    g.t += 4.0
    g.ev("QueueCallerAbandon", "agent,all", trunk.block() + [("Queue", "sales"), ("Position", "1"),
                                                             ("OriginalPosition", "1"), ("HoldTime", "4")])
    g.leave(trunk, "sales")
    g.hangup(trunk)
    items = items_of(g.frames)
    proc = Processor(CallStore(session_factory, "pbx1", "RU"))
    proc.process(items[:split])
    assert snapshot(session_factory)["calls"] == {}            # no number yet: nothing recorded
    proc.process(items[split:])
    (rec,) = snapshot(session_factory)["calls"].values()
    assert (rec["did"], rec["status"], rec["missed_reason"]) == (f"+{DIDS[0]}", "missed", "abandoned")


def test_rebuild_keeps_an_outbound_call_outbound(session_factory):
    """An operator's desk dialling out is outbound by ``[asterisk] outbound_contexts`` (the
    context its channel was created in): the rebuild must read the same context from the stored
    events; events stored without it (earlier versions) keep the classification of the row."""
    from test_ami_outbound_streams import operator_dials

    with session_factory() as s, s.begin():
        p = svc.add_project(s, "acme", timezone="Europe/Moscow")
        svc.add_number(s, p, "74950001001", source=svc.add_source(s, p, "Ads"))
    g = Gen(1796410000, 0)
    info = operator_dials(g, "74950001001", ext="301", context="desks")   # the desk calls a tracked number
    store_kw = {"outbound_contexts": ("desks",)}
    run_live(session_factory, items_of(g.frames), 5, **store_kw)
    live = snapshot(session_factory)
    assert live["calls"] == {} and list(live["outbound"]) == [info["linkedid"]]
    CallStore(session_factory, "pbx1", "RU", **store_kw).rebuild(SINCE)
    assert snapshot(session_factory) == live
    with session_factory() as s, s.begin():                     # events as earlier versions stored them
        for e in s.scalars(select(AmiEvent)):
            e.data = "\n".join(line for line in e.data.split("\n") if not line.startswith("Context: "))
    CallStore(session_factory, "pbx1", "RU", **store_kw).rebuild(SINCE)
    assert snapshot(session_factory) == live                    # no phantom inbound call to the number


def test_every_header_the_interpreter_reads_is_stored():
    """A header read by a handler but not stored makes ``ami rebuild`` decide differently."""
    from calltracking import interpret
    from calltracking.interpret.handlers import HEADERS

    read = set()
    for path in Path(interpret.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "ev" and node.args \
                    and isinstance(node.args[0], ast.Constant):
                read.add(node.args[0].value)
            elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "ev" \
                    and isinstance(node.slice, ast.Constant):
                read.add(node.slice.value)
    assert len(read) > 30
    assert read <= HEADERS, read - HEADERS
