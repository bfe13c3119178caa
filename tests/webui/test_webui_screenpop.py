"""Operator screen pop: the operator's current call with its source and the caller's history."""
import datetime as dt

import pytest

from calltracking.models import CallLeg, utcnow
from support.web import add_call

pytestmark = pytest.mark.db


def test_screen_pop_shows_current_call_and_history(client_for, session_factory, world):
    c = client_for("operator")
    assert 'id="no-call"' in c.get("/screenpop").get_data(as_text=True)
    old = utcnow() - dt.timedelta(days=2)
    add_call(session_factory, world["project"], "h1", caller="+74954440000", started=old, comment="wants a sofa")
    # ringing at this operator (a live leg), not yet answered
    live = add_call(session_factory, world["project"], "live", caller="+74954440000", status="in_progress",
                    source_id=world["source"], started=utcnow() - dt.timedelta(seconds=10))
    s = session_factory()
    s.add(CallLeg(call_id=live, operator_id=world["operator"], operator_name="Olga", uniqueid="live.2",
                  rung_at=utcnow()))
    s.commit()
    s.close()
    html = c.get("/screenpop").get_data(as_text=True)
    assert 'id="current-call"' in html and "+74954440000" in html and "Google Ads" in html
    assert "wants a sofa" in html                      # history of the caller
    assert f"/calls/{live}" in html
    # another operator sees nothing; a supervisor can look at any operator
    assert 'id="no-call"' in client_for("supervisor").get(f"/screenpop?operator={world['operator2']}").get_data(as_text=True)
    assert "+74954440000" in client_for("supervisor").get(f"/screenpop?operator={world['operator']}").get_data(as_text=True)
    # operators cannot look at someone else's screen
    html = c.get(f"/screenpop?operator={world['operator2']}").get_data(as_text=True)
    assert 'id="current-call"' in html
    # after the call ends it is gone
    s = session_factory()
    from calltracking.models import Call

    s.get(Call, live).status = "answered"
    s.commit()
    s.close()
    assert 'id="no-call"' in c.get("/screenpop").get_data(as_text=True)
