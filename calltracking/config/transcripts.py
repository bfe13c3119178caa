"""The ``[transcripts]`` section: which speech-to-text backend transcribes recorded calls, and
how the job runs it (:mod:`calltracking.transcripts`, :mod:`calltracking.jobs.transcripts`)."""
from __future__ import annotations

from dataclasses import dataclass

from calltracking.config.options import choice, command_line, integer, opt, text

BACKENDS = ("none", "pocketsphinx", "command", "faster-whisper")


@dataclass(frozen=True)
class TranscriptsConfig:
    backend: str = opt("none", choice(*BACKENDS), "Speech-to-text backend: none, pocketsphinx "
                       "(English, model shipped with the package), command (a local program), "
                       "faster-whisper (a model directory you provide)")
    command: tuple = opt((), command_line, "The program of the 'command' backend and its arguments; "
                         "{wav} is replaced by the WAV file's path (else it is added last)")
    timeout: int = opt(600, integer(1, 86400), "Seconds one side of one call may take before the "
                       "backend is stopped and the call counted as failed")
    model_dir: str = opt("", text, "faster-whisper: the directory of a CTranslate2 model "
                         "(nothing is downloaded)")
    language: str = opt("", text, "faster-whisper: language code (en, ru); empty: detected")
    workers: int = opt(1, integer(1, 32), "Worker processes transcribing at once")
    nice: int = opt(19, integer(0, 19), "CPU niceness of the worker processes (19: lowest priority)")
    max_attempts: int = opt(3, integer(1, 100), "Attempts per call before a failure is final")
    greeting_seconds: int = opt(10, integer(1, 600), "A greeting list counts when the operator says "
                                "one of its words within this many seconds of the recording's start")
