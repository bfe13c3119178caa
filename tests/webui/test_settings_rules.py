"""One rule, every way in: the CLI (click's CliRunner), the settings form and the REST API refuse
the same bad input with the message of the same rule (:mod:`calltracking.settings_rules`,
:mod:`calltracking.entities`), and nothing is created."""
import html
import re

import pytest
from sqlalchemy import func, select

from calltracking import settings_rules as rules
from calltracking.models import Project, TrackingNumber, User
from webui.auth import new_api_token

pytestmark = pytest.mark.db


def _refusal(rule, *args) -> str:
    with pytest.raises(rules.ServiceError) as e:
        rule(*args)
    return str(e.value)


def _form_errors(r) -> list[str]:
    page = r.get_data(as_text=True)
    if 'id="form-errors"' not in page:
        return []
    listed = page.split('id="form-errors"')[1].split("</ul>")[0]
    return [html.unescape(e) for e in re.findall(r"<li>(.*?)</li>", listed)]


def _count(session_factory, model) -> int:
    s = session_factory()
    try:
        return s.scalar(select(func.count()).select_from(model))
    finally:
        s.close()


@pytest.mark.parametrize("cli_args,slug,form,message", [
    (["projects", "add", "beta", "--timezone", "Mars/Olympus"],
     "projects", {"key": "beta", "name": "Beta", "timezone": "Mars/Olympus"},
     _refusal(rules.timezone, "Mars/Olympus")),
    (["projects", "add", "bad key"],
     "projects", {"key": "bad key", "name": "Bad"},
     _refusal(rules.project_key, "bad key")),
    (["users", "add", "newbie", "--role", "operator", "--password", "short"],
     "users", {"username": "newbie", "password": "short", "role": "operator", "language": "en"},
     _refusal(rules.password, "short")),
], ids=["time zone", "project key", "password"])
def test_cli_and_form_refuse_with_the_same_rule(run_cli, client_for, session_factory, cli_args, slug, form,
                                                message):
    model = {"projects": Project, "users": User}[slug]
    before = _count(session_factory, model)
    res = run_cli(*cli_args, ok=False)
    assert res.exit_code == 1 and f"Error: {message}" in res.output
    r = client_for("admin").post(f"/settings/{slug}", data=form)
    assert r.status_code == 400 and message in _form_errors(r)
    assert _count(session_factory, model) == before


def test_a_number_is_static_or_in_a_pool_everywhere(run_cli, client_for, app, session_factory, world):
    """The rule between entities: the CLI, the form and the API give the same refusal."""
    message = "number +74950003001: give a source (static) or a pool (dynamic), not both"
    res = run_cli("numbers", "add", "acme", "8 495 000-30-01", "--source", "Google Ads", "--pool", "website",
                  ok=False)
    assert res.exit_code == 1 and f"Error: {message}" in res.output
    r = client_for("admin").post("/settings/numbers", data={
        "project_id": world["project"], "number": "+7 495 000-30-01", "source_id": world["source"],
        "pool_id": world["pool"]})
    assert r.status_code == 400 and message in _form_errors(r)
    s = session_factory()
    token = new_api_token(s.scalars(select(User).where(User.username == "admin")).one())
    s.commit()
    s.close()
    r = app.test_client().post("/api/numbers", headers={"Authorization": f"Bearer {token}"},
                               json={"project": "acme", "number": "74950003001", "source": "Google Ads",
                                     "pool": "website"})
    assert r.status_code == 400 and r.get_json() == {"error": message}
    assert _count(session_factory, TrackingNumber) == 0


@pytest.mark.parametrize("channel, event, target, code", [
    ("webhook", "missed_call", "http://127.0.0.1:9/hook", "refused"),     # loopback: not the public internet
    ("crm", "missed_call", "https://crm.example.com/hook", "event"),
    ("webhook", "digest_daily", "https://chat.example.com/hook", "digest"),
    ("email", "missed_call", "not an address", "email"),
], ids=["private target", "crm event", "digest channel", "e-mail"])
def test_cli_and_form_refuse_the_same_notification_rules(run_cli, client_for, session_factory, world,
                                                         channel, event, target, code):
    from calltracking.jobs import rules as notification_rules
    from calltracking.models import NotificationRule

    with pytest.raises(notification_rules.RuleRefused) as refused:
        notification_rules.check_rule(channel, event, target)
    assert refused.value.code == code
    res = run_cli("notify", "add", "acme", "--channel", channel, "--event", event, "--target", target, ok=False)
    assert res.exit_code == 1 and f"Error: {refused.value}" in res.output
    r = client_for("admin").post("/settings/integrations/rules", data={
        "project": world["project"], "channel": channel, "event": event, "target": target})
    assert r.status_code == 400
    if code in ("refused", "email"):                  # messages that quote the value
        assert str(refused.value) in html.unescape(r.get_data(as_text=True))
    assert _count(session_factory, NotificationRule) == 0
