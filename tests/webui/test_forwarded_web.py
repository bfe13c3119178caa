"""Forwarded calls in the web UI: the rule's condition in the settings form, the call card, the CSV."""
from __future__ import annotations

import csv
import re
import io

from sqlalchemy import select

from calltracking.models import RoutingRule
from support.web import add_call

HOSTILE = '<img src=x onerror=alert(1)>'


def test_rule_form_normalises_and_refuses_a_bad_number(client_for, session_factory, world):
    c = client_for("admin")
    r = c.post("/settings/rules", data={"project_id": world["project"], "name": "own", "queue": "own-q",
                                        "forwarded_from": "8 (495) 777-00-00", "enabled": "yes"})
    assert r.status_code == 302, r.get_data(as_text=True)
    with session_factory() as s:
        assert s.scalars(select(RoutingRule.forwarded_from).where(RoutingRule.name == "own")).one() == "+74957770000"
    r = c.post("/settings/rules", data={"project_id": world["project"], "name": "bad", "queue": "q",
                                        "forwarded_from": "12", "enabled": "yes"})
    assert r.status_code == 400 and "Forwarded from" in r.get_data(as_text=True)
    with session_factory() as s:
        assert s.scalars(select(RoutingRule).where(RoutingRule.name == "bad")).first() is None


def test_call_card_and_csv_show_forwarded_from_in_english_and_russian(client_for, session_factory, world):
    fwd = add_call(session_factory, world["project"], "f1", forwarded_from="+74957770000")
    direct = add_call(session_factory, world["project"], "f2")
    hostile = add_call(session_factory, world["project"], "f3", forwarded_from=HOSTILE[:32])
    add_call(session_factory, world["project"], "f4", forwarded_from="=1+2")
    c = client_for("supervisor")
    html = c.get(f"/calls/{fwd}").get_data(as_text=True)
    assert 'id="forwarded-from">+74957770000</dd>' in html and "Forwarded from" in html
    assert 'id="forwarded-from"' not in c.get(f"/calls/{direct}").get_data(as_text=True)
    html = c.get(f"/calls/{hostile}").get_data(as_text=True)
    assert "<img src=x" not in html and "&lt;img src=x" in html
    with c.session_transaction() as sess:
        sess["lang"] = "ru"
    assert "Переадресован с номера" in c.get(f"/calls/{fwd}").get_data(as_text=True)
    body = c.get("/calls/export.csv").get_data(as_text=True).lstrip("\ufeff")
    sep = body.split("\n", 1)[0][len("АТС")]           # the first title, then the separator
    rows = list(csv.reader(io.StringIO(body), delimiter=sep))
    col = rows[0].index("Переадресован с номера")
    assert sorted(r[col] for r in rows[1:]) == sorted(["+74957770000", "", HOSTILE[:32], "'=1+2"])


def test_routing_test_form_takes_the_forwarding_number(client_for, world):
    c = client_for("admin")
    c.post("/settings/rules", data={"project_id": world["project"], "name": "own", "queue": "own-q",
                                    "forwarded_from": "+74957770000", "enabled": "yes"})

    def queue(forwarded):
        html = c.post("/settings/rules/test", data={"project_id": world["project"],
                                                    "forwarded_from": forwarded}).get_data(as_text=True)
        return re.search(r'id="result-queue">(.*?)</dd>', html, re.S).group(1).strip()

    assert queue("8 495 777-00-00") == "own-q"
    assert queue("") == queue("unknown") == queue("+74951112233") == "sales"
