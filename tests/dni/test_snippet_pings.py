"""Where and when the snippet runs: origins normalised and bounded, the once-a-minute throttle,
the ping through the same guard as the other DNI endpoints (both servers), the setup page's
live check (escaped, English and Russian, "Check again" fragment)."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from calltracking import entities as svc
from calltracking.db import session_scope
from calltracking.dni import projects as dni_projects
from calltracking.dni import snippet_pings as sp
from calltracking.models import DniSnippetPing, Project
from support.dni import SNIPPET_ROOT, FastServer, make_project
from support.web import LiveServer, post_json

SITE = "https://shop.example"
PASSWORD = "correct-horse-battery"


def _rows(factory):
    with session_scope(factory) as s:
        return [(r.origin, r.last_path, r.version, r.pings)
                for r in s.scalars(select(DniSnippetPing).order_by(DniSnippetPing.origin))]


def _ping(url, header=SITE, **body):
    """POST /api/dni/ping as the snippet does; ``header``: the Origin header (None: none)."""
    body = {"project": "acme", "snippet": sp.SNIPPET_VERSION, "page": "/landing", **body}
    return post_json(url + "/api/dni/ping", body, {"Origin": header} if header else {})


@pytest.mark.parametrize("text, expected", [
    ("https://Shop.Example", "https://shop.example"),
    ("HTTPS://WWW.SHOP.EXAMPLE:443/", "https://www.shop.example"),
    ("http://shop.example:80", "http://shop.example"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("http://[::1]:80", "http://[::1]"),
    ("https://пример.рф", "https://xn--e1afmkfd.xn--p1ai"),
    ("null", None), ("", None), (None, None), (42, None),
    ("javascript:alert(1)", None), ("file:///etc/passwd", None), ("ftp://shop.example", None),
    ("https://shop.example/landing", None), ("https://shop.example?q=1", None),
    ("https://user:pw@shop.example", None), ('https://x"<y>.example', None),
    ("https://shop.example:99999", None), ("https://shop.example\r\nSet-Cookie: a=b", None),
    ("https://" + "a" * 300 + ".example", None),
])
def test_origins_are_normalised_or_refused(text, expected):
    assert sp.normalise_origin(text) == expected


def test_only_the_path_is_kept_and_the_version_is_checked():
    assert sp.clean_path("https://shop.example/landing?gclid=secret#top") == "/landing"
    assert sp.clean_path("/a\x00b\x1f?email=a@b") == "/ab"
    assert sp.clean_path("landing") == "/landing" and sp.clean_path(None) == "/" and sp.clean_path("") == "/"
    assert len(sp.clean_path("/" + "x" * 5000)) == 500
    assert sp.clean_version("2") == "2" and sp.clean_version("1.4.0-rc1") == "1.4.0-rc1"
    assert sp.clean_version("<b>") == "" and sp.clean_version("9" * 21) == "" and sp.clean_version(2) == ""


def test_two_pings_in_a_row_are_one_write_and_the_held_back_ones_are_counted():
    t = sp.PingThrottle(interval=60.0)
    assert t.note("k", 1000.0) == 1                 # the first ping writes
    assert t.note("k", 1001.0) == 0                 # the next, within the minute, does not
    assert t.note("k", 1059.9) == 0
    assert t.note("other", 1002.0) == 1             # keys are independent
    assert t.note("k", 1060.0) == 3                 # a minute later: this one and the two held back
    assert t.note("k", 1061.0) == 0
    t.failed("k", 3)                                # that write failed: the next ping writes all of it
    assert t.note("k", 1062.0) == 5


def test_the_throttle_is_bounded():
    t = sp.PingThrottle(interval=60.0, max_keys=3)
    for i in range(10):
        assert t.note(f"k{i}", 1000.0) == 1
    assert len(t) == 3
    assert t.note("k9", 1001.0) == 0 and t.note("k0", 1001.0) == 1       # k0 was dropped, k9 kept


def test_the_snippet_says_the_version_the_core_expects():
    assert f'var VERSION = "{sp.SNIPPET_VERSION}";' in SNIPPET_ROOT.read_text()


@pytest.mark.db
def test_record_counts_and_keeps_at_most_n_origins(session_factory):
    ids = make_project(session_factory)
    engine = session_factory.kw["bind"]
    t0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
    sp.record(engine, sp.Ping(ids["project"], SITE, "/a", "1"), 1, now=t0)
    sp.record(engine, sp.Ping(ids["project"], SITE, "/b", "2"), 4, now=t0 + dt.timedelta(minutes=1))
    assert _rows(session_factory) == [(SITE, "/b", "2", 5)]
    for i in range(5):
        sp.record(engine, sp.Ping(ids["project"], f"https://s{i}.example", "/", "2"), 1,
                  now=t0 + dt.timedelta(minutes=2 + i), max_origins=3)
    assert [r[0] for r in _rows(session_factory)] == ["https://s2.example", "https://s3.example", "https://s4.example"]
    with session_scope(session_factory) as s:
        sites = sp.sites(s, ids["project"], now=t0 + dt.timedelta(days=2))
        assert [x.origin for x in sites] == ["https://s4.example", "https://s3.example", "https://s2.example"]
        assert sites[0].url == "https://s4.example/" and sites[0].stale and not sites[0].outdated
        assert sp.sites(s, ids["project"], now=t0 + dt.timedelta(minutes=7))[0].stale is False


@pytest.mark.db
def test_ping_through_the_guard(db_url, session_factory):
    make_project(session_factory, origins=f"{SITE} http://127.0.0.1:9")
    srv = LiveServer(db_url, session_factory, DNI_RATE_BURST=8, DNI_RATE_PER_MINUTE=1)
    try:
        st, body, h = _ping(srv.url, header="https://Shop.Example", page="/landing?gclid=secret")
        assert (st, body) == (204, None) and h["Access-Control-Allow-Origin"] == "https://Shop.Example"
        st, body, _ = _ping(srv.url, page="/other")                 # the same minute: counted, not written
        assert st == 204
        assert _rows(session_factory) == [(SITE, "/landing", "2", 1)]
        evil = '<script>alert(1)</script>'
        st, body, _ = _ping(srv.url, header=None, project="no-such" + "x" * 10)
        assert st == 404 and body == {"error": "unknown project"}            # nothing reflected
        st, body, _ = _ping(srv.url, header="https://evil.example", page=evil)
        assert st == 403 and evil not in str(body)
        st, body, _ = _ping(srv.url, header="null", page=evil)
        assert st == 403
        st, body, _ = _ping(srv.url, header=None, project=evil)
        assert st == 400 and "<" not in str(body)
        assert _rows(session_factory) == [(SITE, "/landing", "2", 1)]
        for _ in range(5):                                                   # the per-client rate limit
            st, _, _ = _ping(srv.url)
        assert st == 429
        assert _rows(session_factory) == [(SITE, "/landing", "2", 1)]
    finally:
        srv.close()


@pytest.mark.db
def test_forged_origins_are_bounded_and_escaped_on_the_page(db_url, session_factory):
    from support.web import login

    ids = make_project(session_factory, origins="*")
    with session_scope(session_factory) as s:
        svc.add_user(s, "admin", PASSWORD, "admin")
    srv = LiveServer(db_url, session_factory, DNI_RATE_BURST=100)
    try:
        for i in range(sp.MAX_ORIGINS + 5):
            st, _, _ = _ping(srv.url, header=f"https://forged-{i:02d}.example")
            assert st == 204
        st, body, _ = _ping(srv.url, header="https://a\"onmouseover=alert(1).example")
        assert st == 400 and body == {"error": "no page origin"}
        st, body, _ = _ping(srv.url, header=None, origin="https://no-header.example")
        assert st == 403 and "no-header" not in str(body)       # a project with origins needs the header
        st, _, _ = _ping(srv.url, header="https://last.example", page="/<script>alert(1)</script>",
                         snippet="<img src=x onerror=alert(1)>")
        assert st == 204
        rows = _rows(session_factory)
        assert len(rows) == sp.MAX_ORIGINS and ("https://last.example", "/<script>alert(1)</script>", "", 1) in rows
        assert "https://forged-00.example" not in [r[0] for r in rows]     # the oldest ones went
        srv.app.config["WTF_CSRF_ENABLED"] = False
        client = srv.app.test_client()
        login(client, "admin")
        html = client.get(f"/settings/dni?project={ids['project']}").get_data(as_text=True)
        assert "<script>alert(1)" not in html and "/&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert html.count('class="dni-site"') == sp.MAX_ORIGINS and "version unknown" in html
        part = client.get(f"/settings/dni/check?project={ids['project']}")
        assert part.status_code == 200 and part.headers["Cache-Control"] == "no-store"
        assert part.get_data(as_text=True).count('class="dni-site"') == sp.MAX_ORIGINS
        assert client.get("/settings/dni/check?project=999999").status_code == 404
    finally:
        srv.close()


@pytest.mark.db
def test_assign_from_the_snippet_counts_as_a_ping_on_the_dni_server(db_url, session_factory):
    make_project(session_factory, origins=SITE)
    fast = FastServer(db_url, session_factory)
    try:
        st, body, _ = post_json(fast.url + "/api/dni/assign", {"project": "acme"}, {"Origin": SITE})
        assert st == 200 and body["number"]
        assert _rows(session_factory) == []                 # not from the snippet: not a ping
        st, body, _ = post_json(fast.url + "/api/dni/assign", {"project": "acme", "snippet": "2", "page": "/shop",
                                                               "origin": "https://ignored.example"},
                                {"Origin": SITE})
        assert st == 200 and body["number"]
        assert _rows(session_factory) == [(SITE, "/shop", "2", 1)]       # the Origin header wins
        st, _, _ = _ping(fast.url, page="/next")
        assert st == 204
        fast.api.pings.throttle.interval = 0.0
        st, _, _ = _ping(fast.url, page="/third")
        assert st == 204
        assert _rows(session_factory) == [(SITE, "/third", "2", 3)]      # the held-back ping counted
    finally:
        fast.close()


@pytest.mark.db
def test_check_in_the_projects_time_zone_and_in_russian(db_url, session_factory):
    from webui import create_app
    from support.config import make_config
    from support.web import login

    ids = make_project(session_factory)                    # Europe/Moscow, no allowed origins
    with session_scope(session_factory) as s:
        svc.add_user(s, "admin", PASSWORD, "admin")
    app = create_app(make_config(db_url), session_factory, testing=True)
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    login(client, "admin")
    html = client.get("/settings/dni").get_data(as_text=True)
    assert 'data-seen="0"' in html and 'id="dni-never"' in html and 'id="dni-no-origins"' in html
    at = sp.utcnow() - dt.timedelta(minutes=2, seconds=5)
    sp.record(session_factory.kw["bind"], sp.Ping(ids["project"], SITE, "/landing", "1"), 1, now=at)
    html = client.get("/settings/dni/check", query_string={"project": ids["project"]}).get_data(as_text=True)
    local = at.astimezone(dt.timezone(dt.timedelta(hours=3))).strftime("%H:%M:%S")
    assert f"Snippet seen 2 minutes ago on {SITE}/landing (v1)." in html and local in html
    assert "An older snippet (the current one is v2)" in html
    with client.session_transaction() as sess:
        sess["lang"] = "ru"
    ru = client.get("/settings/dni/check", query_string={"project": ids["project"]}).get_data(as_text=True)
    assert f"Код замечен 2 минуты назад на {SITE}/landing (v1)." in ru and "Старая версия кода" in ru
    ru = client.get("/settings/dni").get_data(as_text=True)
    assert "Проверить снова" in ru and "У проекта нет разрешённых сайтов" in ru
    assert re.search(r"Проверено в [^<]*\d\d:\d\d:\d\d", ru)
    with session_scope(session_factory) as s:
        s.get(Project, ids["project"]).allowed_origins = SITE
    dni_projects.invalidate_cache()
    assert 'id="dni-no-origins"' not in client.get("/settings/dni").get_data(as_text=True)


@pytest.mark.db
def test_ping_rate_limit_counts_the_client_behind_a_trusted_proxy(db_url, session_factory):
    make_project(session_factory, origins=SITE)
    srv = LiveServer(db_url, session_factory, config={"web__trusted_proxies": "127.0.0.1"},
                     DNI_RATE_BURST=2, DNI_RATE_PER_MINUTE=1)
    try:
        def ping(client):
            return post_json(srv.url + "/api/dni/ping", {"project": "acme", "snippet": "2", "page": "/"},
                             {"Origin": SITE, "X-Forwarded-For": client})[0]

        assert [ping("203.0.113.1") for _ in range(3)] == [204, 204, 429]
        assert ping("203.0.113.2") == 204                      # another client behind the same proxy
        assert _rows(session_factory) == [(SITE, "/", "2", 1)]
    finally:
        srv.close()
