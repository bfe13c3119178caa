"""Hostile caller-ID names are shown as text everywhere (journal, call card, missed list, screen pop)."""
import pytest

from support.web import HOSTILE_NAMES, add_call

pytestmark = pytest.mark.db

ESCAPED = {
    '<script>alert(1)</script>': "&lt;script&gt;alert(1)&lt;/script&gt;",
    '"><img src=x onerror=alert(1)>': "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;",
}


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_caller_name_is_escaped(client_for, session_factory, world, name):
    answered = add_call(session_factory, world["project"], "h1", name=name, operator_id=world["operator"],
                        comment=name)
    missed = add_call(session_factory, world["project"], "h2", name=name, status="missed", caller="+74957770000")
    live = add_call(session_factory, world["project"], "h3", name=name, status="in_progress",
                    operator_id=world["operator"], caller="+74951112233")
    pages = {
        "journal": ("admin", "/calls"),
        "card": ("admin", f"/calls/{answered}"),
        "missed card": ("supervisor", f"/calls/{missed}"),
        "missed": ("supervisor", "/missed"),
        "screen pop": ("operator", "/screenpop"),
        "operator journal": ("operator", "/calls"),
    }
    for what, (role, url) in pages.items():
        html = client_for(role).get(url).get_data(as_text=True)
        assert ESCAPED[name] in html, what
        assert name not in html, what
        assert "<img src=x" not in html and "<script>alert" not in html, what
    # the CSV export keeps the name as data (not HTML)
    csv = client_for("admin").get("/calls/export.csv").get_data(as_text=True)
    assert name.replace('"', '""') in csv
    _ = live
