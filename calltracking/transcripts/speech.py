"""Generated conversations: lines spoken by ``espeak-ng`` placed on a two-channel recording.

Used by the demo (its recordings), ``bench/transcribe.py`` and the tests: a dialogue is a list
of ``(side, start seconds, text)``; the caller is the left channel and the operator the right
one, as MixMonitor's stereo recordings are read (:mod:`calltracking.jobs.recording_audio`).
"""
from __future__ import annotations

import io
import subprocess
from pathlib import Path

VOICE = "en-us"
SPEED = 130   # words per minute: pocketsphinx recognises espeak-ng's voice better slowly


class SpeechError(RuntimeError):
    """espeak-ng is missing or failed."""


def say(text: str, rate: int = 16000, voice: str = VOICE, speed: int = SPEED):
    """``text`` spoken by espeak-ng, as a pydub mono segment at ``rate``."""
    from pydub import AudioSegment

    try:
        wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
                             capture_output=True, check=True, timeout=60).stdout
    except FileNotFoundError:
        raise SpeechError("espeak-ng is not installed (apt-get install espeak-ng)") from None
    except subprocess.CalledProcessError as e:
        raise SpeechError(f"espeak-ng failed: {e.stderr.decode(errors='replace').strip()}") from None
    return AudioSegment.from_file(io.BytesIO(wav), format="wav").set_channels(1).set_frame_rate(rate)


def dialogue(lines: list[tuple[str, float, str]], rate: int = 16000, tail: float = 1.0):
    """A stereo pydub segment: each ``(side, start, text)`` spoken on its channel (``caller``
    left, ``operator`` right) from ``start`` seconds."""
    from pydub import AudioSegment

    spoken = [(side, int(start * 1000), say(text, rate)) for side, start, text in lines]
    length = max((start + len(seg) for _s, start, seg in spoken), default=0) + int(tail * 1000)
    tracks = {"caller": AudioSegment.silent(length, rate), "operator": AudioSegment.silent(length, rate)}
    for side, start, seg in spoken:
        tracks[side] = tracks[side].overlay(seg, position=start)
    left, right = (tracks[k].set_sample_width(2) for k in ("caller", "operator"))
    return AudioSegment.from_mono_audiosegments(left, right)


def write_dialogue(path: Path | str, lines: list[tuple[str, float, str]], rate: int = 16000,
                   fmt: str = "wav", tail: float = 1.0) -> Path:
    """:func:`dialogue` written to ``path``; returns it."""
    dialogue(lines, rate, tail).export(str(path), format=fmt)
    return Path(path)
