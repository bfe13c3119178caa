"""The demo's transcripts: a handful of its recorded calls get generated English speech
(espeak-ng, :mod:`calltracking.transcripts.speech`) instead of tones before the recordings job
measures them, are then transcribed by pocketsphinx in this process, and the project gets
keyword lists (pricing, delivery, orders, the greeting) whose tags and mentions follow. Four
calls took 5-12 s on the shared 2-core machine (load average about 3) in
tests/transcripts/test_transcripts_demo.py."""
from __future__ import annotations

import dataclasses
import time

from sqlalchemy import select

from calltracking.jobs.transcripts import transcribe_call_now
from calltracking.models import Call, Project, RecordingInfo
from calltracking.transcripts.lists import save_list
from calltracking.transcripts.speech import SpeechError, write_dialogue

#: the lists of the demo project: name, words, tag, greeting
LISTS = [("Pricing", "pric*\ndiscount\nцен*", "price question", False),
         ("Delivery", "deliver*\nдостав*", "delivery", False),
         ("Orders", "order*\nзаказ*", "deal", False),
         ("Greeting", "morning\ngood afternoon\nздравствуйте", "", True)]
#: dialogues pocketsphinx's English model hears well from espeak-ng (seconds from the start)
DIALOGUES = [
    [("operator", 0.5, "good morning this is the shop"), ("caller", 3.5, "the price is too high"),
     ("operator", 6.5, "we have a discount"), ("caller", 9.5, "i would like to order")],
    [("operator", 0.5, "good morning this is the shop"), ("caller", 3.5, "can you deliver it tomorrow"),
     ("operator", 6.5, "the order is ready")],
    [("operator", 0.5, "let me check the order"), ("caller", 3.5, "i am calling about the order"),
     ("operator", 6.5, "is there anything else")],
    [("caller", 0.5, "what is the price"), ("operator", 3.5, "we have the price list"),
     ("caller", 6.5, "i would like to order")],
]


def speak_recordings(session_factory, project_key: str = "demo", count: int = 4) -> list[int]:
    """Replace the recordings of the ``count`` newest recorded calls of the project with
    generated speech (before the recordings job measures them, so their measures are those of
    the speech). Returns their call ids; [] when espeak-ng is missing."""
    with session_factory() as s:
        rows = s.execute(select(Call.id, Call.recording_file).join(Project, Project.id == Call.project_id)
                         .where(Project.key == project_key, Call.recording_file != "")
                         .order_by(Call.started_at.desc()).limit(count)).all()
    done = []
    for i, (call_id, path) in enumerate(rows):
        try:
            write_dialogue(path, DIALOGUES[i % len(DIALOGUES)])
        except SpeechError:
            return []
        done.append(call_id)
    return done


def seed_transcripts(config, session_factory, call_ids: list[int], project_key: str = "demo") -> dict:
    """The keyword lists of the project, then the calls ``call_ids`` (made by
    :func:`speak_recordings`, measured by the recordings job) transcribed with pocketsphinx in
    this process. Returns ``{"calls", "seconds", "error"}``."""
    started = time.monotonic()
    with session_factory() as s:
        project = s.scalar(select(Project).where(Project.key == project_key))
        if project is None:
            return {"calls": 0, "seconds": 0.0, "error": f"no project {project_key}"}
        for name, words, tag, greeting in LISTS:
            save_list(s, project.id, name, words, tag, greeting)
        files = dict(s.execute(select(RecordingInfo.call_id, RecordingInfo.file)
                               .where(RecordingInfo.call_id.in_(call_ids), RecordingInfo.status == "ok")).all())
        s.commit()
    if not call_ids:
        return {"calls": 0, "seconds": 0.0, "error": "espeak-ng is not installed (apt-get install espeak-ng)"}
    cfg = dataclasses.replace(config, transcripts=dataclasses.replace(config.transcripts, backend="pocketsphinx"))
    done = sum(transcribe_call_now(cfg, session_factory, cid, [files[cid]]) for cid in call_ids if cid in files)
    return {"calls": done, "seconds": time.monotonic() - started, "error": ""}
