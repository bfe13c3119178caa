"""REST API: token auth, calls, numbers, OpenAPI document."""
import pytest
from sqlalchemy import select

from calltracking.models import TrackingNumber, User
from webui.auth import new_api_token
from support.web import add_call

pytestmark = pytest.mark.db


@pytest.fixture
def tokens(session_factory, world):
    s = session_factory()
    out = {}
    for name in ("admin", "super", "oper"):
        u = s.scalars(select(User).where(User.username == name)).one()
        out[u.role] = new_api_token(u)
    s.commit()
    s.close()
    return out


def h(token):
    return {"Authorization": f"Bearer {token}"}


def test_token_auth(app, tokens):
    c = app.test_client()
    assert c.get("/api/calls").status_code == 401
    assert c.get("/api/calls", headers=h("ct_wrong")).status_code == 401
    assert c.get("/api/calls", headers={"Authorization": "Basic abc"}).status_code == 401
    assert c.get("/api/calls", headers=h(tokens["operator"])).status_code == 200
    r = c.get("/api/numbers", headers=h(tokens["operator"]))
    assert r.status_code == 403 and "role" in r.get_json()["error"]
    assert c.post("/api/numbers", json={}, headers=h(tokens["supervisor"])).status_code == 403
    # a session cookie is not enough for the API
    c.post("/login", data={"username": "admin", "password": "correct-horse-battery"})
    assert c.get("/api/calls").status_code == 401


def test_token_made_on_account_page(app, client_for):
    c = client_for("supervisor")
    html = c.post("/account", data={"action": "token"}).get_data(as_text=True)
    token = html.split('id="api-token">')[1].split("<")[0]
    assert app.test_client().get("/api/calls", headers=h(token)).status_code == 200
    c.post("/account", data={"action": "revoke"})
    assert app.test_client().get("/api/calls", headers=h(token)).status_code == 401


def test_calls(app, tokens, session_factory, world):
    ids = [add_call(session_factory, world["project"], f"a{i}", operator_id=world["operator"] if i % 2 else None)
           for i in range(5)]
    c = app.test_client()
    r = c.get("/api/calls?limit=2", headers=h(tokens["admin"]))
    body = r.get_json()
    assert [x["linkedid"] for x in body["calls"]] == ["a4", "a3"] and body["next"]
    r2 = c.get(f"/api/calls?limit=2&after={body['next']}", headers=h(tokens["admin"])).get_json()
    assert [x["linkedid"] for x in r2["calls"]] == ["a2", "a1"]
    one = c.get(f"/api/calls/{ids[1]}", headers=h(tokens["admin"])).get_json()
    assert one["caller"] == "+74951112233" and one["legs"][0]["operator"] == "Olga" and one["talk_seconds"] == 60.0
    # operators: only their own calls
    mine = c.get("/api/calls", headers=h(tokens["operator"])).get_json()["calls"]
    assert sorted(x["linkedid"] for x in mine) == ["a1", "a3"]
    assert c.get(f"/api/calls/{ids[0]}", headers=h(tokens["operator"])).status_code == 403
    r = c.patch(f"/api/calls/{ids[1]}", json={"tags": ["lead"], "value": "99.5", "comment": "ok"},
                headers=h(tokens["supervisor"]))
    assert r.status_code == 200 and r.get_json()["tags"] == ["lead"] and r.get_json()["value"] == "99.50"
    assert c.patch(f"/api/calls/{ids[1]}", json={"bogus": 1}, headers=h(tokens["admin"])).status_code == 400
    assert c.patch(f"/api/calls/{ids[1]}", json={"value": "abc"}, headers=h(tokens["admin"])).status_code == 400
    assert c.get("/api/calls?status=nope", headers=h(tokens["admin"])).status_code == 400
    assert c.get("/api/calls/99999", headers=h(tokens["admin"])).status_code == 404


def test_numbers(app, tokens, session_factory, world):
    c = app.test_client()
    r = c.post("/api/numbers", json={"number": "8 495 000 10 01", "project": "acme", "source": "Google Ads",
                                     "campaign": "brand"}, headers=h(tokens["admin"]))
    assert r.status_code == 201 and r.get_json()["number"] == "+74950001001"
    r = c.post("/api/numbers", json={"number": "+74950001001", "project": "acme", "source": "Google Ads"},
               headers=h(tokens["admin"]))
    assert r.status_code == 400 and "already mapped" in r.get_json()["error"]
    r = c.post("/api/numbers", json={"number": "+74950001002", "project": "acme", "pool": "website"},
               headers=h(tokens["admin"]))
    assert r.status_code == 201 and r.get_json()["kind"] == "pool"
    listed = c.get("/api/numbers", headers=h(tokens["supervisor"])).get_json()["numbers"]
    assert [n["number"] for n in listed] == ["+74950001001", "+74950001002"]
    assert c.delete("/api/numbers/+74950001001", headers=h(tokens["admin"])).get_json()["active"] is False
    assert c.delete("/api/numbers/+74950001001", headers=h(tokens["admin"])).status_code == 404
    r = c.post("/api/numbers/import?project=acme", data="number,pool\n+74950001003,website\nbad,website\n",
               headers=h(tokens["admin"]))
    assert r.status_code == 400 and r.get_json()["rows"][0]["line"] == 3
    r = c.post("/api/numbers/import?project=acme", data="number,pool\n+74950001003,website\n",
               headers=h(tokens["admin"]))
    assert r.get_json()["imported"] == 1
    s = session_factory()
    assert s.scalars(select(TrackingNumber).where(TrackingNumber.active.is_(True))).all().__len__() == 2
    s.close()


def test_openapi_document_covers_every_api_route(app):
    doc = app.test_client().get("/api/openapi.json").get_json()
    assert doc["openapi"].startswith("3.") and "bearerAuth" in doc["components"]["securitySchemes"]
    documented = set()
    for path, ops in doc["paths"].items():
        for method in ops:
            if method != "parameters":
                documented.add((method.upper(), path))
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api.") or rule.rule == "/api/openapi.json":
            continue
        path = rule.rule.replace("<int:", "{").replace("<", "{").replace(">", "}")
        path = path.replace("{call_id}", "{id}")
        for m in rule.methods - {"HEAD", "OPTIONS"}:
            assert (m, path) in documented, (m, path)
    # every $ref resolves
    import json

    text = json.dumps(doc)
    for ref in set(__import__("re").findall(r'"#/components/schemas/(\w+)"', text)):
        assert ref in doc["components"]["schemas"]


def test_reports(app, tokens, session_factory, world):
    add_call(session_factory, world["project"], "r1", source_id=world["source"])
    add_call(session_factory, world["project"], "r2", source_id=world["source"], status="missed")
    c = app.test_client()
    names = c.get("/api/reports", headers=h(tokens["supervisor"])).get_json()["reports"]
    assert "sources" in names and "daily" in names
    body = c.get("/api/reports/sources?project=acme", headers=h(tokens["supervisor"])).get_json()
    row = next(r for r in body["rows"] if r["name"] == "Google Ads")
    assert row["calls"] == 2 and row["answered"] == 1 and row["missed"] == 1
    assert body["project"] == "acme" and body["columns"]
    assert c.get("/api/reports/nope", headers=h(tokens["admin"])).status_code == 404
    assert c.get("/api/reports/daily?from=2026-13-01", headers=h(tokens["admin"])).status_code == 400
    assert c.get("/api/reports/daily", headers=h(tokens["operator"])).status_code == 403


def test_account_page_shows_the_token_placeholder_as_text(client_for):
    for lang in ("en", "ru"):
        c = client_for("supervisor")
        with c.session_transaction() as sess:
            sess["lang"] = lang
        html = c.get("/account").get_data(as_text=True)
        assert "Bearer &lt;token&gt;" in html and "<token>" not in html, lang


def test_calls_filter_by_project_key_and_names(app, tokens, session_factory, world):
    add_call(session_factory, world["project"], "n1", source_id=world["source"], operator_id=world["operator"])
    add_call(session_factory, world["project"], "n2", operator_id=world["operator2"])
    c = app.test_client()
    ids = lambda q, who="admin": sorted(x["linkedid"] for x in c.get(  # noqa: E731
        "/api/calls", query_string=q, headers=h(tokens[who])).get_json()["calls"])
    assert ids({"project": "acme"}) == ["n1", "n2"]
    assert ids({"project": str(world["project"])}) == ["n1", "n2"]
    assert ids({"project": "acme", "source": "Google Ads"}) == ["n1"]
    assert ids({"source": str(world["source"])}) == ["n1"]
    assert ids({"operator": "Boris"}) == ["n2"]
    assert ids({"operator": str(world["operator"])}) == ["n1"]
    assert ids({"project": "acme"}, "operator") == ["n1"]          # an operator: only its own calls
    r = c.get("/api/calls", query_string={"project": "nope"}, headers=h(tokens["admin"]))
    assert r.status_code == 400 and "unknown project 'nope'" in r.get_json()["error"]
    r = c.get("/api/calls", query_string={"source": "Nowhere"}, headers=h(tokens["admin"]))
    assert r.status_code == 400 and "unknown source" in r.get_json()["error"]


def test_lists_of_projects_sources_campaigns_operators(app, tokens, world):
    c = app.test_client()
    get = lambda url, who="supervisor": c.get(url, headers=h(tokens[who]))  # noqa: E731
    projects = get("/api/projects").get_json()["projects"]
    assert [(p["key"], p["name"], p["id"]) for p in projects] == [("acme", "ACME", world["project"])]
    src = get("/api/sources?project=acme").get_json()["sources"]
    assert [(x["name"], x["project"], [k["name"] for k in x["campaigns"]]) for x in src] == [
        ("Google Ads", "acme", ["brand"])]
    assert get("/api/sources?project=nope").status_code == 404
    camps = get("/api/campaigns?project=acme&source=Google Ads").get_json()["campaigns"]
    assert [(k["name"], k["source"], k["id"]) for k in camps] == [("brand", "Google Ads", world["campaign"])]
    assert {o["name"] for o in get("/api/operators").get_json()["operators"]} == {"Olga", "Boris"}
    assert [o["name"] for o in get("/api/operators", "operator").get_json()["operators"]] == ["Olga"]
    assert c.get("/api/projects").status_code == 401
