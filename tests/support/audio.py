"""Generated audio for the recording tests: a track of tone "speech" at known times."""
from __future__ import annotations

from pydub import AudioSegment
from pydub.generators import Sine


def speech_track(spans, total_ms: int, freq: int = 440, rate: int = 8000) -> AudioSegment:
    """``total_ms`` of 16-bit mono audio at ``rate`` Hz: a ``freq`` Hz tone (-18 dBFS) over each
    ``(start_ms, end_ms)`` of ``spans`` (in order, not overlapping), silence elsewhere."""
    seg = AudioSegment.silent(0, frame_rate=rate)
    pos = 0
    for a, b in spans:
        seg += AudioSegment.silent(a - pos, frame_rate=rate)
        seg += Sine(freq).to_audio_segment(b - a, volume=-18).set_frame_rate(rate).set_channels(1)
        pos = b
    seg += AudioSegment.silent(total_ms - pos, frame_rate=rate)
    return seg.set_sample_width(2)
