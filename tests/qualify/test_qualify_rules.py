"""The target rules as a pure function: every condition, the order, tags building on tags, and
the time window in the project's zone across midnight and the DST changes."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from calltracking.qualify.rules import CallFacts, Rule, matches, qualify

MSK = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")          # has DST (Moscow has not)
UTC = dt.timezone.utc


def facts(**kw) -> CallFacts:
    base = dict(local_start=dt.datetime(2026, 3, 4, 12, 0, tzinfo=MSK), talk_seconds=75.0, first_call=True,
                source_id=1, campaign_id=10, queue="sales", tag_ids=frozenset({100}))
    base.update(kw)
    return CallFacts(**base)


def test_a_rule_without_conditions_matches_every_call():
    assert matches(Rule(id=1), facts())
    assert matches(Rule(id=1), facts(talk_seconds=None, first_call=None, source_id=None, queue=""))


def test_disabled_rule_never_matches():
    assert not matches(Rule(id=1, enabled=False), facts())


def test_talk_at_least_n_seconds():
    r = Rule(id=1, min_talk_seconds=60)
    assert matches(r, facts(talk_seconds=60.0))
    assert matches(r, facts(talk_seconds=60.5))
    assert not matches(r, facts(talk_seconds=59.999))
    assert not matches(r, facts(talk_seconds=None))       # missed: no talk time
    assert matches(Rule(id=1, min_talk_seconds=0), facts(talk_seconds=0.0))


def test_first_call_only():
    r = Rule(id=1, first_call_only=True)
    assert matches(r, facts(first_call=True))
    assert not matches(r, facts(first_call=False))
    assert not matches(r, facts(first_call=None))          # unknown is not a first call


def test_source_campaign_queue_and_tag():
    assert matches(Rule(id=1, source_id=1), facts())
    assert not matches(Rule(id=1, source_id=2), facts())
    assert not matches(Rule(id=1, source_id=1), facts(source_id=None))
    assert matches(Rule(id=1, campaign_id=10), facts())
    assert not matches(Rule(id=1, campaign_id=11), facts())
    assert matches(Rule(id=1, queue="sales"), facts())
    assert not matches(Rule(id=1, queue="sales"), facts(queue="support"))
    assert not matches(Rule(id=1, queue="sales"), facts(queue="Sales"))
    assert matches(Rule(id=1, tag_id=100), facts())
    assert not matches(Rule(id=1, tag_id=101), facts())


def test_conditions_are_and_ed():
    r = Rule(id=1, min_talk_seconds=60, first_call_only=True, source_id=1, queue="sales")
    assert matches(r, facts())
    for broken in (dict(talk_seconds=10.0), dict(first_call=False), dict(source_id=2), dict(queue="x")):
        assert not matches(r, facts(**broken)), broken


def test_weekdays_and_a_daytime_window():
    wed_noon = dt.datetime(2026, 3, 4, 12, 0, tzinfo=MSK)          # a Wednesday
    r = Rule(id=1, weekdays="12345", time_from=dt.time(9), time_to=dt.time(18))
    assert matches(r, facts(local_start=wed_noon))
    assert not matches(r, facts(local_start=wed_noon.replace(hour=18)))      # end excluded
    assert matches(r, facts(local_start=wed_noon.replace(hour=9)))            # start included
    assert not matches(r, facts(local_start=wed_noon + dt.timedelta(days=3)))  # Saturday
    assert not matches(Rule(id=1, weekdays="67"), facts(local_start=wed_noon))


def test_window_across_midnight_belongs_to_the_day_it_started():
    r = Rule(id=1, weekdays="5", time_from=dt.time(22), time_to=dt.time(6))    # Friday night
    fri_23 = dt.datetime(2026, 3, 6, 23, 0, tzinfo=MSK)
    assert matches(r, facts(local_start=fri_23))
    assert matches(r, facts(local_start=fri_23 + dt.timedelta(hours=3)))       # Saturday 02:00
    assert not matches(r, facts(local_start=fri_23 + dt.timedelta(hours=7)))   # Saturday 06:00
    assert not matches(r, facts(local_start=fri_23 - dt.timedelta(days=1, hours=21)))  # Friday 02:00
    assert not matches(r, facts(local_start=fri_23 + dt.timedelta(days=1)))    # Saturday 23:00


def test_window_is_read_in_the_project_zone_across_dst():
    """Berlin: 29 March 2026 02:00 → 03:00 (spring), 25 October 2026 03:00 → 02:00 (autumn).
    A 09:00–10:00 window follows local time, so the UTC hour it covers moves by one."""
    r = Rule(id=1, time_from=dt.time(9), time_to=dt.time(10))

    def at(utc):
        return facts(local_start=utc.astimezone(BERLIN))
    assert matches(r, at(dt.datetime(2026, 3, 28, 8, 30, tzinfo=UTC)))     # CET: 09:30 local
    assert not matches(r, at(dt.datetime(2026, 3, 30, 8, 30, tzinfo=UTC)))  # CEST: 10:30 local
    assert matches(r, at(dt.datetime(2026, 3, 30, 7, 30, tzinfo=UTC)))     # CEST: 09:30 local
    # the autumn night: 02:30 local happens twice; a 02:00–03:00 window holds both
    night = Rule(id=2, time_from=dt.time(2), time_to=dt.time(3), weekdays="7")
    assert matches(night, at(dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)))    # 02:30 CEST
    assert matches(night, at(dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC)))    # 02:30 CET
    assert not matches(night, at(dt.datetime(2026, 10, 25, 2, 30, tzinfo=UTC)))  # 03:30 CET
    # the spring night: 02:00–03:00 local never happens: 00:59 UTC is 01:59 CET, 01:00 UTC 03:00 CEST
    assert not matches(night, at(dt.datetime(2026, 3, 29, 0, 59, tzinfo=UTC)))
    assert not matches(night, at(dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)))
    wide = Rule(id=3, time_from=dt.time(1, 30), time_to=dt.time(3, 30), weekdays="7")
    assert matches(wide, at(dt.datetime(2026, 3, 29, 1, 15, tzinfo=UTC)))      # 03:15 CEST


def test_verdict_first_target_rule_and_every_matching_rule_adds_its_tags():
    rules = [Rule(id=5, position=20, min_talk_seconds=60, mark_target=True, add_tag_ids=(200,)),
             Rule(id=3, position=10, source_id=1, mark_target=False, add_tag_ids=(201,)),
             Rule(id=9, position=30, mark_target=True, add_tag_ids=(100, 202)),
             Rule(id=7, position=5, source_id=99, mark_target=True, add_tag_ids=(203,))]
    v = qualify(rules, facts())
    assert v.is_target and v.rule_id == 5
    assert v.matched == (3, 5, 9)
    assert v.add_tag_ids == (201, 200, 202)       # 100 is the call's own already
    short = qualify(rules, facts(talk_seconds=5.0))
    assert short.is_target and short.rule_id == 9
    none = qualify([r for r in rules if r.id in (3, 7)], facts())
    assert not none.is_target and none.rule_id is None and none.add_tag_ids == (201,)
    assert qualify([], facts()) == qualify([], facts(talk_seconds=None))
    assert not qualify([], facts()).is_target


def test_a_rule_may_build_on_a_tag_an_earlier_rule_added():
    tagger = Rule(id=1, position=1, queue="sales", mark_target=False, add_tag_ids=(300,))
    needs_tag = Rule(id=2, position=2, tag_id=300)
    assert qualify([tagger, needs_tag], facts()).rule_id == 2
    # the order matters: a rule before the tagger does not see its tag
    assert not qualify([Rule(id=2, position=0, tag_id=300), tagger], facts()).is_target
