"""The speech-to-text backends: one WAV file (16 kHz mono, 16-bit) -> phrases with times.

``[transcripts] backend`` chooses one (:func:`make_backend`):

* ``none``: nothing is transcribed (the default);
* ``pocketsphinx``: the PyPI package and the US English model it ships; phrases are the
  stretches of speech its voice activity detector finds, each decoded on its own;
* ``command``: a local program (``[transcripts] command``). It gets the WAV file's path (in
  place of ``{wav}``, else as the last argument) and prints either plain text (one phrase
  spanning the file) or JSON ``[{"start": s, "end": s, "text": "..."}]``. A non-zero exit, a
  run longer than ``[transcripts] timeout`` (the program and its children are killed) or
  output that is neither is a :class:`TranscriptError` saying which;
* ``faster-whisper``: the package with the CTranslate2 model in ``[transcripts] model_dir``;
  nothing is ever downloaded. The package is imported only when this backend is chosen; a
  missing package or directory is a :class:`TranscriptError` naming it.
"""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import wave
from dataclasses import dataclass
from typing import Optional

SAMPLE_RATE = 16000


#: process groups of the ``command`` programs running in this process (killed with it: see
#: :func:`kill_running`)
RUNNING: set[int] = set()


def kill_running() -> None:
    """Kill every ``command`` program this process started and that still runs, with its children."""
    for pgid in list(RUNNING):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        RUNNING.discard(pgid)


class TranscriptError(Exception):
    """A side could not be transcribed (the message says why; stored in ``transcripts.error``)."""


@dataclass(frozen=True)
class Phrase:
    """A stretch of speech: seconds from the start of the file, and what was said."""

    start: float
    end: float
    text: str


class Backend:
    """Turns one WAV file into phrases; ``name`` is stored with the transcript."""

    name = "none"

    def transcribe(self, wav_path: str) -> list[Phrase]:
        raise NotImplementedError


def _duration(wav_path: str) -> float:
    with wave.open(wav_path, "rb") as w:
        return w.getnframes() / float(w.getframerate() or 1)


class PocketsphinxBackend(Backend):
    """US English with the model the ``pocketsphinx`` package ships."""

    name = "pocketsphinx"

    def __init__(self):
        from pocketsphinx import Decoder, Segmenter

        self._decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")
        self._segmenter_cls = Segmenter

    def transcribe(self, wav_path: str) -> list[Phrase]:
        with wave.open(wav_path, "rb") as w:
            if w.getframerate() != SAMPLE_RATE or w.getnchannels() != 1 or w.getsampwidth() != 2:
                raise TranscriptError(f"{wav_path}: expected 16 kHz mono 16-bit WAV")
            pcm = w.readframes(w.getnframes())
        out = []
        segmenter = self._segmenter_cls(sample_rate=SAMPLE_RATE)
        for seg in segmenter.segment(io.BytesIO(pcm)):
            d = self._decoder
            d.start_utt()
            d.process_raw(seg.pcm, full_utt=True)
            d.end_utt()
            hyp = d.hyp()
            words = hyp.hypstr.strip() if hyp is not None else ""
            if words:
                out.append(Phrase(round(seg.start_time, 3), round(seg.end_time, 3), words))
        return out


class CommandBackend(Backend):
    """A local program: see the module's docstring for its contract."""

    name = "command"

    def __init__(self, argv: tuple, timeout: float):
        if not argv:
            raise TranscriptError("[transcripts] command is empty: name the program that transcribes a WAV file")
        self.argv, self.timeout = tuple(argv), timeout

    def _args(self, wav_path: str) -> list[str]:
        if any("{wav}" in a for a in self.argv):
            return [a.replace("{wav}", wav_path) for a in self.argv]
        return [*self.argv, wav_path]

    def transcribe(self, wav_path: str) -> list[Phrase]:
        args = self._args(wav_path)
        try:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True)
        except OSError as e:
            raise TranscriptError(f"cannot run {args[0]}: {e.strerror or e}") from None
        RUNNING.add(proc.pid)
        try:
            out, err = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)   # the program and anything it started
            except ProcessLookupError:
                pass
            proc.communicate()
            raise TranscriptError(f"{args[0]} took longer than {self.timeout:g} s ([transcripts] timeout); stopped") from None
        finally:
            RUNNING.discard(proc.pid)
        if proc.returncode != 0:
            tail = err.decode("utf-8", "replace").strip().splitlines()[-3:]
            raise TranscriptError(f"{args[0]} exited with status {proc.returncode}: {' / '.join(tail) or 'no message'}")
        return parse_output(out.decode("utf-8", "replace"), _duration(wav_path))


def parse_output(text: str, duration: float) -> list[Phrase]:
    """A program's output -> phrases: JSON ``[{"start", "end", "text"}]`` or plain text (one
    phrase from 0 to ``duration``; empty text: no phrase)."""
    s = text.strip()
    if not s:
        return []
    if s[0] in "[{":
        try:
            items = json.loads(s)
        except ValueError as e:
            raise TranscriptError(f"the program printed invalid JSON: {e}") from None
        if not isinstance(items, list):
            raise TranscriptError("the program printed JSON that is not a list of phrases")
        out = []
        for i, item in enumerate(items):
            try:
                start, end = float(item["start"]), float(item["end"])
                words = str(item["text"]).strip()
            except (TypeError, KeyError, ValueError):
                raise TranscriptError(f"phrase {i} of the program's JSON lacks a numeric start/end "
                                      "or a text") from None
            if not (0 <= start <= end):
                raise TranscriptError(f"phrase {i} of the program's JSON has start {start} after end {end}")
            if words:
                out.append(Phrase(round(start, 3), round(end, 3), words))
        return sorted(out, key=lambda p: p.start)
    return [Phrase(0.0, round(duration, 3), " ".join(s.split()))]


class FasterWhisperBackend(Backend):
    """faster-whisper on the CPU with the model in ``model_dir`` (``local_files_only``)."""

    name = "faster-whisper"

    def __init__(self, model_dir: str, language: str = ""):
        self._model = load_faster_whisper(model_dir)
        self.language = language or None

    def transcribe(self, wav_path: str) -> list[Phrase]:
        segments, _info = self._model.transcribe(wav_path, language=self.language, vad_filter=True)
        return [Phrase(round(s.start, 3), round(s.end, 3), s.text.strip()) for s in segments if s.text.strip()]


def faster_whisper_problem(model_dir: str) -> Optional[str]:
    """Why the faster-whisper backend cannot start (None: it can): no directory configured,
    the directory missing, or the package not installed."""
    if not model_dir:
        return "[transcripts] model_dir is empty: set it to the directory of a faster-whisper model"
    if not os.path.isdir(model_dir):
        return (f"the faster-whisper model directory {model_dir} does not exist ([transcripts] model_dir); "
                "copy a CTranslate2 model there (nothing is downloaded)")
    import importlib.util

    if importlib.util.find_spec("faster_whisper") is None:
        return "the Python package faster-whisper is not installed (pip install faster-whisper in the venv)"
    return None


def load_faster_whisper(model_dir: str):
    problem = faster_whisper_problem(model_dir)
    if problem:
        raise TranscriptError(problem)
    from faster_whisper import WhisperModel   # only when this backend is chosen

    try:
        return WhisperModel(model_dir, device="cpu", compute_type="int8", local_files_only=True)
    except Exception as e:
        raise TranscriptError(f"cannot load the faster-whisper model in {model_dir}: {type(e).__name__}: {e}") from None


def make_backend(cfg) -> Optional[Backend]:
    """The backend ``cfg`` (a :class:`~calltracking.config.TranscriptsConfig`) names; None for
    ``none``. Raises :class:`TranscriptError` when it cannot start."""
    if cfg.backend == "none":
        return None
    if cfg.backend == "pocketsphinx":
        return PocketsphinxBackend()
    if cfg.backend == "command":
        return CommandBackend(cfg.command, cfg.timeout)
    if cfg.backend == "faster-whisper":
        return FasterWhisperBackend(cfg.model_dir, cfg.language)
    raise TranscriptError(f"unknown backend {cfg.backend!r}")


def backend_problem(cfg) -> Optional[str]:
    """What stops the configured backend from working, found without transcribing (for
    ``calltracking doctor``); None when nothing does."""
    import importlib.util
    import shutil

    if cfg.backend == "pocketsphinx" and importlib.util.find_spec("pocketsphinx") is None:
        return "the Python package pocketsphinx is not installed"
    if cfg.backend == "command":
        if not cfg.command:
            return "[transcripts] command is empty"
        if shutil.which(cfg.command[0]) is None:
            return f"the program {cfg.command[0]} is not found or not executable"
    if cfg.backend == "faster-whisper":
        return faster_whisper_problem(cfg.model_dir)
    return None
