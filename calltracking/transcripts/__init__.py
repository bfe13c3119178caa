"""Transcripts of recorded calls and keyword spotting, on the PBX (no audio leaves it).

* :mod:`.backends`: the speech-to-text backends (``[transcripts] backend``): ``none``,
  ``pocketsphinx``, ``command``, ``faster-whisper``; each turns one WAV file into phrases;
* :mod:`.audio`: a recording -> one 16 kHz mono WAV per side (caller, operator, or mixed);
* :mod:`.store`: a transcript and its phrases written, a failure recorded;
* :mod:`.search`: the one transcript search (SQLite FTS5, PostgreSQL full text);
* :mod:`.keywords`: word lists -> mentions, tags and "the operator said the greeting";
* :mod:`.mentions`: the mentions report per source and per operator.

The job that runs them: :mod:`calltracking.jobs.transcripts`.
"""
