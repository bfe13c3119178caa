"""User-agent → (device, OS, browser) and bot detection, without third-party libraries.

Good enough for reports (desktop/mobile/tablet split, the major systems and
browsers); unknown values are ``"other"``. Order matters: Edge, Opera and the
Yandex browser also say "Chrome", Chrome also says "Safari", and so on.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

_BOT = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|mediapartners|adsbot|bingpreview|facebookexternalhit|"
    r"yandex(?:bot|images|metrika|direct|mobilebot|accessibilitybot|screenshotbot)|"
    r"lighthouse|pagespeed|pingdom|uptimerobot|headlesschrome/.*(?:bot|crawl)|"
    r"python-requests|python-urllib|aiohttp|curl/|wget/|go-http-client|java/|okhttp|"
    r"httpclient|libwww|scrapy|phantomjs|petalbot|semrush|ahrefs|mj12|dotbot|"
    r"applebot|duckduckbot|baiduspider|sogou|exabot|ia_archiver|archive\.org",
    re.I,
)

_OS = (
    ("iPadOS", re.compile(r"\biPad\b")),
    ("iOS", re.compile(r"\b(?:iPhone|iPod)\b")),
    ("Android", re.compile(r"\bAndroid\b")),
    ("Windows Phone", re.compile(r"Windows Phone")),
    ("Windows", re.compile(r"Windows NT|Win64|Win32|Windows")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("macOS", re.compile(r"Macintosh|Mac OS X")),
    ("Linux", re.compile(r"Linux|X11")),
)

_BROWSER = (
    ("Yandex", re.compile(r"YaBrowser/|YaSearchBrowser/")),
    ("Edge", re.compile(r"Edg(?:e|A|iOS)?/")),
    ("Opera", re.compile(r"OPR/|Opera|OPiOS/")),
    ("Samsung Internet", re.compile(r"SamsungBrowser/")),
    ("Firefox", re.compile(r"Firefox/|FxiOS/")),
    ("Chrome", re.compile(r"Chrome/|CriOS/|Chromium/")),
    ("Safari", re.compile(r"Safari/|AppleWebKit/.*Mobile/")),
    ("Internet Explorer", re.compile(r"MSIE |Trident/")),
)


class UserAgent(NamedTuple):
    device: str      # desktop | mobile | tablet | bot | other
    os: str
    browser: str
    bot: bool


def is_bot(ua: str) -> bool:
    """True for crawlers, link previewers, monitors and HTTP libraries (and an empty UA)."""
    if not ua or not ua.strip():
        return True
    return _BOT.search(ua) is not None


@lru_cache(maxsize=4096)
def parse(ua: str) -> UserAgent:
    ua = (ua or "")[:500]
    bot = is_bot(ua)
    os_name = next((name for name, rx in _OS if rx.search(ua)), "other")
    browser = next((name for name, rx in _BROWSER if rx.search(ua)), "other")
    if bot:
        device = "bot"
    elif os_name == "iPadOS" or re.search(r"Tablet|Nexus (?:7|9|10)|SM-T\d|Kindle|Silk/", ua) or (
            os_name == "Android" and "Mobile" not in ua):
        device = "tablet"
    elif os_name in ("iOS", "Windows Phone") or re.search(r"Mobile|Opera Mini|IEMobile", ua):
        device = "mobile"
    elif os_name in ("Windows", "macOS", "Linux", "ChromeOS"):
        device = "desktop"
    else:
        device = "other"
    return UserAgent(device, os_name, browser, bot)
