"""Login, sessions, rate limit, CSRF, secure cookies, the secret key check, languages."""
import pytest

from calltracking.config import ConfigError
from support.config import make_config
from support.web import PASSWORD, csrf_token, login

pytestmark = pytest.mark.db


def test_login_logout(app):
    c = app.test_client()
    r = c.get("/calls")
    assert r.status_code == 302 and "/login?next=/calls" in r.headers["Location"]
    r = login(c, "admin", "wrong-password")
    assert r.status_code == 401 and b"Wrong username or password" in r.data
    r = c.post("/login?next=/missed", data={"username": "admin", "password": PASSWORD})
    assert r.status_code == 302 and r.headers["Location"] == "/missed"
    assert c.get("/calls").status_code == 200
    c.post("/logout")
    assert c.get("/calls").status_code == 302


def test_login_next_cannot_leave_the_site(app):
    c = app.test_client()
    for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        r = c.post("/login", query_string={"next": target}, data={"username": "admin", "password": PASSWORD})
        assert r.status_code == 302 and r.headers["Location"] == "/", target
        c.post("/logout")


def test_password_is_hashed_and_unknown_user_fails(app, session_factory):
    from calltracking.models import User
    from sqlalchemy import select

    s = session_factory()
    u = s.scalars(select(User).where(User.username == "admin")).one()
    assert PASSWORD not in u.password_hash and u.password_hash.startswith(("scrypt:", "pbkdf2:"))
    s.close()
    assert login(app.test_client(), "nobody").status_code == 401


def test_login_rate_limited(app):
    from webui.auth import LoginThrottle

    app.extensions["calltracking"]["login_limiter"] = LoginThrottle(clock=lambda: 0.0)  # time stands still
    c = app.test_client()
    for _ in range(4):
        assert login(c, "admin", "bad-password").status_code == 401
    r = login(c, "admin")            # even the right password is not checked now
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert b"Too many failed logins" in r.data
    # the same account from another address is not affected (see test_webui_security.py)
    other = app.test_client()
    r = other.post("/login", data={"username": "admin", "password": PASSWORD},
                   environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert r.status_code == 302


def test_inactive_user_and_password_change_end_sessions(app, session_factory):
    from calltracking.models import User
    from sqlalchemy import select

    c = app.test_client()
    login(c, "super")
    assert c.get("/calls").status_code == 200
    other = app.test_client()
    login(other, "super")
    r = c.post("/account", data={"action": "password", "old_password": PASSWORD, "new_password": "another-pass-1"})
    assert r.status_code == 302
    assert c.get("/calls").status_code == 200          # this session goes on
    assert other.get("/calls").status_code == 302      # the other one ended
    s = session_factory()
    s.scalars(select(User).where(User.username == "super")).one().active = False
    s.commit()
    s.close()
    assert c.get("/calls").status_code == 302
    assert login(app.test_client(), "super", "another-pass-1").status_code == 401


def test_csrf_rejected_without_token(csrf_app):
    c = csrf_app.test_client()
    r = c.post("/login", data={"username": "admin", "password": PASSWORD})
    assert r.status_code == 400 and b"CSRF" in r.data
    token = csrf_token(c.get("/login").get_data(as_text=True))
    r = c.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 302
    # every state-changing form of a logged-in user needs the token too
    for url, data in [("/settings/projects", {"key": "x", "name": "X"}), ("/logout", {}),
                      ("/language", {"lang": "ru"}), ("/account", {"action": "token"})]:
        r = c.post(url, data=data)
        assert r.status_code == 400, url
    page = c.get("/settings/projects").get_data(as_text=True)
    r = c.post("/settings/projects", data={"key": "x", "name": "X", "timezone": "UTC",
                                           "csrf_token": csrf_token(page)})
    assert r.status_code == 302, r.get_data(as_text=True)[-3000:]


def test_secure_session_cookie(db_url, session_factory, world):
    from webui import create_app

    cfg = make_config(db_url, web__secure_cookies="yes")
    app = create_app(cfg, session_factory)
    app.config["WTF_CSRF_ENABLED"] = False
    r = login(app.test_client(), "admin")
    cookie = r.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.parametrize("secret", ["", "CHANGE-ME-run-install.sh-or-generate-one", "short"])
def test_refuses_to_start_without_a_proper_secret(db_url, session_factory, secret):
    from webui import create_app

    cfg = make_config(db_url, web__secret_key=secret)
    with pytest.raises(ConfigError, match="secret_key"):
        create_app(cfg, session_factory)
    create_app(cfg, session_factory, testing=True)   # tests may run without one


def test_security_headers(app, client_for):
    r = client_for("admin").get("/calls")
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Frame-Options"] == "DENY"


def test_language_switch_and_user_language(app, session_factory):
    from calltracking.models import User
    from sqlalchemy import select

    c = app.test_client()
    login(c, "admin")
    assert "Call journal" in c.get("/calls").get_data(as_text=True)
    r = c.post("/language", data={"lang": "ru", "next": "/calls"})
    assert r.status_code == 302 and r.headers["Location"] == "/calls"
    page = c.get("/calls").get_data(as_text=True)
    assert "Журнал звонков" in page and 'lang="ru"' in page
    s = session_factory()
    assert s.scalars(select(User).where(User.username == "admin")).one().language == "ru"
    s.close()
    # a new session of that user starts in Russian
    c2 = app.test_client()
    login(c2, "admin")
    assert "Журнал звонков" in c2.get("/calls").get_data(as_text=True)
    assert c.post("/language", data={"lang": "de"}).status_code == 400


def test_catalogs_compile_from_po_sources(tmp_path):
    from babel.messages.mofile import read_mo

    from webui.i18n import compile_catalogs

    out = compile_catalogs(str(tmp_path))
    with open(f"{out}/ru/LC_MESSAGES/messages.mo", "rb") as fh:
        cat = read_mo(fh)
    assert cat.get("Call journal").string == "Журнал звонков"
    assert compile_catalogs(str(tmp_path)) == out       # cached by content hash


def test_error_pages_are_not_500(client_for):
    c = client_for("admin")
    assert c.get("/calls/999999").status_code == 404
    assert c.get("/settings/nonsense").status_code == 404
    assert c.get("/calls?after=garbage").status_code == 200   # shown as a filter error
    assert b"invalid page cursor" in c.get("/calls?after=garbage").data
    assert "Invalid date “yesterday”".encode() in c.get("/calls?from=yesterday").data
