"""The call card's dialogue in Debian's Chromium: a recorded call transcribed from espeak-ng
speech by pocketsphinx; clicking a phrase's time moves the player there (under the page's
Content-Security-Policy) and highlights the phrase being heard."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from calltracking import entities as svc
from calltracking.db import session_scope
from calltracking.jobs import transcripts as job
from calltracking.models import RecordingInfo, TranscriptPhrase
from calltracking.transcripts.speech import write_dialogue
from support.browser import chromium, log_in
from support.config import make_config
from support.web import LiveServer, add_call

pytestmark = [pytest.mark.db, pytest.mark.browser]
PASSWORD = "correct-horse-battery"


def test_click_a_phrase_seeks_the_player(db_url, session_factory, tmp_path):
    rec = tmp_path / "monitor"
    rec.mkdir()
    wav = write_dialogue(rec / "call.wav", [("operator", 0.5, "good morning this is the shop"),
                                            ("caller", 3.5, "the price is too high"),
                                            ("caller", 9.5, "i would like to order")])
    with session_scope(session_factory) as s:
        p = svc.add_project(s, "acme", "ACME")
        svc.add_user(s, "admin", PASSWORD, "admin")
        s.flush()
        pid = p.id
    cid = add_call(session_factory, pid, "1795391970.7", recording_file=str(wav))
    with session_scope(session_factory) as s:
        s.add(RecordingInfo(call_id=cid, status="ok", file=str(wav), format="wav", source_files="[]", error="",
                            attempts=1))
    cfg = make_config(db_url, transcripts__backend="pocketsphinx", recordings__dir=str(rec))
    assert job.transcribe_call_now(cfg, session_factory, cid, [str(wav)])
    with session_scope(session_factory) as s:
        order = s.scalars(select(TranscriptPhrase).where(TranscriptPhrase.text == "i would like to order")).one()
        start = float(order.start_seconds)
    assert 9.3 <= start <= 9.8
    live = LiveServer(db_url, session_factory, config={"recordings__dir": str(rec)})
    try:
        with chromium() as browser:
            page = browser.new_context().new_page()
            errors, failed = [], []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
            log_in(page, live.url, "admin", PASSWORD)
            page.goto(f"{live.url}/calls/{cid}")
            assert "the price is too high" in page.inner_text("#dialogue .side-caller >> nth=0")
            page.click(f'#dialogue button.seek[data-start="{start:.2f}"]')
            page.wait_for_function("t => { const a = document.getElementById('recording');"
                                   " return a.readyState > 0 && a.currentTime >= t; }", arg=start, timeout=15000)
            at = page.evaluate("document.getElementById('recording').currentTime")
            assert start <= at < start + 3.0, at
            page.wait_for_selector("#dialogue li.playing")
            assert "i would like to order" in page.inner_text("#dialogue li.playing")
            assert not [u for u in failed if "/static/" in u or "/recording" in u], failed
            assert [e for e in errors if not e.startswith("Failed to load resource")] == []
    finally:
        live.close()
