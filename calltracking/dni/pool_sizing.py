"""Pool sizing: measured traffic of each number pool and the pool size it needs.

Measured over a window (default the last 7 days), per pool:

- **sessions per hour** — numbers handed out per clock hour (mean and peak);
- **occupancy** — how long a number stays with a visitor: from assignment to
  release (visit + hold time);
- **time to call** — ``call start − visitor session start`` of the pool's
  dynamic calls (p50/p90/p99), and the *delay after activity*
  (``call start − the visitor's last heartbeat``, 0 when the visitor was still
  on the site), which is what decides whether a number was reused;
- **collision rate** — share of the pool's calls with more than one candidate
  session in the hold window (the attribution was a guess);
- **exhaustion** — ``NumberPool.exhausted_count`` (visitors who got the fallback).

The recommendation uses the peak rate ``λ`` (the busiest 15 minutes, or the
busiest hour if higher): offered load ``A = λ · occupancy``
(numbers busy on average); the chance that a visitor finds the pool empty is
Erlang's B formula ``B(A, N)``. A released number goes to the back of the
least-recently-released queue, so it is handed out again after about
``R(N) = (N − A) / λ``; a call that comes later than ``hold + R(N)`` after the
visitor's last activity may reach the next visitor. The estimated collision
rate is ``B(A, N) + share of delays in (hold + R(N), 2 · hold]`` (later calls
are outside the attribution window whatever the size: raise ``hold_seconds``
for those). The recommended size is the smallest ``N`` whose estimate is at
most the target (1 % by default).
"""
from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from calltracking.models import Call, NumberPool, PoolReservation, Project, TrackingNumber, utcnow

DEFAULT_TARGET = 0.01
MAX_POOL = 10_000


def erlang_b(load: float, n: int) -> float:
    """Blocking probability of ``n`` servers with offered load ``load`` (stable recursion)."""
    if load <= 0:
        return 0.0
    b = 1.0
    for k in range(1, n + 1):
        b = load * b / (k + load * b)
    return b


def _pct(values: list[float], q: float) -> Optional[float]:
    if not values:
        return None
    s = sorted(values)
    i = min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))
    return round(s[i], 1)


@dataclass
class PoolStats:
    pool: str
    project: str
    pool_id: int
    numbers: int
    hold_seconds: int
    hours: float
    assignments: int = 0
    per_hour: dict = field(default_factory=dict)       # hour start (UTC) → assignments
    peak_quarter: int = 0                              # most assignments in a 15-minute slot
    occupancy_s: float = 0.0
    ttc: list = field(default_factory=list)            # seconds, dynamic calls
    delays: list = field(default_factory=list)         # seconds after the last activity
    calls: int = 0
    collided: int = 0
    exhausted_count: int = 0

    @property
    def mean_per_hour(self) -> float:
        return self.assignments / self.hours if self.hours else 0.0

    @property
    def peak_per_hour(self) -> int:
        return max(self.per_hour.values(), default=0)

    @property
    def peak_rate(self) -> float:
        """Assignments per second in the busiest 15 minutes (bursts count, not just the hour)."""
        return max(self.peak_quarter * 4, self.peak_per_hour) / 3600.0

    @property
    def collision_rate(self) -> Optional[float]:
        return self.collided / self.calls if self.calls else None


def measure(session: Session, pool: NumberPool, since: dt.datetime, until: dt.datetime) -> PoolStats:
    project = session.get(Project, pool.project_id)
    numbers = session.scalar(select(func.count()).select_from(TrackingNumber).where(
        TrackingNumber.pool_id == pool.id, TrackingNumber.active.is_(True)))
    st = PoolStats(pool.name, project.key if project else "", pool.id, numbers, pool.hold_seconds,
                   (until - since).total_seconds() / 3600.0, exhausted_count=pool.exhausted_count)
    hold = dt.timedelta(seconds=pool.hold_seconds)
    rows = session.execute(select(PoolReservation.assigned_at, PoolReservation.released_at,
                                  PoolReservation.last_seen_at, PoolReservation.session_id)
                           .where(PoolReservation.pool_id == pool.id, PoolReservation.assigned_at >= since,
                                  PoolReservation.assigned_at < until)).all()
    hours: Counter = Counter()
    quarters: Counter = Counter()
    occ = []
    last_seen: dict[int, dt.datetime] = {}
    seen_sessions = set()
    for assigned, released, seen, sid in rows:
        end = min(released, seen + hold) if released else seen + hold   # the logical end of the hold
        occ.append(max((end - assigned).total_seconds(), 0.0))
        last_seen[sid] = max(seen, last_seen.get(sid, seen))
        if sid not in seen_sessions:        # a number moved to a visitor's new session is not new traffic
            seen_sessions.add(sid)
            hours[assigned.replace(minute=0, second=0, microsecond=0)] += 1
            quarters[assigned.replace(minute=assigned.minute // 15 * 15, second=0, microsecond=0)] += 1
    st.assignments = sum(hours.values())
    st.per_hour = dict(sorted(hours.items()))
    st.peak_quarter = max(quarters.values(), default=0)
    st.occupancy_s = sum(occ) / len(occ) if occ else 0.0
    calls = session.execute(
        select(Call.started_at, Call.time_to_call_seconds, Call.candidate_count, Call.session_id)
        .join(TrackingNumber, TrackingNumber.id == Call.tracking_number_id)
        .where(TrackingNumber.pool_id == pool.id, Call.started_at >= since, Call.started_at < until,
               Call.attribution == "dynamic")).all()
    for started, ttc, candidates, sid in calls:
        st.calls += 1
        if candidates and candidates > 1:
            st.collided += 1
        if ttc is not None:
            st.ttc.append(float(ttc))
        seen = last_seen.get(sid)
        if seen is not None and started is not None:
            st.delays.append(max((started - seen).total_seconds(), 0.0))
    return st


def estimate(st: PoolStats, n: int) -> dict:
    """Estimated exhaustion, late-call collision and total for a pool of ``n`` numbers."""
    lam = st.peak_rate                                    # assignments per second at the peak
    load = lam * st.occupancy_s
    blocking = erlang_b(load, n)
    reuse = (n - load) / lam if lam > 0 and n > load else 0.0
    hold = st.hold_seconds
    late = [d for d in st.delays if hold + reuse < d <= 2 * hold]
    late_share = len(late) / len(st.delays) if st.delays else 0.0
    return {"load": load, "exhaustion": blocking, "reuse_after_s": reuse, "late_collisions": late_share,
            "collision_rate": blocking + late_share}


def recommend(st: PoolStats, target: float = DEFAULT_TARGET) -> Optional[int]:
    """The smallest pool whose estimated collision rate is at most ``target`` (None: no data)."""
    if st.peak_per_hour == 0 or st.occupancy_s <= 0:
        return None
    n = max(1, int(st.peak_rate * st.occupancy_s))
    while n <= MAX_POOL:
        if estimate(st, n)["collision_rate"] <= target:
            return n
        n += 1
    return MAX_POOL


def report(session: Session, project: Optional[str] = None, days: float = 7.0,
           target: float = DEFAULT_TARGET, now: Optional[dt.datetime] = None) -> list[dict]:
    """One row per active pool (of ``project`` or of all projects)."""
    until = now or utcnow()
    since = until - dt.timedelta(days=days)
    q = select(NumberPool).where(NumberPool.active.is_(True)).order_by(NumberPool.project_id, NumberPool.name)
    if project:
        q = q.join(Project, Project.id == NumberPool.project_id).where(Project.key == project)
    out = []
    for pool in session.scalars(q):
        st = measure(session, pool, since, until)
        rec = recommend(st, target)
        est = estimate(st, rec) if rec else None
        out.append({
            "project": st.project, "pool": st.pool, "numbers": st.numbers, "hold_seconds": st.hold_seconds,
            "sessions": st.assignments, "sessions_per_hour": round(st.mean_per_hour, 2),
            "peak_per_hour": st.peak_per_hour, "peak_15min_per_hour": st.peak_quarter * 4,
            "occupancy_seconds": round(st.occupancy_s, 1),
            "calls": st.calls,
            "ttc_p50": _pct(st.ttc, 0.5), "ttc_p90": _pct(st.ttc, 0.9), "ttc_p99": _pct(st.ttc, 0.99),
            "delay_p99": _pct(st.delays, 0.99),
            "collision_rate": None if st.collision_rate is None else round(st.collision_rate, 4),
            "exhausted_count": st.exhausted_count,
            "recommended": rec, "target": target,
            "estimated_collision_rate": None if est is None else round(est["collision_rate"], 4),
        })
    return out

