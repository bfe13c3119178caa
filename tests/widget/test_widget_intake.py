"""The callback form's number intake (calltracking.callbacks.intake): what the PBX may call back."""
from __future__ import annotations

import pytest

from calltracking.callbacks.intake import MAX_CHARS, REASONS, check, parse_regions

RU_KZ = "RU,KZ"


@pytest.mark.parametrize("raw, e164", [
    ("+7 916 123-45-67", "+79161234567"),            # Russian mobile, international form
    ("8 (916) 123-45-67", "+79161234567"),           # national form with the trunk prefix 8
    ("79161234567", "+79161234567"),                 # 11 digits without the plus, as people type them
    ("9161234567", "+79161234567"),                  # 10 digits: national significant number
    ("00 7 916 1234567", "+79161234567"),            # international prefix 00
    ("+7 916 123\u201345\u201367", "+79161234567"),  # typographic dashes
    ("\u00a0+7 495 123 45 67 ", "+74951234567"),     # Moscow fixed line, no-break spaces around
    ("+7 (701) 123-45-67", "+77011234567"),          # Kazakhstan mobile (country code 7 too)
    ("+7 727 258 12 34", "+77272581234"),            # Almaty fixed line
])
def test_accepted_numbers_come_back_in_e164(raw, e164):
    got = check(raw, default_region="RU", allowed_regions=RU_KZ)
    assert got.ok and got.phone == e164 and got.reason == ""


@pytest.mark.parametrize("raw, reason", [
    ("", "empty"),
    ("   ", "empty"),
    (None, "empty"),
    (79161234567, "empty"),                          # not text (a JSON number): nothing typed
    ("9" * (MAX_CHARS + 1), "too_long"),
    ("+7 916 CALL-NOW", "characters"),               # letters
    ("1-800-FLOWERS", "characters"),                 # a vanity number is not read as digits
    ("+7916123456<script>", "characters"),
    ("+79161234567+", "characters"),                 # a plus anywhere but first
    ("+7 916 12", "invalid"),                        # too short
    ("+7 916 123 45 67 8", "invalid"),               # one digit too many
    ("+7 000 123 45 67", "invalid"),                 # no such range
    ("123", "invalid"),
    ("+1 212 555 1234", "region"),                   # New York: a valid number, not allowed here
    ("+44 7400 123456", "region"),
    ("+7 800 555-35-35", "toll_free"),               # 8-800: an inbound service line
    ("8 800 555 35 35", "toll_free"),
    ("+7 809 505-12-34", "premium_rate"),
    ("+7 803 123 45 67", "premium_rate"),
])
def test_refused_numbers_say_why(raw, reason):
    got = check(raw, default_region="RU", allowed_regions=RU_KZ)
    assert not got.ok and got.phone == "" and got.reason == reason
    assert got.message == REASONS[reason] and got.message


def test_spaces_around_the_number_do_not_count_towards_its_length():
    assert check("+7 916 123 45 67" + " " * 40, allowed_regions=RU_KZ).phone == "+79161234567"


def test_us_numbers_when_the_us_is_allowed():
    """A US site: national forms read with region US; toll-free and premium refused."""
    us = {"default_region": "US", "allowed_regions": "US"}
    assert check("(212) 555-1234", **us).phone == "+12125551234"
    assert check("+1 650 253 0000", **us).phone == "+16502530000"
    assert check("1 800 555 1234", **us).reason == "toll_free"
    assert check("+1 900 555 1234", **us).reason == "premium_rate"
    assert check("+7 916 123 45 67", **us).reason == "region"
    # The same national form means another number with another default region.
    assert check("8 (916) 123-45-67", default_region="US", allowed_regions="US,RU").reason == "invalid"


def test_shared_cost_and_other_service_types_are_refused():
    assert check("+33 884 01 23 45", default_region="FR", allowed_regions="FR").reason == "shared_cost"
    assert check("+49 180 12345", default_region="DE", allowed_regions="DE").reason == "shared_cost"
    assert check("+44 70 1234 5678", default_region="GB", allowed_regions="GB").reason == "not_personal"
    assert check("+44 55 1234 5678", default_region="GB", allowed_regions="GB").reason == "not_personal"
    assert check("+44 56 1234 5678", default_region="GB", allowed_regions="GB").phone == "+445612345678"  # VoIP


def test_no_allowed_regions_means_the_default_region_only():
    assert check("+7 916 123 45 67", default_region="RU", allowed_regions="").ok
    assert check("+7 701 123 45 67", default_region="RU", allowed_regions=None).reason == "region"
    assert check("+7 701 123 45 67", default_region="KZ", allowed_regions=" ").ok


def test_kazakhstan_and_russia_share_a_country_code_but_not_a_region():
    assert check("+7 701 123 45 67", default_region="RU", allowed_regions="RU").reason == "region"
    assert check("+7 916 123 45 67", default_region="RU", allowed_regions="KZ").reason == "region"


def test_parse_regions():
    assert parse_regions("ru, KZ;by") == {"RU", "KZ", "BY"}
    assert parse_regions(["us", "RUS", "", "1x"]) == {"US"}
    assert parse_regions(None) == frozenset() and parse_regions("") == frozenset()
