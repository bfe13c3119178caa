"""Builds our own AMI fixtures in the recordings' raw format (run it to regenerate tests/ami/fixtures).

Frames use the header order of Asterisk 22's recordings (channel snapshot
blocks, ``Dest``/``Transferer``/``Transferee`` prefixes, CRLF framing). The
calls are made like the recordings: the caller is a Local channel pair into
``[from-trunk]`` (``;2`` is the inbound leg, its Linkedid is the ``;1``
uniqueid); operators are queue members. Uniqueids are ``<epoch>.<seq>`` with
a rising sequence, as Asterisk allocates them.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

REC = HERE.parents[0] / "fixtures" / "asterisk-22"
STATE = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up"}


class Chan:
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
    return [(f"{prefix}BridgeUniqueid", bid), (f"{prefix}BridgeType", "basic"),
            (f"{prefix}BridgeTechnology", "simple_bridge"), (f"{prefix}BridgeCreator", "<unknown>"),
            (f"{prefix}BridgeName", "<unknown>"), (f"{prefix}BridgeNumChannels", str(n)),
            (f"{prefix}BridgeVideoSourceMode", "none")]


class Gen:
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
        path.write_bytes(b"Asterisk Call Manager/11.0.0\r\n" + b"".join(self.frames))
