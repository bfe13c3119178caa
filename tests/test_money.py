"""One rule for amounts typed by people (call card, ad spend): the user's language, errors quote the text."""
from decimal import Decimal

import pytest

from calltracking.money import MoneyError, parse_money
from calltracking.reports.adspend import parse_amount


@pytest.mark.parametrize("typed, locale, want", [
    ("1,234.56", "en", "1234.56"), ("1 234,56", "ru", "1234.56"), ("1\u00a0234,56", "ru", "1234.56"),
    ("1234,5", "en", "1234.50"), ("99.90", "ru", "99.90"), ("1,234", "en", "1234.00"), ("0", "ru", "0.00"),
    ("  12  ", "en", "12.00"), ("1,234,567.80", "en", "1234567.80"), ("1 234 567,8", "ru", "1234567.80"),
])
def test_amounts_in_the_users_language(typed, locale, want):
    assert parse_money(typed, locale) == Decimal(want)
    assert parse_amount(typed, locale) == Decimal(want)      # the ad spend import: the same rule


@pytest.mark.parametrize("typed, locale, message", [
    ("1.234.56", "en", "invalid amount '1.234.56'"), ("abc", "ru", "invalid amount 'abc'"),
    ("-5", "en", "negative amount '-5'"), ("1,234", "ru", "amount '1,234' has more than 2 decimal places"),
    ("1e15", "en", "amount '1e15' is too large"), ("NaN", "en", "'NaN'"),
])
def test_errors_quote_exactly_what_was_typed(typed, locale, message):
    with pytest.raises(MoneyError) as e:
        parse_money(typed, locale)
    assert message in str(e.value)


def test_empty_is_none():
    assert parse_money("", "en") is None and parse_money("   ", "ru") is None and parse_money(None) is None
