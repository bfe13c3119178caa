import pytest

from calltracking.phone import InvalidNumber, normalize


@pytest.mark.parametrize("raw,region,expected", [
    ("8 (495) 123-45-67", "RU", "+74951234567"),
    ("+7 495 123-45-67", "RU", "+74951234567"),
    ("74951234567", "RU", "+74951234567"),      # as trunks send it
    ("84951234567", "RU", "+74951234567"),
    ("8-916-111-00-01", "RU", "+79161110001"),
    ("(650) 253-0000", "US", "+16502530000"),
    ("650.253.0000", "US", "+16502530000"),
    ("+1 650 253 0000", "RU", "+16502530000"),
    ("0044 20 7946 0958", "RU", "+442079460958"),
    ("+49 30 901820", "US", "+4930901820"),
])
def test_valid(raw, region, expected):
    assert normalize(raw, region) == expected


@pytest.mark.parametrize("raw", ["garbage", "123", "", "   ", "+7 495", "8 (495) 123-45-67-89-00",
                                 "<script>", "7" * 80])
def test_invalid_quotes_input(raw):
    with pytest.raises(InvalidNumber) as e:
        normalize(raw, "RU")
    shown = raw.strip()
    if len(shown) <= 64:
        assert repr(shown) in str(e.value)
    else:
        assert "too long" in str(e.value)
