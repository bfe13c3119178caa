"""Every page renders for an admin (quick smoke before the detailed tests)."""
import pytest

from support.web import add_call

pytestmark = pytest.mark.db


def test_pages_render(app, client_for, session_factory, world):
    cid = add_call(session_factory, world["project"], "1.1", operator_id=world["operator"],
                   source_id=world["source"])
    mid = add_call(session_factory, world["project"], "1.2", status="missed")
    c = client_for("admin")
    for url in ["/calls", f"/calls/{cid}", f"/calls/{mid}", "/missed", "/missed?state=all", "/screenpop",
                "/account", "/settings/", "/settings/audit", "/settings/numbers/csv", "/settings/rules/test",
                "/calls/export.csv", "/api/openapi.json"] + \
            [f"/settings/{s}" for s in ("projects", "sources", "campaigns", "pools", "numbers", "rules",
                                         "operators", "promo", "users")]:
        r = c.get(url)
        assert r.status_code == 200, (url, r.status_code, r.data[:2000])
