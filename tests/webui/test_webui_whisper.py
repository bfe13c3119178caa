"""Settings → Whisper: admin only, the project's and a source's settings make the files (real
espeak-ng, real ffmpeg), the player serves what Asterisk plays, hostile names are escaped,
errors are shown in the user's language; CSRF is required."""
from __future__ import annotations

import io
import subprocess
import wave

import pytest

from calltracking import entities as svc
from calltracking.models import WhisperProject
from support.config import make_config
from support.web import HOSTILE_NAMES, csrf_token, login
from webui import create_app

pytestmark = pytest.mark.db


@pytest.fixture
def wdir(tmp_path):
    return tmp_path / "whisper"


@pytest.fixture
def wapp(db_url, session_factory, world, wdir):
    app = create_app(make_config(db_url, asterisk__whisper_dir=wdir), session_factory, testing=True)
    app.config["WTF_CSRF_ENABLED"] = False
    return app


@pytest.fixture
def admin(wapp):
    c = wapp.test_client()
    assert login(c, "admin").status_code == 302
    return c


def _wav(data: bytes) -> tuple[int, int, float]:
    with wave.open(io.BytesIO(data)) as w:
        return w.getframerate(), w.getnchannels(), w.getnframes() / w.getframerate()


def test_only_admins(wapp, world):
    for user in ("super", "oper"):
        c = wapp.test_client()
        login(c, user)
        assert c.get("/settings/whisper").status_code == 403
        assert c.post(f"/settings/whisper/{world['project']}", data={"enabled": "on"}).status_code == 403
        assert c.get(f"/settings/whisper/play/{world['source']}").status_code == 403


def test_project_on_makes_the_files_and_the_player_plays_them(admin, world, wdir):
    page = admin.get("/settings/whisper").get_data(as_text=True)
    assert 'id="whisper-project"' in page and "no file" in page
    assert admin.get(f"/settings/whisper/play/{world['source']}").status_code == 404
    r = admin.post(f"/settings/whisper/{world['project']}",
                   data={"enabled": "on", "template": "{source}, {campaign}", "voice": "en"})
    assert r.status_code == 302
    assert (wdir / f"s{world['source']}-c{world['campaign']}.wav").exists()
    page = admin.get(f"/settings/whisper?project={world['project']}").get_data(as_text=True)
    assert "«Google Ads, brand»" in page and "<audio controls" in page
    play = admin.get(f"/settings/whisper/play/{world['source']}")
    assert play.status_code == 200 and play.mimetype == "audio/wav"
    rate, channels, seconds = _wav(play.data)
    assert (rate, channels) == (8000, 1) and seconds > 1.0
    # the source turned off: its files go
    admin.post(f"/settings/whisper/source/{world['source']}", data={"text": ""})
    assert not list(wdir.glob("s*.wav"))
    assert admin.get(f"/settings/whisper/play/{world['source']}").status_code == 404


def test_upload_replaces_speech(admin, world, wdir, tmp_path):
    admin.post(f"/settings/whisper/{world['project']}", data={"enabled": "on", "template": "{source}", "voice": "ru"})
    tone = tmp_path / "t.ogg"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=48000:duration=3", "-ac", "2", str(tone)], check=True)
    r = admin.post(f"/settings/whisper/source/{world['source']}",
                   data={"enabled": "on", "text": "", "recording": (io.BytesIO(tone.read_bytes()), "t.ogg")},
                   content_type="multipart/form-data")
    assert r.status_code == 302
    rate, channels, seconds = _wav(admin.get(f"/settings/whisper/play/{world['source']}").data)
    assert (rate, channels) == (8000, 1) and 2.9 < seconds < 3.1
    assert "uploaded recording" in admin.get("/settings/whisper").get_data(as_text=True)
    bad = admin.post(f"/settings/whisper/source/{world['source']}",
                     data={"enabled": "on", "recording": (io.BytesIO(b"MZ not audio"), "x.exe")},
                     content_type="multipart/form-data", follow_redirects=True)
    assert "cannot be played to the operator" in bad.get_data(as_text=True)
    assert 2.9 < _wav(admin.get(f"/settings/whisper/play/{world['source']}").data)[2] < 3.1   # kept


def test_bad_template_is_refused_in_russian(admin, world, session_factory):
    admin.post("/language", data={"lang": "ru", "next": "/settings/whisper"})
    page = admin.post(f"/settings/whisper/{world['project']}", data={"enabled": "on", "template": "{caller}"},
                      follow_redirects=True).get_data(as_text=True)
    assert "В тексте можно использовать только" in page and "Подсказка оператору" in page
    assert "The text may use only" not in page and "Whisper on for this project" not in page
    with session_factory() as s:
        assert s.query(WhisperProject).count() == 0


def test_hostile_source_names_are_escaped(admin, world, session_factory):
    with session_factory() as s:
        p = svc.get_project(s, "acme")
        for name in HOSTILE_NAMES:
            svc.add_source(s, p, name)
        s.commit()
    admin.post(f"/settings/whisper/{world['project']}", data={"enabled": "on", "template": "{source}"})
    page = admin.get("/settings/whisper").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page


def test_csrf_is_required(db_url, session_factory, world, wdir):
    app = create_app(make_config(db_url, asterisk__whisper_dir=wdir), session_factory, testing=True)
    c = app.test_client()
    login_page = c.get("/login").get_data(as_text=True)
    c.post("/login", data={"username": "admin", "password": "correct-horse-battery",
                           "csrf_token": csrf_token(login_page)})
    assert c.post(f"/settings/whisper/{world['project']}", data={"enabled": "on"}).status_code == 400
    token = csrf_token(c.get("/settings/whisper").get_data(as_text=True))
    assert c.post(f"/settings/whisper/{world['project']}",
                  data={"enabled": "on", "template": "", "voice": "en", "csrf_token": token}).status_code == 302
