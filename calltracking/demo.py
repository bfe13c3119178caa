"""`calltracking demo`: a realistic demo project in its own SQLite file.

Sources, campaigns, static numbers, a website number pool with visitor
sessions, four operators, 30 days of calls with plausible distributions (busy
weekday late mornings, quiet nights and weekends, ~12 % missed, repeat
callers, transfers), ad spend, coloured predefined tags, two target rules (talk ≥ 60 s; the first
call from Google Ads) applied to every call, website callback requests (reached and
unreached, :mod:`calltracking.callbacks.demo`), and short recordings made on the fly.
The last day is today: calls run up to ``now`` (every one finished by then), so the
dashboard shows today's figures. Deterministic for a given seed and ``now``.
:func:`analyse_recordings` runs the recordings job over the seeded files, so the
operators report's talk figures are filled from the start.
"""
from __future__ import annotations

import datetime as dt
import os
import random
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from calltracking.callbacks import demo as callback_demo
from calltracking.enums import LegOutcome
from calltracking.interpret import record
from calltracking.jobs import recordings
from calltracking.qualify import apply as qualify_apply
from calltracking.qualify import settings as qualify_settings
from calltracking.whisper import settings as whisper_settings
from calltracking.models import (
    AdSpend, Call, CallLeg, Campaign, NumberPool, Operator, PoolReservation, Project, Source, Tag,
    TrackingNumber, VisitorSession,
)

UTC = dt.timezone.utc
TZ = "Europe/Moscow"
SOURCES = [
    # name, channel, label, weight, daily spend (RUB), campaigns
    ("Google Ads", "ads", "GA", 22, 4200, ["brand", "generic", "remarketing"]),
    ("Yandex Direct", "ads", "YD", 30, 5100, ["search", "network"]),
    ("Organic search", "search", "SEO", 18, 0, []),
    ("Billboard Tverskaya", "offline", "BB", 8, 1500, []),
    ("Newspaper Vedomosti", "offline", "NP", 5, 900, []),
    ("Instagram", "social", "IG", 9, 1200, ["stories"]),
    ("Website (dynamic)", "referral", "WEB", 8, 0, []),
]
OPERATORS = [("Anna", "PJSIP/101", "101"), ("Boris", "PJSIP/102", "102"),
             ("Vera", "PJSIP/103", "103"), ("Grigory", "PJSIP/104", "104")]
KEYWORDS = ["купить диван", "диван недорого", "угловой диван", "sofa moscow", "диван кровать",
            "мебель москва", "кожаный диван"]
DEVICES = [("mobile", "Android", "Chrome", 45), ("mobile", "iOS", "Safari", 25),
           ("desktop", "Windows", "Chrome", 18), ("desktop", "macOS", "Safari", 7),
           ("tablet", "iOS", "Safari", 5)]
#: the predefined tags: name, colour, description (all offered in the call card's picker)
TAGS = [("deal", "#43a047", "The caller bought or ordered"),
        ("price question", "#1e88e5", "Asked about prices"),
        ("delivery", "#fb8c00", "Asked about delivery"),
        ("spam", "#e53935", "Robocall or advertising"),
        ("new client", "#8e24aa", "First call from Google Ads (a target rule)")]
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 3, 6, 12, 20, 26, 28, 25, 22, 24, 26, 24, 20, 14, 9, 6, 4, 2, 1]


def _pick(rng, items, weights):
    return rng.choices(items, weights=weights, k=1)[0]


def seed(session: Session, days: int = 30, per_day: int = 90, seed_value: int = 7,
         recordings_dir: str | None = None, now: dt.datetime | None = None, pbx_id: str = "demo") -> dict:
    rng = random.Random(seed_value)
    tz = ZoneInfo(TZ)
    now = now or dt.datetime.now(UTC)
    project = Project(key="demo", name="Demo Furniture", timezone=TZ, default_queue="sales",
                      default_number="+74950000000", allowed_origins="http://127.0.0.1:8000")
    session.add(project)
    session.flush()

    sources, campaigns, numbers = [], {}, {}
    for i, (name, channel, label, weight, spend, camps) in enumerate(SOURCES):
        s = Source(project_id=project.id, name=name, channel=channel, short_label=label)
        session.add(s)
        session.flush()
        sources.append((s, weight, spend))
        campaigns[s.id] = []
        for c in camps:
            camp = Campaign(project_id=project.id, source_id=s.id, name=c, utm_campaign=c)
            session.add(camp)
            session.flush()
            campaigns[s.id].append(camp)
        if name != "Website (dynamic)":
            tn = TrackingNumber(project_id=project.id, number=f"+7495000{1001 + i:04d}", kind="static",
                                source_id=s.id, campaign_id=campaigns[s.id][0].id if campaigns[s.id] else None)
            session.add(tn)
            numbers[s.id] = tn
    # The operators hear each call's source and campaign before it is connected (docs/whisper.md);
    # the billboard's whisper has a text of its own.
    whisper_settings.set_project(session, project, enabled=True)
    billboard = next(s for s, _, _ in sources if s.name.startswith("Billboard"))
    whisper_settings.set_source(session, billboard, text="Billboard on Tverskaya")
    web_source = next(s for s, _, _ in sources if s.name == "Website (dynamic)")
    pool = NumberPool(project_id=project.id, name="website", source_id=web_source.id, hold_seconds=900,
                      fallback_number="+74950000000")
    session.add(pool)
    session.flush()
    pool_numbers = []
    for k in range(20):
        tn = TrackingNumber(project_id=project.id, number=f"+7495000{2001 + k:04d}", kind="pool",
                            pool_id=pool.id, source_id=web_source.id)
        session.add(tn)
        pool_numbers.append(tn)
    ops = []
    for name, iface, ext in OPERATORS:
        op = Operator(name=name, interface=iface, member_name=name, extension=ext, queues="sales,support")
        session.add(op)
        ops.append(op)
    tags = [Tag(project_id=project.id, name=n, color=c, description=d, offered=True) for n, c, d in TAGS]
    session.add_all(tags)
    session.flush()
    google = next(s for s, _w, _sp in sources if s.name == "Google Ads")
    qualify_settings.save_rule(session, project, name="Talk 60 s or more", position=10, min_talk_seconds=60)
    qualify_settings.save_rule(session, project, name="First call from Google Ads", position=20,
                               first_call_only=True, source_id=google.id,
                               add_tag_ids=[t.id for t in tags if t.name == "new client"])

    callers: list[str] = []
    all_calls: list[Call] = []
    start_day = (now.astimezone(tz) - dt.timedelta(days=days - 1)).date()   # the last day is today
    n_calls = 0
    linked = 1795000000
    for d in range(days):
        day = start_day + dt.timedelta(days=d)
        weekend = day.isoweekday() >= 6
        count = max(5, int(rng.gauss(per_day * (0.45 if weekend else 1.0), per_day * 0.12)))
        for s, _w, spend in sources:
            if spend:
                session.add(AdSpend(project_id=project.id, source_id=s.id, day=day,
                                    amount=Decimal(spend * rng.uniform(0.8, 1.2)).quantize(Decimal("0.01"))))
        for _ in range(count):
            hour = _pick(rng, range(24), HOUR_WEIGHTS)
            local = dt.datetime.combine(day, dt.time(hour, rng.randrange(60), rng.randrange(60)), tz)
            started = local.astimezone(UTC) + dt.timedelta(microseconds=rng.randrange(10**6))
            if started > now - dt.timedelta(minutes=5):
                continue
            src, _w, _sp = _pick(rng, sources, [w for _, w, _ in sources])
            if callers and rng.random() < 0.22:
                caller = rng.choice(callers)
            else:
                caller = f"+7916{rng.randrange(10**7):07d}"
                callers.append(caller)
            linked += rng.randrange(3, 40)
            call = Call(pbx_id=pbx_id, linkedid=f"{linked}.{n_calls * 4}", project_id=project.id,
                        caller_number=caller, caller_name=rng.choice(["", "Ivan", "Olga", "ООО Ромашка"]),
                        source_id=src.id, queue="sales", started_at=started, via_agi=True)
            _outcome(rng, call, ops, started, hour)
            if call.ended_at > now:     # still going on at ``now``: not in the demo
                continue
            all_calls.append(call)
            camps = campaigns[src.id]
            if camps:
                call.campaign_id = rng.choice(camps).id
            if src.id == web_source.id:
                tn = rng.choice(pool_numbers)
                dev = _pick(rng, DEVICES, [x[3] for x in DEVICES])
                first_seen = started - dt.timedelta(seconds=rng.randint(20, 1800))
                term = rng.choice(KEYWORDS)
                vs = VisitorSession(project_id=project.id, visitor_id=f"v{n_calls}", ga_client_id=f"GA1.1.{n_calls}.1",
                                    utm_source=rng.choice(["google", "yandex"]), utm_medium="cpc",
                                    utm_campaign="sofa", utm_term=term, keyword=term,
                                    landing_page="https://demo.example/sofas", device=dev[0], os=dev[1],
                                    browser=dev[2], source_id=src.id, first_seen=first_seen, last_seen=started)
                session.add(vs)
                session.flush()
                session.add(PoolReservation(pool_id=pool.id, tracking_number_id=tn.id, session_id=vs.id,
                                            assigned_at=first_seen, last_seen_at=started,
                                            released_at=started + dt.timedelta(seconds=900)))
                call.session_id = vs.id
                call.attribution = "dynamic"
                call.attribution_confidence = Decimal("1.000")
                call.candidate_count = 1
                call.time_to_call_seconds = Decimal((started - first_seen).total_seconds()).quantize(Decimal("0.001"))
                call.did = tn.number
                call.tracking_number_id = tn.id
            else:
                tn = numbers[src.id]
                call.did, call.tracking_number_id, call.attribution = tn.number, tn.id, "static"
                call.attribution_confidence = Decimal("1.000")
            if call.status == "answered" and rng.random() < 0.15:
                call.tags.append(tags[0])
                call.value = Decimal(rng.randrange(15000, 120000))
            if recordings_dir and call.status == "answered" and rng.random() < 0.05:
                call.recording_file = _recording(recordings_dir, call, rng)
            session.add(call)
            n_calls += 1
    seen_callers: set[str] = set()
    for call in sorted(all_calls, key=lambda c: c.started_at):
        call.first_call = call.caller_number not in seen_callers
        seen_callers.add(call.caller_number)
    session.flush()
    callbacks = callback_demo.seed(session, project, [web_source, google], ops, rng, now, days, pbx_id)
    targets = qualify_apply.qualify_project(session, project.id, now).targets
    return {"project": project.key, "calls": n_calls + callbacks["reached"], "sources": len(sources), "operators": len(ops),
            "targets": targets, "callbacks": callbacks}


def analyse_recordings(config, session_factory, now: dt.datetime | None = None) -> int:
    """Run the recordings job (:func:`calltracking.jobs.recordings.process_pending`) until every
    seeded recording is measured and converted; returns how many were processed."""
    later = (now or dt.datetime.now(UTC)) + recordings.SETTLE
    done = 0
    while True:
        ok = recordings.process_pending(config, session_factory, later, limit=200).get("ok", 0)
        done += ok
        if not ok:
            return done


def _outcome(rng, call: Call, ops, started: dt.datetime, hour: int) -> None:
    """A made-up course of the call (queue join, rings, answer, talk and hold, end); the record's
    figures (status, wait, queue wait, talk, hold, ring times) follow from it by the call
    record's rules (:mod:`calltracking.interpret.record`), as for a real call."""
    call.queued_at = started + dt.timedelta(seconds=rng.uniform(0.5, 4))
    night = hour < 8 or hour >= 21
    p_missed = 0.5 if night else 0.1
    legs_ops = rng.sample(ops, k=rng.choice([1, 1, 1, 2]))
    t = call.queued_at
    if rng.random() < p_missed:
        reason = _pick(rng, ["abandoned", "timeout", "no_operators"], [70, 20, 10])
        wait = rng.uniform(5, 90)
        call.ended_at = started + dt.timedelta(seconds=wait)
        call.missed_reason = reason
        _timings(call)
        if reason != "no_operators":
            for i, op in enumerate(legs_ops):
                ring = rng.uniform(3, 15)
                call.legs.append(_leg(call, op, f"{call.linkedid}-{i}", t, t + dt.timedelta(seconds=ring)))
                t += dt.timedelta(seconds=ring + 1)
        return
    for i, op in enumerate(legs_ops[:-1]):
        ring = rng.uniform(3, 12)
        call.legs.append(_leg(call, op, f"{call.linkedid}-{i}", t, t + dt.timedelta(seconds=ring)))
        t += dt.timedelta(seconds=ring + 1)
    op = legs_ops[-1]
    ring = rng.uniform(1, 12)
    answered = t + dt.timedelta(seconds=ring)
    talk = max(8.0, rng.lognormvariate(4.6, 0.8))
    hold = rng.choice([0.0, 0.0, 0.0, rng.uniform(5, 40)])
    ended = answered + dt.timedelta(seconds=talk + hold)
    call.answered_at, call.ended_at = answered, ended
    call.operator_id, call.operator_name = op.id, op.name
    _timings(call, talk)
    call.legs.append(_leg(call, op, f"{call.linkedid}-x", t, ended, answered, talk))


def _seconds(x) -> Decimal | None:
    """Seconds as stored (3 decimals)."""
    return None if x is None else Decimal(f"{x:.3f}")


def _timings(call: Call, talk: float = 0.0) -> None:
    """The call's status and durations from its times (``talk``: the seconds it talked)."""
    answered, ended = call.answered_at, call.ended_at
    call.status = record.status(answered, ended)
    call.wait_seconds = _seconds(record.wait_seconds(call.started_at, answered, ended))
    call.queue_wait_seconds = _seconds(record.queue_wait_seconds(call.queued_at, answered))
    talked = record.talk_seconds(talk, answered, ended)
    call.talk_seconds = _seconds(talked)
    call.hold_seconds = _seconds(record.hold_seconds(answered, ended, talked))


def _leg(call: Call, op, uniqueid: str, rung: dt.datetime, ended: dt.datetime,
         answered: dt.datetime | None = None, talk: float = 0.0) -> CallLeg:
    """A queue leg rung at ``rung``: answered at ``answered`` and talking ``talk`` seconds, or
    given up unanswered at ``ended``."""
    return CallLeg(operator_id=op.id, operator_name=op.name, interface=op.interface, uniqueid=uniqueid,
                   queue=call.queue, rung_at=rung, answered_at=answered, ended_at=ended,
                   outcome=LegOutcome.ANSWERED if answered is not None else LegOutcome.NO_ANSWER,
                   ring_seconds=_seconds(record.ring_seconds(rung, answered, ended)),
                   talk_seconds=_seconds(record.leg_talk_seconds(talk, answered)))


def _recording(directory: str, call: Call, rng) -> str:
    """A short stereo WAV: caller tone on the left, operator tone on the right, with pauses."""
    from pydub import AudioSegment
    from pydub.generators import Sine

    os.makedirs(directory, exist_ok=True)
    left = AudioSegment.silent(0, frame_rate=8000)
    right = AudioSegment.silent(0, frame_rate=8000)
    for _ in range(rng.randint(2, 4)):
        a, b = rng.randint(300, 900), rng.randint(300, 900)
        left += Sine(440).to_audio_segment(a, volume=-12).set_frame_rate(8000) + AudioSegment.silent(b, 8000)
        right += AudioSegment.silent(a, 8000) + Sine(660).to_audio_segment(b, volume=-12).set_frame_rate(8000)
    stereo = AudioSegment.from_mono_audiosegments(left.set_channels(1), right.set_channels(1))
    name = f"demo-{call.linkedid}.wav"
    stereo.export(os.path.join(directory, name), format="wav")
    return os.path.join(directory, name)
