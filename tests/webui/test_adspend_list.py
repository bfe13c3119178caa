"""Ad spend: source rows and campaign rows of a day never add up twice; the imported spend
can be listed, totalled and deleted by an admin; the import's project picker shows names."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from calltracking.models import AdSpend
from calltracking.reports import adspend
from support.web import add_call

pytestmark = pytest.mark.db

# day 1: the source's own row (100) and two campaign rows (30 + 50): the source spent 100.
# day 2: campaign rows only (20): the source spent 20. day 3: the source's own row only (7).
SPEND = """day,source,campaign,amount
2026-03-01,Google Ads,,100
2026-03-01,Google Ads,brand,30
2026-03-01,Google Ads,generic,50
2026-03-02,Google Ads,brand,20
2026-03-03,Google Ads,,7
"""


def _total(html: str) -> str:
    """The amount of the page's one total (the currency sign and spaces dropped)."""
    cell = html.split('class="spend-total">')[1].split("<")[0]
    return re.sub(r"[^0-9.,]", "", cell)


@pytest.fixture
def spend(session_factory, world):
    with session_factory() as s:
        adspend.import_spend(s, SPEND, default_project="acme", create_missing=True)
        s.commit()


def test_a_source_spend_is_its_own_row_else_its_campaigns(session_factory, world, spend):
    with session_factory() as s:
        got = adspend.source_spend(s, [world["project"]], dt.date(2026, 3, 1), dt.date(2026, 3, 31))
        assert got == {world["source"]: Decimal("127.00")}
        assert adspend.source_spend(s, [world["project"]], dt.date(2026, 3, 2), dt.date(2026, 3, 2)) == {
            world["source"]: Decimal("20.00")}
        by_campaign = adspend.spend_by_source(s, world["project"], dt.date(2026, 3, 1), dt.date(2026, 3, 31),
                                              by_campaign=True)
        assert sorted(by_campaign.values()) == [Decimal("20.00") + Decimal("30.00"), Decimal("50.00")]


def test_sources_report_does_not_add_campaign_rows_on_top(app, client_for, session_factory, world, spend):
    from webui.auth import new_api_token
    from calltracking.models import User

    add_call(session_factory, world["project"], "s1", source_id=world["source"],
             started=dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc))
    with session_factory() as s:
        token = new_api_token(s.scalars(select(User).where(User.username == "super")).one())
        s.commit()
    body = app.test_client().get("/api/reports/sources?project=acme&from=2026-03-01&to=2026-03-31",
                                 headers={"Authorization": f"Bearer {token}"}).get_json()
    row = next(r for r in body["rows"] if r["name"] == "Google Ads")
    assert row["spend"] == 127.0


def test_admin_lists_filters_totals_and_deletes_spend(client_for, session_factory, world, spend):
    c = client_for("admin")
    html = c.get("/settings/integrations/spend", query_string={"project": world["project"]}).get_data(as_text=True)
    assert html.split('id="spend-table"', 1)[1].count("<tr>") == 1 + 5 and "5 row(s)" in html
    assert _total(html) == "127.00"         # the campaign rows of day 1 are not counted
    html = c.get("/settings/integrations/spend", query_string={
        "project": world["project"], "from": "2026-03-02", "to": "2026-03-03"}).get_data(as_text=True)
    assert "2 row(s)" in html and _total(html) == "27.00"
    bad = c.get("/settings/integrations/spend", query_string={"from": "2026-13-01"}).get_data(as_text=True)
    assert "Invalid date “2026-13-01”" in bad
    with session_factory() as s:
        one = s.scalars(select(AdSpend.id).where(AdSpend.day == dt.date(2026, 3, 3))).one()
    r = c.post("/settings/integrations/spend/delete", data={"row": one, "project": world["project"]},
               follow_redirects=True)
    assert "Deleted 1 row(s)." in r.get_data(as_text=True)
    r = c.post("/settings/integrations/spend/delete", data={"from": "2026-03-01"}, follow_redirects=True)
    assert "Choose a project" in r.get_data(as_text=True)
    r = c.post("/settings/integrations/spend/delete", data={"project": world["project"], "from": "2026-03-01",
                                                             "to": "2026-03-01"}, follow_redirects=True)
    assert "Deleted 3 row(s)." in r.get_data(as_text=True)
    with session_factory() as s:
        assert s.scalar(select(func.count(AdSpend.id))) == 1
    for role in ("supervisor", "operator"):
        assert client_for(role).get("/settings/integrations/spend").status_code == 403
        assert client_for(role).post("/settings/integrations/spend/delete",
                                     data={"project": world["project"]}).status_code == 403


def test_import_picker_shows_project_names(client_for, world):
    html = client_for("admin").get("/settings/integrations/").get_data(as_text=True)
    assert f'<option value="{world["project"]}">ACME (acme)</option>' in html
    assert "/settings/integrations/spend" in html
    c = client_for("admin")
    with c.session_transaction() as sess:
        sess["lang"] = "ru"
    ru = c.get("/settings/integrations/spend").get_data(as_text=True)
    assert "Загруженные расходы на рекламу" in ru and "Подходящих расходов нет." in ru


def test_spend_list_escapes_hostile_names(client_for, session_factory, world):
    with session_factory() as s:
        adspend.import_spend(s, "day,source,campaign,amount\n2026-03-01,<img src=x onerror=alert(1)>,,5\n",
                             default_project="acme", create_missing=True)
        s.commit()
    html = client_for("admin").get("/settings/integrations/spend").get_data(as_text=True)
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
