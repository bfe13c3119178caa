"""User agents of real browsers and bots → (device, OS, browser, bot) (calltracking.dni.useragent, no database)."""
from __future__ import annotations

import pytest

from calltracking.dni import useragent

CHROME_LINUX = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/120.0.0.0 Safari/537.36")

BROWSERS = [
    (CHROME_LINUX, ("desktop", "Linux", "Chrome")),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0.0.0 Safari/537.36", ("desktop", "Windows", "Chrome")),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.2 Mobile/15E148 Safari/604.1", ("mobile", "iOS", "Safari")),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1", ("mobile", "iOS", "Chrome")),
    ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/16.6 Mobile/15E148 Safari/604.1", ("tablet", "iPadOS", "Safari")),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.1 Safari/605.1.15", ("desktop", "macOS", "Safari")),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0.0.0 Mobile Safari/537.36", ("mobile", "Android", "Chrome")),
    # Android without the Mobile token: a tablet (Samsung Galaxy Tab A8).
    ("Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/119.0.0.0 Safari/537.36", ("tablet", "Android", "Chrome")),
    ("Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/120.3.1 "
     "like Chrome/120.0.6099.230 Safari/537.36", ("tablet", "Android", "Amazon Silk")),
    ("Mozilla/5.0 (Android 14; Tablet; rv:121.0) Gecko/121.0 Firefox/121.0", ("tablet", "Android", "Firefox")),
    ("Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0", ("mobile", "Android", "Firefox")),
    ("Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 "
     "Chrome/115.0.0.0 Mobile Safari/537.36", ("mobile", "Android", "Samsung Internet")),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0", ("desktop", "Windows", "Edge")),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/118.0.0.0 YaBrowser/23.11.0.0 Safari/537.36", ("desktop", "Windows", "Yandex")),
    ("Mozilla/5.0 (Linux; arm_64; Android 13; SM-A525F) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/118.0.5993.111 YaBrowser/23.11.3.111.00 SA/3 Mobile Safari/537.36", ("mobile", "Android", "Yandex")),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.1 YaBrowser/23.11.5.371.10 SA/3 Mobile/15E148 Safari/604.1", ("mobile", "iOS", "Yandex")),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.1; rv:121.0) Gecko/20100101 Firefox/121.0",
     ("desktop", "macOS", "Firefox")),
    ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
     ("desktop", "Linux", "Firefox")),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0", ("desktop", "Windows", "Opera")),
    ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0.0.0 Safari/537.36", ("desktop", "ChromeOS", "Chrome")),
    ("Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
     ("desktop", "Windows", "Internet Explorer")),
    # Facebook's in-app browser: uap-core's name is kept.
    ("Mozilla/5.0 (Linux; Android 12; SM-G991B) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
     "Chrome/120.0.6099.144 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/444.0.0.0.110;]",
     ("mobile", "Android", "Facebook")),
    # The browser the browser tests drive (Playwright's headless Chromium) is a visitor.
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 "
     "Safari/537.36", ("desktop", "Linux", "Chrome")),
]

BOTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.71 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "Mozilla/5.0 (compatible; YandexMetrika/2.0; +http://yandex.com/bots)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
    # HTTP libraries and tools: not introduced as a browser.
    "curl/8.5.0", "python-requests/2.31.0", "Go-http-client/2.0", "okhttp/4.12.0",
    "Dalvik/2.1.0 (Linux; U; Android 11; SM-A505F Build/RP1A.200720.012)",
    # Page speed testers run the snippet like a browser.
    "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/109.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
    "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
    "", "   ",
]


@pytest.mark.parametrize("ua,expected", BROWSERS)
def test_browsers(ua, expected):
    parsed = useragent.parse(ua)
    assert (parsed.device, parsed.os, parsed.browser) == expected
    assert parsed.bot is False


@pytest.mark.parametrize("ua", BOTS)
def test_bots(ua):
    parsed = useragent.parse(ua)
    assert parsed.bot is True and parsed.device == "bot"


def test_names_fit_the_columns():
    """A family taken from the string itself (an HbbTV maker's name here) is cut to the columns' width."""
    parsed = useragent.parse("Mozilla/5.0 (X11) HbbTV/1.2.1 (; " + "Q" * 60 + "; model 2015;)")
    assert parsed.os == "Q" * 40 and parsed.browser == "HbbTV"


def test_unknown_is_other():
    parsed = useragent.parse("Mozilla/5.0 (Unknown) Whatever")
    assert parsed == useragent.UserAgent("other", "other", "other", False)
