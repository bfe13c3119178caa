"""The AMI frame parser in a helper process (``[ami] parser_process``): the frames that come back
are the ones the listener's own parser makes from the same bytes, in the same order, with the
same counters, however the bytes are cut into reads; and nothing is lost or doubled when the
helper dies or the connection ends with reads still in it.

Real helper processes on real pipes; the recorded Asterisk 22 streams plus hostile frames.
"""
import asyncio
import logging
import random
import signal
import sys

import pytest

from ami_listener import parse_process
from ami_listener.connection import SKIP
from ami_listener.parse_process import ParseHelper
from calltracking.interpret import FrameParser
from calltracking.interpret.channels import VARSET_PREFIXES
from support.ami_server import BANNER, event_count
from support.ami_streams import burst
from support.fixtures import FIXTURES, TESTS
from support.polling import poll

HOSTILE = [
    b"garbage without a header\r\n\r\n",                                     # malformed
    b"Event: Newchannel\r\nPrivilege: call,all\r\nCallerIDName: \xff\xfe\x00bad\r\n\r\n",
    b"Event: Newexten\r\nPrivilege: dialplan,all\r\nChannel: PJSIP/x\r\n\r\n",     # skipped
    b"Event: VarSet\r\nPrivilege: dialplan,all\r\nVariable: UNRELATED\r\nValue: 1\r\n\r\n",
    b"Response: Success\r\nActionID: ct-1\r\nPing: Pong\r\n\r\n",
]


def recorded_stream() -> bytes:
    """Asterisk's banner, every recorded stream of the tests and the hostile frames."""
    paths = sorted(FIXTURES.glob("*.ami")) + sorted((TESTS / "ami" / "fixtures").rglob("*.ami"))
    assert len(paths) >= 10
    body = b"".join(p.read_bytes().split(b"\r\n", 1)[1] if p.read_bytes().startswith(b"Asterisk Call")
                    else p.read_bytes() for p in paths)
    return BANNER + body + b"".join(HOSTILE) * 3


def cut(data: bytes, seed: int) -> list[bytes]:
    """``data`` in reads of 1 byte to 64 KiB, the boundaries anywhere (inside the banner too)."""
    rnd, out, i = random.Random(seed), [], 0
    while i < len(data):
        n = rnd.choice([1, 7, rnd.randint(1, 700), rnd.randint(1, 1 << 16)])
        out.append(data[i:i + n])
        i += n
    return out


def new_parser() -> FrameParser:
    return FrameParser(skip=SKIP, keep_vars=VARSET_PREFIXES)


def inline(chunks) -> tuple[list, FrameParser]:
    """What the listener's own parser makes of the reads: [(read number, frame)], the parser."""
    p = new_parser()
    return [(i, f) for i, c in enumerate(chunks) for f in p.feed(c)], p


def counters(p: FrameParser) -> tuple:
    return p.skipped, p.malformed, p.banner, p.privileges


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def answered(helper: ParseHelper) -> None:
    while helper.pending:
        await asyncio.sleep(0.005)


async def through_helper(chunks, kill_at=None, yield_every=5):
    """The reads through a started helper (killed before read ``kill_at``)."""
    helper = ParseHelper()
    assert await helper.start()
    parser, got = new_parser(), []
    helper.begin(parser, lambda recv, frames: got.extend((recv, f) for f in frames))
    for i, chunk in enumerate(chunks):
        if i == kill_at:        # once the helper has answered some reads and has some in hand
            await poll_async(lambda: len(helper.pending) < i)
            helper.proc.send_signal(signal.SIGKILL)
        helper.feed(i, chunk)
        if i % yield_every == 0:
            await asyncio.sleep(0)
    await answered(helper)
    stats = dict(helper.stats)
    await helper.close()
    return got, parser, stats


def test_stream_has_what_the_test_needs():
    data = recorded_stream()
    want, p = inline([data])
    assert len(want) > 300 and p.skipped > 100 and p.malformed == 3 and p.banner.startswith("Asterisk")
    assert any(f.get("_flawed") or "\ufffd" in f.get("CallerIDName", "") for _, f in want)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_helper_frames_and_counters_equal_the_listeners_own_parse(seed):
    chunks = cut(recorded_stream(), seed)
    want, ref = inline(chunks)
    got, parser, stats = run(through_helper(chunks))
    assert got == want                                  # same frames, same reads, same order
    assert counters(parser) == counters(ref)
    assert stats["reads"] == len(chunks) and stats["inline_reads"] == 0 and stats["deaths"] == 0


@pytest.mark.parametrize("seed,where", [(4, 0.1), (5, 0.5), (6, 0.9)])
def test_helper_killed_mid_stream_loses_doubles_and_reorders_nothing(seed, where, caplog):
    chunks = cut(recorded_stream(), seed)
    want, ref = inline(chunks)
    with caplog.at_level(logging.WARNING, "calltracking.ami"):
        got, parser, stats = run(through_helper(chunks, kill_at=int(len(chunks) * where), yield_every=3))
    assert got == want
    assert counters(parser) == counters(ref)
    assert stats["deaths"] == 1 and 0 < stats["inline_reads"] < len(chunks)
    assert "AMI parser process ended" in caplog.text


def test_connection_end_parses_the_reads_in_flight_then_late_answers_are_dropped():
    first, second = cut(recorded_stream(), 7), cut(recorded_stream(), 8)

    async def go():
        helper = ParseHelper()
        assert await helper.start()
        p1, got1 = new_parser(), []
        helper.begin(p1, lambda recv, frames: got1.extend((recv, f) for f in frames))
        for i, c in enumerate(first):
            helper.feed(i, c)
        in_flight = len(helper.pending)
        helper.drain()                                  # the connection ended: all parsed now
        delivered_at_end = list(got1)
        p2, got2 = new_parser(), []
        helper.begin(p2, lambda recv, frames: got2.extend((recv, f) for f in frames))
        for i, c in enumerate(second):
            helper.feed(i, c)
        await answered(helper)
        await asyncio.sleep(0.05)
        await helper.close()
        return in_flight, delivered_at_end, got1, p1, got2, p2, helper.stats

    in_flight, at_end, got1, p1, got2, p2, stats = run(go())
    want1, ref1 = inline(first)
    want2, ref2 = inline(second)
    assert in_flight > 0
    assert at_end == got1 == want1 and counters(p1) == counters(ref1)
    assert got2 == want2 and counters(p2) == counters(ref2)
    assert stats["inline_reads"] == in_flight and stats["deaths"] == 0


def test_helper_that_cannot_start_leaves_parsing_in_the_listener(monkeypatch, caplog):
    monkeypatch.setattr(sys, "executable", "/nonexistent/python3")
    chunks = cut(recorded_stream(), 9)
    want, ref = inline(chunks)

    async def go():
        helper = ParseHelper()
        started = await helper.start()
        parser, got = new_parser(), []
        helper.begin(parser, lambda recv, frames: got.extend((recv, f) for f in frames))
        for i, c in enumerate(chunks):
            helper.feed(i, c)
        await helper.close()
        return started, got, parser, helper.stats

    with caplog.at_level(logging.WARNING, "calltracking.ami"):
        started, got, parser, stats = run(go())
    assert started is False and "could not start" in caplog.text
    assert got == want and counters(parser) == counters(ref)
    assert stats["inline_reads"] == len(chunks)


def test_a_dead_helper_is_started_again_a_minute_later_not_sooner(monkeypatch):
    async def go():
        helper = ParseHelper()
        assert await helper.start()
        helper.proc.kill()
        await asyncio.to_thread(helper.proc.wait)
        await poll_async(lambda: not helper.alive)
        await helper.ensure()
        soon = helper.alive
        monkeypatch.setattr(parse_process, "RESTART_EVERY", 0.0)
        await helper.ensure()
        later = helper.alive
        chunks = cut(recorded_stream(), 10)
        parser, got = new_parser(), []
        helper.begin(parser, lambda recv, frames: got.extend((recv, f) for f in frames))
        for i, c in enumerate(chunks):
            helper.feed(i, c)
        await answered(helper)
        await helper.close()
        return soon, later, chunks, got, dict(helper.stats)

    soon, later, chunks, got, stats = run(go())
    assert (soon, later) == (False, True)
    assert stats["starts"] == 2 and stats["deaths"] == 1 and stats["inline_reads"] == 0
    assert got == inline(chunks)[0]


async def poll_async(predicate, timeout=10.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def test_helper_ends_when_the_listener_goes_away():
    async def go():
        helper = ParseHelper()
        assert await helper.start()
        proc = helper.proc
        await helper.close()
        return proc.returncode

    assert run(go()) == 0


# --------------------------------------------------------------- through the real listener
def same(rec, exp):
    assert (rec["status"], rec["missed_reason"], rec["operator"]) == (
        exp["status"], exp.get("missed_reason"), exp.get("operator"))
    for k in ("wait_seconds", "talk_seconds", "hold_seconds"):
        assert rec[k] == pytest.approx(exp[k], abs=0.0011), k


@pytest.mark.parametrize("parser_process", ["yes", "no"])
def test_listener_records_the_same_calls_with_either_parser(parser_process, tracked, asterisk, listener,
                                                            calls):
    frames, expected = burst(3_000)
    asterisk.add(frames)
    lst = listener(ami__parser_process=parser_process)
    asterisk.emit()
    lst.wait_idle(event_count(frames), timeout=120)
    got = {c["linkedid"]: c for c in calls()}
    assert set(got) == set(expected)
    for lid, exp in expected.items():
        same(got[lid], exp)
    helper = lst.stats.get("parser")
    if parser_process == "yes":
        assert helper.stats["reads"] > 0 and helper.stats["inline_reads"] == 0
    else:
        assert helper is None


def test_listener_whose_helper_is_killed_mid_call_loses_nothing(tracked, asterisk, listener, calls, caplog):
    frames, expected = burst(3_000)
    asterisk.add(frames)
    with caplog.at_level(logging.WARNING, "calltracking.ami"):
        lst = listener(ami__parser_process="yes")
        helper = lst.stats["parser"]
        asterisk.emit(len(frames) // 2)
        poll(lambda: helper.stats["reads"] > 0, timeout=10)
        helper.proc.kill()
        asterisk.emit()
        lst.wait_idle(event_count(frames), timeout=120)
    got = {c["linkedid"]: c for c in calls()}
    assert set(got) == set(expected) and len(got) == len(expected)
    for lid, exp in expected.items():
        same(got[lid], exp)
    assert helper.stats["deaths"] == 1 and helper.stats["inline_reads"] > 0
    assert "AMI parser process ended" in caplog.text
