"""Compare one stored call record with what Asterisk itself says about the call.

Three witnesses, each as Asterisk 22 wrote it during the live run:

- ``queue_log``: ENTERQUEUE (time), CONNECT (holdtime = queue wait, the agent), COMPLETEAGENT /
  COMPLETECALLER (talktime), ABANDON, EXITWITHTIMEOUT;
- CDR ``Master.csv``: the inbound channel's start and end (whole seconds, local time);
- the AMI stream: ``AgentConnect`` ``HoldTime``, ``AgentComplete`` ``TalkTime``, the caller
  channel's ``Newchannel`` and ``Hangup`` timestamps (to the microsecond).

Times must agree within 1 s (the contract); whole-second witnesses get their truncation on top.
"""
from __future__ import annotations

import datetime as dt
from typing import Optional

TOL = 1.0


def ts(iso: Optional[str]) -> Optional[float]:
    return None if iso is None else dt.datetime.fromisoformat(iso).timestamp()


def cdr_ts(text: str) -> Optional[float]:
    """CDR times are local wall-clock seconds (``usegmtime = no``)."""
    if not text:
        return None
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").timestamp()


def near(a: Optional[float], b: Optional[float], tol: float = TOL) -> bool:
    return a is not None and b is not None and abs(a - b) <= tol


def check(world, placed, rec: Optional[dict], *, status: str, missed_reason: Optional[str] = None,
          operator: Optional[str] = None, queue: Optional[str] = None, source: Optional[str] = None,
          attribution: Optional[str] = None, tags: Optional[list] = None, legs: Optional[list] = None,
          talk: Optional[float] = None, wait: Optional[float] = None, hold: Optional[float] = None,
          context: str = "from-trunk", queue_log_talk: bool = True, cdr: bool = True,
          queue_log_agent: bool = True) -> list[str]:
    """Every disagreement, as a readable line (empty when the record is right).

    ``legs``: expected ``[(operator, talk_seconds or None)]`` in order of ringing, answered legs only.
    ``talk``/``wait``/``hold``: expected values from the scenario's own timing (±1 s), beside
    the witnesses. ``cdr=False`` where Asterisk writes no CDR (a call cut by ``core restart now``);
    ``queue_log_agent=False`` where queue_log names the queue member but another phone talked
    (call forwarding).
    """
    name = f"{placed.tag} ({placed.linkedid})"
    if rec is None:
        return [f"{name}: no call record"]
    bad = []

    def want(field, expected):
        if rec.get(field) != expected:
            bad.append(f"{name}: {field} = {rec.get(field)!r}, expected {expected!r}")

    want("status", status)
    want("missed_reason", missed_reason)
    if operator is not None or status == "missed":
        want("operator", operator)
    if queue is not None:
        want("queue", queue)
    if source is not None or attribution == "none":
        want("source", source)
    if attribution is not None:
        want("attribution", attribution)
    if tags is not None:
        if sorted(rec.get("tags") or []) != sorted(tags):
            bad.append(f"{name}: tags = {rec.get('tags')!r}, expected {sorted(tags)!r}")
    for field, expected in (("talk_seconds", talk), ("wait_seconds", wait), ("hold_seconds", hold)):
        if expected is not None and not near(rec.get(field), expected, TOL + 0.5):
            bad.append(f"{name}: {field} = {rec.get(field)}, the scenario gives ~{expected}")

    # --- the AMI stream: the caller's channel ------------------------------------------------
    inbound = [e for e in world.channels_of(placed.linkedid)
               if e["Channel"].endswith(";2") and f"@{context}-" in e["Channel"]]
    if inbound:
        born = float(inbound[0]["Timestamp"])
        if not near(ts(rec["started_at"]), born, 0.5):
            bad.append(f"{name}: started_at {rec['started_at']} but the caller's channel was created at "
                       f"{dt.datetime.fromtimestamp(born, dt.timezone.utc).isoformat()}")
        hang = [e for e in world.events(placed.linkedid, "Hangup") if e["Uniqueid"] == inbound[0]["Uniqueid"]]
        if hang and not near(ts(rec["ended_at"]), float(hang[0]["Timestamp"]), 0.5):
            bad.append(f"{name}: ended_at {rec['ended_at']} but the caller hung up at "
                       f"{dt.datetime.fromtimestamp(float(hang[0]['Timestamp']), dt.timezone.utc).isoformat()}")

    # --- CDR ------------------------------------------------------------------------------
    g = world.ground(placed.linkedid)
    rows = [c for c in g.cdrs if c["channel"].endswith(";2") and f"@{context}-" in c["channel"]]
    if rows:
        # a transfer splits the caller channel's CDR: the call spans the first start to the last end
        start = min(cdr_ts(c["start"]) for c in rows)
        end = max(cdr_ts(c["end"]) for c in rows)
        if not near(ts(rec["started_at"]), start + 0.5, 1.0):
            bad.append(f"{name}: started_at {rec['started_at']} but the CDR says {start}")
        if not near(ts(rec["ended_at"]), end + 0.5, 1.0):
            bad.append(f"{name}: ended_at {rec['ended_at']} but the CDR says {end}")
    elif cdr:
        bad.append(f"{name}: Asterisk wrote no CDR for the caller's channel (witness missing)")

    # --- queue_log ------------------------------------------------------------------------
    if g.ql("ABANDON") and rec.get("missed_reason") != "abandoned":
        bad.append(f"{name}: queue_log says ABANDON, record says {rec.get('status')}/{rec.get('missed_reason')}")
    if g.ql("EXITWITHTIMEOUT") and rec.get("missed_reason") != "timeout":
        bad.append(f"{name}: queue_log says EXITWITHTIMEOUT, record says "
                   f"{rec.get('status')}/{rec.get('missed_reason')}")
    enter = g.ql("ENTERQUEUE")
    if enter and not near(ts(rec.get("queued_at")), float(enter[0][0]) + 0.5, 1.0):
        bad.append(f"{name}: queued_at {rec.get('queued_at')} but queue_log ENTERQUEUE at {enter[0][0]}")
    connects = g.ql("CONNECT")
    if connects:
        holdtime = float(connects[0][5])
        if not near(rec.get("queue_wait_seconds"), holdtime, TOL + 0.5):
            bad.append(f"{name}: queue_wait_seconds {rec.get('queue_wait_seconds')} but queue_log holdtime "
                       f"{holdtime:.0f}")
        if queue_log_agent and rec.get("operator") != connects[0][3]:
            bad.append(f"{name}: operator {rec.get('operator')!r} but queue_log CONNECT names {connects[0][3]!r}")
    completes = g.ql("COMPLETEAGENT") + g.ql("COMPLETECALLER")
    if queue_log_talk and len(completes) == 1 and len(connects) == 1:
        talktime = float(completes[0][6])
        if not near(rec.get("talk_seconds"), talktime, TOL + 0.5):
            bad.append(f"{name}: talk_seconds {rec.get('talk_seconds')} but queue_log talktime {talktime:.0f}")
    # --- AMI agent events -------------------------------------------------------------------
    for e in world.events(placed.linkedid, "AgentConnect")[:1]:
        if not near(rec.get("queue_wait_seconds"), float(e["HoldTime"]), TOL + 0.5):
            bad.append(f"{name}: queue_wait_seconds {rec.get('queue_wait_seconds')} but AgentConnect "
                       f"HoldTime {e['HoldTime']}")

    # --- legs -----------------------------------------------------------------------------
    if legs is not None:
        got = [(leg["operator"], leg["talk_seconds"]) for leg in rec.get("legs", [])
               if leg.get("answered_at") or leg.get("talk_seconds")]
        if [g_[0] for g_ in got] != [e[0] for e in legs]:
            bad.append(f"{name}: answered legs {got}, expected operators {[e[0] for e in legs]}")
        else:
            for (op, t), (_, et) in zip(got, legs):
                if et is not None and not near(t, et, TOL + 0.5):
                    bad.append(f"{name}: leg {op} talk {t}, the scenario gives ~{et}")
    if rec.get("status") == "answered" and rec.get("talk_seconds") is not None \
            and rec.get("hold_seconds") is not None and rec.get("answered_at"):
        total = ts(rec["ended_at"]) - ts(rec["answered_at"])
        if not near(rec["talk_seconds"] + rec["hold_seconds"], total, 0.05):
            bad.append(f"{name}: talk + hold = {rec['talk_seconds'] + rec['hold_seconds']:.3f} "
                       f"but ended - answered = {total:.3f}")
    return bad
