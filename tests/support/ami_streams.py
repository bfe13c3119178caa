"""AMI streams made for the tests, in the raw format of Asterisk 22's recordings.

- :class:`Gen` writes calls frame by frame (``tests/ami/make_fixtures.py`` builds
  ``tests/ami/fixtures/*.ami`` with it; tests build a stream for one rule). Frames use the header
  order of the recordings (channel snapshot blocks, ``Dest``/``Transferer``/``Transferee``
  prefixes, CRLF framing). Calls are made like the recordings: the caller is a Local channel pair
  into ``[from-trunk]`` (``;2`` is the inbound leg, its Linkedid is the ``;1`` uniqueid);
  operators are queue members. Uniqueids are ``<epoch>.<seq>`` with a rising sequence, as
  Asterisk allocates them.
- :func:`burst` copies the recorded calls many times (distinct Uniqueids, Linkedids, bridges and
  channel names), time-shifted and interleaved like concurrent calls: the 10k-event burst test
  and ``bench/ami_ingest.py``.
"""
from __future__ import annotations

import heapq
import re
from pathlib import Path

from support.ami_server import BANNER, load
from support.fixtures import FIXTURES, expected_calls

STATE = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up"}


class Chan:
    """One channel of a :class:`Gen` stream: its name, Uniqueid (the next of the generator's
    sequence), Linkedid, dialplan position, caller ID and state; :meth:`block` is its snapshot."""

    def __init__(self, gen, name, linkedid=None, context="", exten="", cid="<unknown>", cname="<unknown>"):
        gen.seq += 1
        self.uid = f"{gen.epoch}.{gen.seq}"
        self.name, self.linkedid = name, linkedid or self.uid
        self.context, self.exten, self.cid, self.cname, self.state, self.prio = context, exten, cid, cname, 0, 1

    def block(self, prefix=""):
        p = prefix
        return [(f"{p}Channel", self.name), (f"{p}ChannelState", str(self.state)),
                (f"{p}ChannelStateDesc", STATE[self.state]), (f"{p}CallerIDNum", self.cid),
                (f"{p}CallerIDName", self.cname), (f"{p}ConnectedLineNum", self.cid),
                (f"{p}ConnectedLineName", self.cname), (f"{p}Language", "en"), (f"{p}AccountCode", ""),
                (f"{p}Context", self.context), (f"{p}Exten", self.exten), (f"{p}Priority", str(self.prio)),
                (f"{p}Uniqueid", self.uid), (f"{p}Linkedid", self.linkedid)]


def bridge_block(bid, n, prefix=""):
    """The headers of bridge ``bid`` holding ``n`` channels (``prefix``: ``OrigBridge`` …)."""
    return [(f"{prefix}BridgeUniqueid", bid), (f"{prefix}BridgeType", "basic"),
            (f"{prefix}BridgeTechnology", "simple_bridge"), (f"{prefix}BridgeCreator", "<unknown>"),
            (f"{prefix}BridgeName", "<unknown>"), (f"{prefix}BridgeNumChannels", str(n)),
            (f"{prefix}BridgeVideoSourceMode", "none")]


class Gen:
    """A stream under construction: ``Gen(epoch, seq)`` starts the clock at ``epoch`` + 0.2 s;
    each event advances it 15 µs unless told otherwise (``g.t += 2.0`` for a pause). The building
    blocks append frames; :meth:`write` saves them with Asterisk's banner."""

    def __init__(self, epoch: int, seq: int):
        self.epoch, self.seq, self.t = epoch, seq, float(epoch) + 0.2
        self.frames: list[bytes] = []
        self.bridges: dict = {}

    def tick(self, dt=0.000015):
        self.t += dt
        return f"{self.t:.6f}"

    def ev(self, name, priv, fields, dt=0.000015):
        lines = [f"Event: {name}", f"Privilege: {priv}", f"Timestamp: {self.tick(dt)}"]
        lines += [f"{k}: {v}" for k, v in fields]
        self.frames.append(("\r\n".join(lines) + "\r\n\r\n").encode())

    def raw(self, text: str):
        self.frames.append(text.encode() if isinstance(text, str) else text)

    # ------------------------------------------------------------------ building blocks
    def caller(self, did, number, name):
        one = Chan(self, f"Local/{did}@from-trunk-{self.seq:08x};1", context="from-trunk", exten=did)
        two = Chan(self, one.name[:-1] + "2", one.uid, "from-trunk", did)
        two.state = 4
        self.ev("Newchannel", "call,all", one.block())
        self.ev("Newchannel", "call,all", two.block())
        two.created = self.t
        for c in (one, two):
            c.cid, c.cname = number, name
            self.ev("NewCallerid", "call,all", c.block() + [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")])
        two.state, one.state = 6, 6
        self.ev("Newstate", "call,all", two.block())
        self.ev("Newstate", "call,all", one.block())
        one.context, one.exten = "caller", "stay"
        two.prio = 7
        return one, two

    def operator_local(self, ext, linkedid, cid, cname):
        one = Chan(self, f"Local/{ext}@operators-{self.seq:08x};1", linkedid, "operators", "", cid, cname)
        two = Chan(self, one.name[:-1] + "2", linkedid, "operators", ext, cid, cname)
        two.state = 4
        self.ev("Newchannel", "call,all", one.block())
        self.ev("Newchannel", "call,all", two.block())
        return one, two

    def varset(self, ch, var, value):
        self.ev("VarSet", "dialplan,all", ch.block() + [("Variable", var), ("Value", value)])

    def join(self, caller, queue, pos=1):
        self.ev("QueueCallerJoin", "agent,all", caller.block() + [("Queue", queue), ("Position", str(pos)),
                                                                  ("Count", str(pos))])

    def leave(self, caller, queue, count=0):
        self.ev("QueueCallerLeave", "agent,all", caller.block() + [("Queue", queue), ("Position", "1"),
                                                                   ("Count", str(count))])

    def agent_called(self, caller, dest, queue, iface, member):
        self.ev("AgentCalled", "agent,all", caller.block() + dest.block("Dest") + [
            ("Queue", queue), ("Interface", iface), ("MemberName", member)])

    def dial_begin(self, caller, dest, dialstring):
        self.ev("DialBegin", "call,all", caller.block() + dest.block("Dest") + [("DialString", dialstring)])

    def dial_end(self, caller, dest, status):
        self.ev("DialEnd", "call,all", caller.block() + dest.block("Dest") + [("DialStatus", status)])

    def ringing(self, ch):
        ch.state = 5
        self.ev("Newstate", "call,all", ch.block())

    def up(self, ch, dt=0.000015):
        ch.state = 6
        self.ev("Newstate", "call,all", ch.block(), dt)

    def agent_connect(self, caller, dest, queue, iface, member, hold, ring):
        self.ev("AgentConnect", "agent,all", caller.block() + dest.block("Dest") + [
            ("Queue", queue), ("Interface", iface), ("MemberName", member), ("HoldTime", str(hold)),
            ("RingTime", str(ring))])

    def agent_complete(self, caller, dest, queue, iface, member, hold, talk, reason):
        self.ev("AgentComplete", "agent,all", caller.block() + dest.block("Dest") + [
            ("Queue", queue), ("Interface", iface), ("MemberName", member), ("HoldTime", str(hold)),
            ("TalkTime", str(talk)), ("Reason", reason)])

    def bridge_create(self):
        self.seq += 1
        bid = f"0a1b2c3d-0000-4000-8000-{self.epoch % 10**6:06d}{self.seq:06d}"
        self.bridges[bid] = set()
        self.ev("BridgeCreate", "call,all", bridge_block(bid, 0))
        return bid

    def enter(self, bid, ch, swap=None):
        self.bridges[bid].add(ch.uid)
        extra = [("SwapUniqueid", swap.uid)] if swap else []
        self.ev("BridgeEnter", "call,all", bridge_block(bid, len(self.bridges[bid])) + ch.block() + extra)

    def leave_bridge(self, bid, ch):
        self.bridges[bid].discard(ch.uid)
        self.ev("BridgeLeave", "call,all", bridge_block(bid, len(self.bridges[bid])) + ch.block())

    def destroy(self, bid):
        self.ev("BridgeDestroy", "call,all", bridge_block(bid, 0))

    def hangup(self, ch, cause="16", request=None):
        if request:
            self.ev(request, "call,all", ch.block() + [("Cause", cause)])
        self.ev("Hangup", "call,all", ch.block() + [("Cause", cause), ("Cause-txt", "Normal Clearing")])

    def member_added(self, queue, iface, name):
        self.ev("QueueMemberAdded", "agent,all", [
            ("Queue", queue), ("MemberName", name), ("Interface", iface), ("StateInterface", iface),
            ("Membership", "dynamic"), ("Penalty", "0"), ("CallsTaken", "0"), ("LastCall", "0"),
            ("LastPause", "0"), ("LoginTime", str(self.epoch)), ("InCall", "0"), ("Status", "1"),
            ("Paused", "0"), ("PausedReason", ""), ("Ringinuse", "0"), ("Wrapuptime", "0")])

    def member_removed(self, queue, iface, name):
        self.ev("QueueMemberRemoved", "agent,all", [
            ("Queue", queue), ("MemberName", name), ("Interface", iface), ("StateInterface", iface),
            ("Membership", "dynamic"), ("Penalty", "0"), ("CallsTaken", "0"), ("LastCall", "0"),
            ("LastPause", "0"), ("LoginTime", str(self.epoch)), ("InCall", "0"), ("Status", "5"),
            ("Paused", "0"), ("PausedReason", ""), ("Ringinuse", "0"), ("Wrapuptime", "0")])

    def write(self, path: Path):
        path.write_bytes(BANNER + b"".join(self.frames))


# ------------------------------------------------------------------ copies of the recordings
#: The recorded scenarios :func:`burst` copies.
SCENARIOS = ("answered_queue", "abandoned_queue", "ring_no_answer_then_answered", "agi_down_default_queue",
             "direct_dial_no_queue", "two_concurrent")

_UID = re.compile(rb"(?<![\d.])(1795\d{6})\.(\d{1,5})(?!\d)")
_TS = re.compile(rb"Timestamp: (\d+\.\d+)")
_UUID = re.compile(rb"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-)[0-9a-f]{12}")
_CHAN = re.compile(rb"-([0-9a-f]{8})(?=[;\r])")


def _template(name: str):
    frames = [f for f in load(FIXTURES / f"{name}.ami") if f.startswith(b"Event: ") and b"Timestamp: " in f]
    return frames, [e for e in expected_calls() if e["scenario"] == name]


def _copy(frames, k: int, offset: float):
    def uid(m):
        return b"%s.%d" % (m.group(1), int(m.group(2)) + k * 1000)

    def ts(m):
        return b"Timestamp: %.6f" % (float(m.group(1)) + offset)

    out = []
    for f in frames:
        f = _UID.sub(uid, f)
        f = _TS.sub(ts, f)
        f = _UUID.sub(lambda m: m.group(1) + b"%012x" % k, f)
        f = _CHAN.sub(lambda m: b"-%08x" % (int(m.group(1), 16) + k * 0x100), f)
        out.append((float(_TS.search(f).group(1)), k, f))
    return out


def _shift_expected(exp: dict, k: int, offset: float) -> dict:
    e = dict(exp)
    a, b = e["linkedid"].split(".")
    e["linkedid"] = f"{a}.{int(b) + k * 1000}"
    for key in ("started_at", "queued_at", "answered_at", "ended_at"):
        if key in e:
            e[key] = e[key] + offset
    return e


def burst(min_events: int, spacing: float = 0.05):
    """(frames, {linkedid: expected record}) with at least ``min_events`` events."""
    templates = [_template(n) for n in SCENARIOS]
    base = min(float(_TS.search(t[0][0]).group(1)) for t in templates)
    streams, expected, total, k = [], {}, 0, 0
    while total < min_events:
        frames, exps = templates[k % len(templates)]
        first = float(_TS.search(frames[0]).group(1))
        offset = (base - first) + k * spacing        # copies start `spacing` seconds apart
        streams.append(_copy(frames, k + 1, offset))
        for e in exps:
            se = _shift_expected(e, k + 1, offset)
            expected[se["linkedid"]] = se
        total += sum(1 for f in frames if b"ActionID: " not in f)
        k += 1
    merged = [f for _, _, f in heapq.merge(*streams)]
    return merged, expected
