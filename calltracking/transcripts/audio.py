"""A call's recording -> one WAV file per side, the way the backends read them.

Sides are those of :func:`calltracking.jobs.recording_audio.sides`: a stereo file is caller on
the left and operator on the right; a pair of files (``-in``/``-out``) is caller and operator;
a mono mix is one side, ``mixed``. Each side is written as 16 kHz mono 16-bit WAV into a
directory the caller gives (and removes).
"""
from __future__ import annotations

from pathlib import Path

from calltracking.enums import TranscriptSide
from calltracking.jobs.recording_audio import sides
from calltracking.transcripts.backends import SAMPLE_RATE


def side_files(files: list[Path], workdir: Path) -> list[tuple[str, Path]]:
    """[(side, wav path)] for the recording ``files`` (one file, or a caller/operator pair)."""
    audio, caller, operator = sides([Path(f) for f in files])
    parts = ([(TranscriptSide.CALLER.value, caller), (TranscriptSide.OPERATOR.value, operator)]
             if caller is not None else [(TranscriptSide.MIXED.value, audio)])
    out = []
    for side, seg in parts:
        path = Path(workdir) / f"{side}.wav"
        seg.set_channels(1).set_frame_rate(SAMPLE_RATE).set_sample_width(2).export(str(path), format="wav")
        out.append((side, path))
    return out
