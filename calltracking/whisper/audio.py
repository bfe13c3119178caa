"""Whisper audio: 8 kHz, mono, 16-bit WAV files, the format Asterisk's ``Playback()`` reads
without transcoding on a telephone call.

Speech is synthesised by Debian's ``espeak-ng`` (the text goes in on stdin, never as an
argument); an uploaded recording (any format ffmpeg reads) is converted with pydub. Every file
is written to a temporary name and renamed, so Asterisk never plays half a file, with mode 0640:
the owner and its group (``asterisk``, see install.sh) read it, nobody else.
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from pydub import AudioSegment
from pydub.exceptions import CouldntDecodeError

from calltracking.enums import WhisperVoice

RATE = 8000
#: Longest whisper: the caller waits while the operator hears it.
MAX_SECONDS = 15.0
#: Largest upload accepted (a 15 s WAV at 48 kHz stereo is 2.9 MB).
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
FILE_MODE = 0o640
DIR_MODE = 0o750
ESPEAK = "espeak-ng"
_ESPEAK_TIMEOUT = 30


class WhisperAudioError(Exception):
    """Audio could not be made (the message says why)."""


def espeak_path() -> str:
    """The ``espeak-ng`` program; ``''`` when it is not installed."""
    return shutil.which(ESPEAK) or ""


def synthesize(text: str, voice: str) -> AudioSegment:
    """``text`` spoken by ``espeak-ng`` with ``voice`` (:class:`WhisperVoice`), as 8 kHz mono."""
    voice = WhisperVoice(voice)
    exe = espeak_path()
    if not exe:
        raise WhisperAudioError("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory(prefix="ct-whisper-") as tmp:
        out = os.path.join(tmp, "speech.wav")
        try:
            r = subprocess.run([exe, "-v", voice.value, "-b", "1", "-w", out, "--stdin"],
                               input=text.encode("utf-8"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=_ESPEAK_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise WhisperAudioError(f"espeak-ng failed: {e}") from None
        if r.returncode != 0 or not os.path.exists(out):
            raise WhisperAudioError(f"espeak-ng exited {r.returncode}: "
                                    f"{r.stderr.decode('utf-8', 'replace').strip()[:200]}")
        return telephone(AudioSegment.from_wav(out))


def from_upload(data: bytes) -> AudioSegment:
    """An uploaded recording (WAV, MP3, OGG… whatever ffmpeg reads) as 8 kHz mono."""
    if not data:
        raise WhisperAudioError("the file is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise WhisperAudioError(f"the file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    try:
        seg = AudioSegment.from_file(io.BytesIO(data))
    except (CouldntDecodeError, IndexError, OSError, ValueError) as e:
        raise WhisperAudioError(f"not an audio file ffmpeg can read ({str(e).splitlines()[0][:120]})") from None
    if seg.duration_seconds > MAX_SECONDS:
        raise WhisperAudioError(f"longer than {MAX_SECONDS:.0f} s ({seg.duration_seconds:.1f} s)")
    if seg.duration_seconds <= 0:
        raise WhisperAudioError("the recording has no sound")
    return telephone(seg)


def read_wav(path: Path) -> AudioSegment:
    """A WAV file this module wrote."""
    return AudioSegment.from_wav(path)


def telephone(seg: AudioSegment) -> AudioSegment:
    """8 kHz, one channel, 16-bit samples, at most :data:`MAX_SECONDS`."""
    seg = seg.set_channels(1).set_frame_rate(RATE).set_sample_width(2)
    return seg[: int(MAX_SECONDS * 1000)]


def write(seg: AudioSegment, path: Path) -> None:
    """Write ``seg`` as a WAV file at ``path`` (atomically, mode :data:`FILE_MODE`)."""
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".wav", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            seg.export(fh, format="wav")
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
