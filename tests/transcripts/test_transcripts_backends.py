"""The backends on their own: the ``command`` contract with a small script standing in for an
engine (plain text, JSON, failure, timeout, bad output), faster-whisper's missing directory and
package, the choice by configuration."""
from __future__ import annotations

import os
import textwrap
import time
import wave

import pytest

from calltracking.config import ConfigError
from calltracking.transcripts import backends
from calltracking.transcripts.backends import CommandBackend, TranscriptError, make_backend
from support.config import make_config


@pytest.fixture
def wav(tmp_path):
    path = tmp_path / "side with space.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * 16000 * 3)   # 3 s of silence
    return path


def _script(tmp_path, body: str):
    path = tmp_path / "engine"
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return str(path)


def test_plain_text_is_one_phrase_over_the_file(tmp_path, wav):
    engine = _script(tmp_path, """\
        test -f "$1" || exit 9
        printf 'Hello,   I would like\\n a delivery <b>now</b>\\n'
        """)
    phrases = CommandBackend((engine,), 30).transcribe(str(wav))
    assert phrases == [backends.Phrase(0.0, 3.0, "Hello, I would like a delivery <b>now</b>")]


def test_json_phrases_and_the_wav_placeholder(tmp_path, wav):
    engine = _script(tmp_path, """\
        test "$1" = "--in" && test -f "$2" || exit 9
        echo '[{"start": 2.5, "end": 3.0, "text": " второй "}, {"start": 0.25, "end": 1.5, "text": "first"},'
        echo ' {"start": 1.6, "end": 1.7, "text": "  "}]'
        """)
    phrases = CommandBackend((engine, "--in", "{wav}"), 30).transcribe(str(wav))
    assert phrases == [backends.Phrase(0.25, 1.5, "first"), backends.Phrase(2.5, 3.0, "второй")]


def test_failure_names_the_program_status_and_message(tmp_path, wav):
    engine = _script(tmp_path, """\
        echo "loading model" >&2
        echo "error: no Russian model in /opt/models" >&2
        exit 4
        """)
    with pytest.raises(TranscriptError, match=r"engine exited with status 4: loading model / "
                                              r"error: no Russian model in /opt/models"):
        CommandBackend((engine,), 30).transcribe(str(wav))


def test_timeout_kills_the_program_and_its_children(tmp_path, wav):
    marker = tmp_path / "child-alive"
    engine = _script(tmp_path, f"""\
        (sleep 3; touch {marker}) &
        sleep 30
        """)
    started = time.monotonic()
    with pytest.raises(TranscriptError, match=r"took longer than 1 s \(\[transcripts\] timeout\); stopped"):
        CommandBackend((engine,), 1).transcribe(str(wav))
    assert time.monotonic() - started < 25
    time.sleep(3.5)
    assert not marker.exists()   # the background child was killed with the program


@pytest.mark.parametrize("out, message", [
    ('[{"start": 1}]', "lacks a numeric start/end or a text"),
    ('{"text": "x"}', "not a list of phrases"),
    ('[{"start": 3, "end": 1, "text": "x"}]', "start 3.0 after end 1.0"),
    ("[oops", "invalid JSON"),
])
def test_bad_json_is_a_clear_error(out, message):
    with pytest.raises(TranscriptError, match=message):
        backends.parse_output(out, 3.0)


def test_missing_program(wav):
    with pytest.raises(TranscriptError, match="cannot run /nonexistent/stt"):
        CommandBackend(("/nonexistent/stt",), 5).transcribe(str(wav))
    with pytest.raises(TranscriptError, match="command is empty"):
        CommandBackend((), 5)


def test_faster_whisper_missing_directory_is_named(tmp_path):
    missing = tmp_path / "models" / "whisper-small"
    cfg = make_config(transcripts__backend="faster-whisper", transcripts__model_dir=str(missing)).transcripts
    with pytest.raises(TranscriptError, match=f"model directory {missing} does not exist"):
        make_backend(cfg)
    assert str(missing) in backends.backend_problem(cfg)
    cfg = make_config(transcripts__backend="faster-whisper").transcripts
    with pytest.raises(TranscriptError, match=r"\[transcripts\] model_dir is empty"):
        make_backend(cfg)


def test_faster_whisper_missing_package_is_named(tmp_path):
    import importlib.util

    if importlib.util.find_spec("faster_whisper") is not None:
        pytest.skip("faster-whisper is installed in this environment")
    model = tmp_path / "model"
    model.mkdir()
    cfg = make_config(transcripts__backend="faster-whisper", transcripts__model_dir=str(model)).transcripts
    with pytest.raises(TranscriptError, match="package faster-whisper is not installed"):
        make_backend(cfg)


def test_configuration():
    assert make_backend(make_config().transcripts) is None          # none is the default
    cfg = make_config(transcripts__backend="command", transcripts__command='/opt/stt --model "/opt/m x" {wav}')
    assert cfg.transcripts.command == ("/opt/stt", "--model", "/opt/m x", "{wav}")
    assert backends.backend_problem(cfg.transcripts) == "the program /opt/stt is not found or not executable"
    with pytest.raises(ConfigError, match=r"\[transcripts\] backend: expected one of none, pocketsphinx"):
        make_config(transcripts__backend="vosk")
    with pytest.raises(ConfigError, match=r"\[transcripts\] command: cannot split"):
        make_config(transcripts__command='/opt/stt "unclosed')
    assert os.path.basename(make_backend(make_config(transcripts__backend="pocketsphinx").transcripts).name) == "pocketsphinx"
