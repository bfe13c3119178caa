"""Every page of the web UI, found by following links: the demo data with a user of each role,
and a crawler over Flask's test client (one URL per route and settings list, so a crawl stays
short).

- :func:`seed_demo` the demo project plus ``admin``, ``super``, ``oper`` (password
  :data:`support.web.PASSWORD`), in English or Russian;
- :func:`crawl` the HTML pages a signed-in test client reaches from the start pages.
"""
from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from sqlalchemy import select

from calltracking import entities as svc
from calltracking.demo import seed
from calltracking.models import Operator
from support.web import PASSWORD

START = ("/", "/calls", "/missed", "/reports", "/dashboard", "/screenpop", "/settings/", "/account",
         "/integrations/", "/settings/audit")
#: never followed: downloads, streams, JSON, the API, recordings, logging out
SKIP = re.compile(r"(\.csv|\.json|/recording|/stream|/api/|/logout|/metrics|/dni\.js|/static/)")
_HREF = re.compile(r'href="([^"#]+)"')


def seed_demo(session_factory, tmp_path, language: str = "en", days: int = 30, per_day: int = 40) -> None:
    """The demo project and one user of each role (the operator linked to the demo's first)."""
    with session_factory() as s:
        seed(s, days=days, per_day=per_day, recordings_dir=str(tmp_path / "rec"))
        op = s.scalars(select(Operator).order_by(Operator.id)).first()
        svc.add_user(s, "admin", PASSWORD, "admin", language=language)
        svc.add_user(s, "super", PASSWORD, "supervisor", language=language)
        svc.add_user(s, "oper", PASSWORD, "operator", operator=op, language=language)
        s.commit()


def route_key(app, path: str) -> str:
    """What makes two URLs "the same page": the route, and the settings list or the report."""
    adapter = app.url_map.bind("localhost")
    try:
        endpoint, args = adapter.match(urlsplit(path).path)
    except Exception:  # a 404 or a redirect: the path itself
        return path
    extra = args.get("slug") or args.get("name") or args.get("dim") or ""
    return f"{endpoint}:{extra}"


def crawl(app, client, limit: int = 200) -> dict:
    """{path: html} of the pages reachable from :data:`START` (one per :func:`route_key`)."""
    seen_keys: set = set()
    pages: dict = {}
    todo = list(START)
    while todo and len(pages) < limit:
        path = todo.pop(0)
        key = route_key(app, path)
        if key in seen_keys or SKIP.search(path):
            continue
        seen_keys.add(key)
        r = client.get(path)
        if r.status_code != 200 or not r.mimetype == "text/html":
            continue
        html = r.get_data(as_text=True)
        pages[path] = html
        for href in _HREF.findall(html):
            href = href.replace("&amp;", "&")
            url = urlsplit(urljoin("http://localhost" + path, href))
            if url.netloc != "localhost":
                continue
            todo.append(url.path + ("?" + url.query if url.query else ""))
    return pages
