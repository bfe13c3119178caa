"""Every route × every role: allowed, 403, or (anonymous) a redirect to the login page."""
import pytest

from support.web import PASSWORD, add_call, login

pytestmark = pytest.mark.db

A, S, O = "admin", "supervisor", "operator"
ALL = (A, S, O)

# (method, url template, roles allowed). {call} = a call of the operator, {other} = someone else's call.
MATRIX = [
    ("GET", "/calls", ALL),
    ("GET", "/calls/export.csv", ALL),
    ("GET", "/calls/{call}", ALL),
    ("GET", "/calls/{other}", (A, S)),
    ("POST", "/calls/{call}", ALL),
    ("POST", "/calls/{other}", (A, S)),
    ("GET", "/calls/{call}/recording", ALL),          # 404 text: no recording, but access passes
    ("GET", "/calls/{other}/recording", (A, S)),
    ("GET", "/missed", (A, S)),
    ("POST", "/missed/{missed}/handled", (A, S)),
    ("POST", "/missed/{missed}/call", (A, S)),        # 404 when click-to-call is off
    ("POST", "/missed/callback-requests/{callback}/handled", (A, S)),
    ("POST", "/missed/callback-requests/{callback}/call", (A, S)),     # 404 when click-to-call is off
    ("GET", "/settings/callbacks", (A,)),
    ("POST", "/settings/callbacks/{project}", (A,)),
    ("GET", "/screenpop", ALL),
    ("GET", "/account", ALL),
    ("POST", "/account", ALL),
    ("GET", "/settings/", (A,)),
    ("GET", "/settings/audit", (A,)),
    ("GET", "/settings/numbers/csv", (A,)),
    ("POST", "/settings/numbers/csv", (A,)),
    ("GET", "/settings/numbers/export.csv", (A,)),
    ("GET", "/settings/rules/test", (A,)),
    ("POST", "/settings/rules/test", (A,)),
    ("POST", "/settings/numbers/{number}/retire", (A,)),
] + [(m, f"/settings/{slug}", (A,)) for slug in ("projects", "sources", "campaigns", "pools", "numbers", "rules",
                                                   "operators", "promo", "users") for m in ("GET", "POST")] + [
    ("GET", "/settings/projects/{project}", (A,)),
    ("POST", "/settings/projects/{project}", (A,)),
    ("POST", "/settings/sources/{source}/toggle", (A,)),
    ("POST", "/settings/rules/{rule}/delete", (A,)),
    ("GET", "/settings/target-calls", (A,)),
    ("POST", "/settings/target-calls/{project}/tags", (A,)),
    ("POST", "/settings/target-calls/{project}/rules", (A,)),
    ("POST", "/settings/target-calls/{project}/apply", (A,)),
    ("GET", "/settings/keywords", (A,)),
    ("GET", "/reports/mentions", (A, S)),
    ("GET", "/reports/mentions.csv", (A, S)),
]
# Routes that are public on purpose (login page, health check, language switch, API document).
PUBLIC = {"/login", "/logout", "/language", "/healthz", "/api/openapi.json", "/"}
NOT_BROWSER = ("api.", "static", "reports.", "dni.", "metrics.")  # others test theirs


@pytest.fixture
def ids(session_factory, world):
    from calltracking.models import RoutingRule, TrackingNumber

    s = session_factory()
    rule = RoutingRule(project_id=world["project"], name="r", queue="q")
    tn = TrackingNumber(project_id=world["project"], number="+74950001001", source_id=world["source"])
    s.add_all([rule, tn])
    s.commit()
    out = dict(world, rule=rule.id, number=tn.id)
    s.close()
    out["call"] = add_call(session_factory, world["project"], "1", operator_id=world["operator"])
    out["other"] = add_call(session_factory, world["project"], "2", operator_id=world["operator2"])
    out["missed"] = add_call(session_factory, world["project"], "3", status="missed", caller="+74959998877")
    from calltracking.models import CallbackRequest

    with session_factory() as s2:
        cb = CallbackRequest(project_id=world["project"], phone="+79160000001", status="unreached")
        s2.add(cb)
        s2.commit()
        out["callback"] = cb.id
    return out


def _url(tmpl, ids):
    return tmpl.format(**ids)


@pytest.mark.parametrize("role", [None, A, S, O])
def test_role_matrix(client_for, ids, role):
    client = client_for(role)
    failures = []
    for method, tmpl, allowed in MATRIX:
        url = _url(tmpl, ids)
        r = client.open(url, method=method, data={})
        if role is None:
            ok = r.status_code == 302 and "/login" in r.headers["Location"]
        elif role in allowed:
            ok = r.status_code not in (302, 401, 403) or (method == "POST" and r.status_code == 302
                                                          and "/login" not in r.headers["Location"])
        else:
            ok = r.status_code == 403
        if not ok:
            failures.append((method, url, r.status_code, r.headers.get("Location")))
    assert not failures, failures


def test_every_browser_route_is_in_the_matrix(app):
    covered = {tmpl.split("{")[0].rstrip("/") for _m, tmpl, _r in MATRIX}
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(NOT_BROWSER) or rule.rule in PUBLIC:
            continue
        prefix = rule.rule.split("<")[0].rstrip("/")
        if not any(c == prefix or c.startswith(prefix + "/") or prefix.startswith(c) for c in covered):
            missing.append(rule.rule)
    assert not missing, missing


def test_operator_without_operator_link_sees_no_calls(app, session_factory, world):
    from calltracking import entities as svc

    s = session_factory()
    svc.add_user(s, "loose", PASSWORD, "operator")
    s.commit()
    s.close()
    add_call(session_factory, world["project"], "9", operator_id=world["operator"], caller="+74951230000")
    c = app.test_client()
    login(c, "loose")
    r = c.get("/calls")
    assert r.status_code == 200
    assert b"+74951230000" not in r.data
