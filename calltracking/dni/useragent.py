"""User agent → device class, OS, browser and bot flag of a DNI visitor session.

The recognition is uap-core's, through PyPI ``ua-parser`` and its native matcher
``ua-parser-rs`` (installed with ``ua-parser[regex]``; imported here by name, so a missing
one fails at import instead of falling back to the pure-Python matcher, 36× slower).
On top of the library, these rules (the values are what the reports group by):

- **bot**: an empty user agent; uap-core's device family ``Spider`` (crawlers, link
  previewers, monitors, archivers); a client that does not introduce itself as a browser
  (the string does not start with ``Mozilla/`` or ``Opera/``, as every browser able to run
  the snippet does: HTTP libraries, command-line tools, apps' HTTP stacks); and the page
  speed testers uap-core files under ordinary browsers (:data:`SPEED_TESTERS`). A bot
  gets device ``"bot"``.
- **OS**: uap-core's OS family renamed by :data:`OS_NAMES` (every Linux distribution is
  ``"Linux"``), ``"iPadOS"`` for iOS on an iPad; no family → ``"other"``.
- **browser**: uap-core's browser family renamed by :data:`BROWSER_NAMES` (a browser's
  mobile and desktop editions are one browser); other families are kept as uap-core
  names them (``"Facebook"``, ``"Vivaldi"``); no family → ``"other"``. Names are cut to
  the columns' 40 characters.
- **device**: ``tablet`` for the library's tablets (device family ``iPad``, ``Kindle``,
  ``Generic Tablet``, or brand ``Generic_Android_Tablet``) and for Android without the
  ``Mobile`` token (Android's rule: phones' browsers send it, tablets' do not); ``mobile``
  for the other phones (iOS, Android, Windows Phone, KaiOS, the library's ``Generic
  Smartphone`` and ``Generic Feature Phone``); ``desktop`` for :data:`DESKTOP_OS`;
  else ``other``.

Cost: :func:`parse` runs for every DNI assignment (on the asyncio server's event loop), so
results are cached per string. Measured with ``bench/dni_useragent.py`` (2 000 distinct
strings of real browsers, one core of the 2-core development machine): a cache miss 18 µs
(a dozen hand-written regexes covering the same names: 45 µs; ua-parser's pure-Python
matcher: 660 µs), a hit 0.05 µs; building the matcher at import: 0.14 s.
"""
from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import ua_parser
from ua_parser.regex import Resolver as _NativeResolver

_parser = ua_parser.Parser(_NativeResolver(ua_parser.load_lazy_builtins()))

#: uap-core OS family → the name reports use (others are kept)
OS_NAMES = {
    "Mac OS X": "macOS", "Mac OS": "macOS", "Chrome OS": "ChromeOS", "Windows Mobile": "Windows Phone",
    **{distro: "Linux" for distro in (
        "Ubuntu", "Kubuntu", "Lubuntu", "Linux Mint", "Debian", "Fedora", "Red Hat", "CentOS", "openSUSE", "SUSE",
        "Arch Linux", "Gentoo", "Slackware", "Mandriva", "Mageia", "PCLinuxOS", "Puppy", "BackTrack")},
}
#: uap-core browser family → the name reports use (others are kept)
BROWSER_NAMES = {
    "Chrome Mobile": "Chrome", "Chrome Mobile iOS": "Chrome", "Chrome Mobile WebView": "Chrome",
    "Chromium": "Chrome", "HeadlessChrome": "Chrome",
    "Mobile Safari": "Safari", "Mobile Safari UI/WKWebView": "Safari",
    "Firefox Mobile": "Firefox", "Firefox iOS": "Firefox", "Firefox Beta": "Firefox", "Firefox Alpha": "Firefox",
    "Edge Mobile": "Edge",
    "Opera Mini": "Opera", "Opera Mobile": "Opera", "Opera GX": "Opera", "Opera Touch": "Opera",
    "Opera Coast": "Opera", "Opera Neon": "Opera",
    "Yandex Browser": "Yandex",
    "IE": "Internet Explorer", "IE Mobile": "Internet Explorer",
    "Android": "Android Browser",
}
#: tools that load pages like a browser to measure them (uap-core names them Chrome)
SPEED_TESTERS = ("Chrome-Lighthouse", "Google-PageSpeed", "PhantomJS/")
#: how every browser able to run the snippet starts its user agent
BROWSER_PREFIXES = ("Mozilla/", "Opera/")
TABLET_FAMILIES = frozenset({"iPad", "Kindle", "Generic Tablet"})
PHONE_FAMILIES = frozenset({"iPhone", "iPod", "Generic Smartphone", "Generic Feature Phone"})
PHONE_OS = frozenset({"iOS", "Android", "Windows Phone", "KaiOS"})
DESKTOP_OS = frozenset({"Windows", "macOS", "Linux", "ChromeOS", "FreeBSD", "OpenBSD", "NetBSD", "Solaris"})
#: the width of visitor_sessions.os and .browser
NAME_MAX = 40


class UserAgent(NamedTuple):
    device: str      # desktop | mobile | tablet | bot | other
    os: str
    browser: str
    bot: bool


def _family(part, names: dict) -> str:
    family = part.family if part is not None else ""
    if not family or family == "Other":
        return "other"
    return names.get(family, family)[:NAME_MAX]


@lru_cache(maxsize=4096)
def parse(ua: str) -> UserAgent:
    """The visitor's device class, OS, browser and bot flag (the rules: see the module doc)."""
    ua = (ua or "")[:500]
    if not ua.strip():
        return UserAgent("bot", "other", "other", True)
    r = _parser.parse(ua)
    family = r.device.family if r.device is not None else ""
    os_name = _family(r.os, OS_NAMES)
    if os_name == "iOS" and family == "iPad":
        os_name = "iPadOS"
    browser = _family(r.user_agent, BROWSER_NAMES)
    if (family == "Spider" or not ua.startswith(BROWSER_PREFIXES)
            or any(tool in ua for tool in SPEED_TESTERS)):
        return UserAgent("bot", os_name, browser, True)
    if (family in TABLET_FAMILIES or (r.device is not None and r.device.brand == "Generic_Android_Tablet")
            or (os_name == "Android" and "Mobile" not in ua)):
        device = "tablet"
    elif family in PHONE_FAMILIES or os_name in PHONE_OS:
        device = "mobile"
    elif os_name in DESKTOP_OS:
        device = "desktop"
    else:
        device = "other"
    return UserAgent(device, os_name, browser, False)
