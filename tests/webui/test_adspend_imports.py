"""Ad-spend imports as batches: every CSV import (web upload, ``spend import``) is recorded with
its project, file, who, when, rows and total; each imported row points to it; "Delete this
import" (admin only, CSRF, a confirmation page, an audit entry) removes exactly its rows
(Flask's test client and the real CLI over real SQLite/PostgreSQL)."""
from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from sqlalchemy import select

from calltracking.models import AdSpend, AdSpendImport, AuditLog
from support.web import PASSWORD, csrf_token

pytestmark = pytest.mark.db

FIRST = "day,source,campaign,amount\n2026-03-01,Google Ads,,100\n2026-03-02,Google Ads,,20.50\n" \
        "2026-03-03,Google Ads,brand,7\n"
# replaces the row of 2026-03-02 (it moves to this import) and adds one
SECOND = "day,source,amount\n2026-03-02,Google Ads,25\n2026-03-04,Google Ads,\"1 000,00\"\n"


def upload(client, world, text, name):
    return client.post("/settings/integrations/spend", data={
        "project": world["project"], "file": (io.BytesIO(text.encode()), name)},
        content_type="multipart/form-data")


def rows_by_import(session_factory):
    with session_factory() as s:
        return {(a.day.isoformat(), a.import_id) for a in s.scalars(select(AdSpend))}


@pytest.fixture
def two_imports(client_for, session_factory, world):
    """Two web imports by the admin and a row added otherwise (no import)."""
    c = client_for("admin")
    assert upload(c, world, FIRST, "march.csv").status_code == 302
    assert upload(c, world, SECOND, "fix<script>.csv").status_code == 302
    with session_factory() as s:
        s.add(AdSpend(project_id=world["project"], source_id=world["source"], day=dt.date(2026, 3, 9),
                      amount=Decimal("5"), currency="RUB"))
        s.commit()
        first, second = s.scalars(select(AdSpendImport).order_by(AdSpendImport.id)).all()
        return first.id, second.id


def test_each_import_is_recorded_and_its_rows_point_to_it(session_factory, world, two_imports):
    first, second = two_imports
    with session_factory() as s:
        a, b = s.get(AdSpendImport, first), s.get(AdSpendImport, second)
        assert (a.project_id, a.file_name, a.imported_by, a.rows, a.total, a.currency) == (
            world["project"], "march.csv", "admin", 3, Decimal("127.50"), "RUB")
        assert (b.file_name, b.rows, b.total) == ("fix<script>.csv", 2, Decimal("1025.00"))
        assert a.imported_at <= b.imported_at and a.imported_at.tzinfo is not None
    assert rows_by_import(session_factory) == {
        ("2026-03-01", first), ("2026-03-03", first), ("2026-03-02", second), ("2026-03-04", second),
        ("2026-03-09", None)}


def test_spend_page_lists_imports_and_delete_removes_exactly_that_batch(client_for, session_factory, world,
                                                                        two_imports):
    first, second = two_imports
    c = client_for("admin")
    page = c.get("/settings/integrations/spend").get_data(as_text=True)
    table = page.split('id="spend-imports"', 1)[1].split("</table>", 1)[0]
    assert "march.csv" in table and "fix&lt;script&gt;.csv" in table and "<script>.csv" not in table
    assert "(2 left)" in table                                          # one of its rows moved on
    assert f"/settings/integrations/spend/imports/{first}/delete" in table
    confirm = c.get(f"/settings/integrations/spend/imports/{first}/delete").get_data(as_text=True)
    assert "march.csv" in confirm and "2 row(s)" in confirm and 'id="spend-import-delete"' in confirm
    assert rows_by_import(session_factory) and len(rows_by_import(session_factory)) == 5   # GET deletes nothing
    r = c.post(f"/settings/integrations/spend/imports/{first}/delete", follow_redirects=True)
    assert "deleted: 2 row(s)" in r.get_data(as_text=True)
    assert rows_by_import(session_factory) == {("2026-03-02", second), ("2026-03-04", second),
                                               ("2026-03-09", None)}
    with session_factory() as s:
        assert s.get(AdSpendImport, first) is None and s.get(AdSpendImport, second) is not None
        entry = s.scalars(select(AuditLog).where(AuditLog.entity == "ad_spend_import")).one()
        assert (entry.username, entry.action, entry.entity_id) == ("admin", "delete", str(first))
        assert json.loads(entry.details)["file"] == "march.csv" and json.loads(entry.details)["rows"] == 2
    assert c.post(f"/settings/integrations/spend/imports/{first}/delete").status_code == 404
    assert c.get("/settings/integrations/spend/imports/999999/delete").status_code == 404


def test_supervisor_and_operator_are_refused(client_for, session_factory, two_imports):
    first, _second = two_imports
    for role in ("supervisor", "operator"):
        c = client_for(role)
        assert c.get(f"/settings/integrations/spend/imports/{first}/delete").status_code == 403
        assert c.post(f"/settings/integrations/spend/imports/{first}/delete").status_code == 403
    assert len(rows_by_import(session_factory)) == 5


def test_a_forged_delete_without_csrf_token_is_rejected(csrf_app, session_factory, world):
    from calltracking.reports import adspend

    with session_factory() as s:
        adspend.import_spend(s, FIRST, default_project="acme", file_name="a.csv", imported_by="admin")
        s.commit()
        imp = s.scalars(select(AdSpendImport.id)).one()
    c = csrf_app.test_client()
    token = csrf_token(c.get("/login").get_data(as_text=True))
    assert c.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token}).status_code == 302
    url = f"/settings/integrations/spend/imports/{imp}/delete"
    r = c.post(url)
    assert r.status_code == 400 and b"CSRF" in r.data
    assert c.post(url, data={"csrf_token": "forged"}).status_code == 400
    assert len(rows_by_import(session_factory)) == 3
    r = c.post(url, data={"csrf_token": csrf_token(c.get(url).get_data(as_text=True))})
    assert r.status_code == 302 and rows_by_import(session_factory) == set()


def test_cli_import_is_a_batch_by_the_system_user(run_cli, session_factory, tmp_path):
    import getpass

    run_cli("projects", "add", "acme", "--timezone", "Europe/Moscow")
    run_cli("sources", "add", "acme", "Google Ads", "--channel", "ads")
    f = tmp_path / "spend-cli.csv"
    f.write_text("day,source,amount,currency\n2026-03-01,Google Ads,10,RUB\n2026-03-02,Google Ads,2,USD\n")
    out = run_cli("spend", "import", str(f), "--project", "acme").output
    with session_factory() as s:
        imp = s.scalars(select(AdSpendImport)).one()
        assert (imp.file_name, imp.imported_by, imp.rows, imp.total) == (
            "spend-cli.csv", f"cli:{getpass.getuser()}", 2, Decimal("12.00"))
        assert imp.currency is None                                     # two currencies: no total currency
        assert {a.import_id for a in s.scalars(select(AdSpend))} == {imp.id}
    assert f"(import {imp.id})" in out


def test_russian_page(client_for, two_imports):
    c = client_for("admin")
    with c.session_transaction() as sess:
        sess["lang"] = "ru"
    page = c.get("/settings/integrations/spend").get_data(as_text=True)
    assert "Удалить эту загрузку" in page and "Загрузки" in page
    confirm = c.get(f"/settings/integrations/spend/imports/{two_imports[0]}/delete").get_data(as_text=True)
    assert "Удалить загрузку файла" in confirm
