"""``CT_WHISPER`` through a real FastAGI socket: the file when it exists, '' otherwise."""
from __future__ import annotations

import pytest

from support.config import make_config
from support.fastagi_client import call, headers


@pytest.fixture
def whisper_dir(tmp_path):
    d = tmp_path / "whisper"
    d.mkdir()
    return d


@pytest.fixture
def config(db_url, whisper_dir):
    return make_config(db_url, asterisk__whisper_dir=whisper_dir)


def _route(agi, did, linkedid):
    return call(agi.port, headers(args=(did, linkedid))).vars


def test_route_names_the_whisper_only_when_its_file_exists(agi, data, whisper_dir):
    google, brand = data["google"], data["brand"]
    v = _route(agi, "74950001001", "w.1")
    assert v["CT_WHISPER"] == "" and v["CT_STATUS"] == "ok"           # no file: no whisper
    (whisper_dir / f"s{google}.wav").write_bytes(b"RIFF")
    assert _route(agi, "74950001001", "w.2")["CT_WHISPER"] == str(whisper_dir / f"s{google}")
    (whisper_dir / f"s{google}-c{brand}.wav").write_bytes(b"RIFF")
    assert _route(agi, "74950001001", "w.3")["CT_WHISPER"] == str(whisper_dir / f"s{google}-c{brand}")
    # another source's call gets none, and an unknown DID none
    assert _route(agi, "74950001002", "w.4")["CT_WHISPER"] == ""
    assert _route(agi, "74959999999", "w.5")["CT_WHISPER"] == ""
    # lookup of the routed call answers the same file
    lk = call(agi.port, headers("lookup", args=("w.3",))).vars
    assert lk["CT_WHISPER"] == str(whisper_dir / f"s{google}-c{brand}")


def test_an_unreadable_whisper_directory_never_fails_the_call(agi, data, whisper_dir):
    whisper_dir.rmdir()
    whisper_dir.write_text("a file where the directory should be")
    v = _route(agi, "74950001001", "w.9")
    assert v["CT_STATUS"] == "ok" and v["CT_WHISPER"] == "" and v["CT_QUEUE"] == "sales"


def test_a_valid_promo_code_names_its_sources_whisper(agi, data, whisper_dir):
    (whisper_dir / f"s{data['billboard']}.wav").write_bytes(b"RIFF")
    assert _route(agi, "74950001001", "w.20")["CT_WHISPER"] == ""          # Google Ads: no file
    v = call(agi.port, headers("promo", args=("w.20", "4242"))).vars
    assert v["CT_PROMO"] == "valid" and v["CT_SOURCE"] == "Billboard"
    assert v["CT_WHISPER"] == str(whisper_dir / f"s{data['billboard']}")
    assert "CT_WHISPER" not in call(agi.port, headers("promo", args=("w.20", "0000"))).vars
