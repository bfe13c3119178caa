"""Ad spend CSV import: all or nothing, every bad row reported with its line number."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from calltracking.reports import adspend
from calltracking.models import AdSpend, Campaign, Source


@pytest.fixture
def campaign(session_factory, project):
    with session_factory() as s:
        c = Campaign(project_id=project["id"], source_id=project["source_id"], name="brand")
        s.add(c)
        s.commit()
        return c.id


BAD = """day,source,campaign,amount
2026-11-01,Google Ads,brand,1500.00
2026-11-31,Google Ads,brand,10
2026-11-02,Yandex Direct,,100
2026-11-02,Google Ads,nosuch,100
2026-11-03,Google Ads,,-5
2026-11-01,google ads,Brand,7
2026-11-04,Google Ads,,abc
2026-11-05,Google Ads,,1,extra
"""


def test_bad_rows_import_nothing(session_factory, project, campaign):
    with session_factory() as s:
        with pytest.raises(adspend.ImportFailed) as exc:
            adspend.import_spend(s, BAD, default_project="acme")
        s.rollback()
        assert s.scalar(select(func.count(AdSpend.id))) == 0
    errors = [str(e) for e in exc.value.errors]
    assert errors == [
        "line 3: invalid day '2026-11-31': use YYYY-MM-DD or DD.MM.YYYY",
        "line 4: source 'Yandex Direct' does not exist in project 'acme' (add it first, or use --create-missing)",
        "line 5: campaign 'nosuch' of source 'Google Ads' does not exist (add it first, or use --create-missing)",
        "line 6: negative amount '-5'",
        "line 7: google ads/Brand on 2026-11-01 appears twice (first on line 2)",
        "line 8: invalid amount 'abc': expected a number such as 1234.50",
        "line 9: expected 4 fields, got 5",
    ]


def test_import_and_reimport(session_factory, project, campaign):
    text = ("project;day;source;campaign;cost;currency\n"
            "acme;01.11.2026;Google Ads;brand;1 500,50;\n"
            "acme;2026-11-01;Google Ads;;200;USD\n")
    with session_factory() as s:
        r = adspend.import_spend(s, text)
        s.commit()
        assert (r.created, r.updated) == (2, 0)
        rows = s.scalars(select(AdSpend).order_by(AdSpend.amount.desc())).all()
        assert [(x.amount, x.campaign_id, x.currency) for x in rows] == [
            (Decimal("1500.50"), campaign, "RUB"), (Decimal("200.00"), None, "USD")]
        r = adspend.import_spend(s, "project,day,source,amount\nacme,2026-11-01,Google Ads,250\n")
        s.commit()
        assert (r.created, r.updated) == (0, 1)
        import datetime as dt
        totals = adspend.spend_by_source(s, project["id"], dt.date(2026, 11, 1), dt.date(2026, 11, 30))
        # the source's own row of 1 November (250) is its spend: the campaign's 1500.50 is a part of it
        assert totals == {project["source_id"]: Decimal("250.00")}


def test_create_missing(session_factory, project):
    with session_factory() as s:
        adspend.import_spend(s, "day,source,campaign,amount\n2026-11-01,Yandex Direct,winter,10\n",
                             default_project="acme", create_missing=True)
        s.commit()
        src = s.scalars(select(Source).where(Source.name == "Yandex Direct")).one()
        assert s.scalars(select(Campaign).where(Campaign.source_id == src.id)).one().name == "winter"


def test_cli(run_cli, tmp_path, session_factory):
    run_cli("projects", "add", "acme")
    run_cli("sources", "add", "acme", "Google Ads")
    bad = tmp_path / "bad.csv"
    bad.write_text("day,source,amount\n2026-11-01,Google Ads,10\n2026-13-01,Google Ads,5\n,Google Ads,x\n")
    res = run_cli("spend", "import", str(bad), "--project", "acme", ok=False)
    assert res.exit_code == 1
    assert "bad.csv: line 3: invalid day '2026-13-01'" in res.output
    assert "line 4: invalid day ''" in res.output
    assert "nothing was imported" in res.output
    good = tmp_path / "good.csv"
    good.write_text("\ufeffday,source,amount\n2026-11-01,Google Ads,10\n2026-11-02,Google Ads,5.5\n",
                    encoding="utf-8")
    assert "imported 2 row(s): 2 new, 0 updated" in run_cli("spend", "import", str(good), "--project", "acme").output
    out = run_cli("spend", "list", "acme").output
    assert "2026-11-02" in out and "5.50" in out
    res = run_cli("spend", "import", str(tmp_path / "absent.csv"), ok=False)
    assert res.exit_code == 2 and "No such file" in res.output
