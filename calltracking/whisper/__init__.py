"""The whisper: a short announcement the operator hears before a call is connected.

:mod:`~.rules` builds the text from the project's template (or the source's own text) and
names the file of each source and campaign; :mod:`~.audio` makes 8 kHz mono WAV files that
Asterisk plays (speech synthesised with ``espeak-ng``, or an uploaded recording converted with
ffmpeg); :mod:`~.files` writes the files a configuration needs into ``[asterisk] whisper_dir``
and removes the others. Files are made when the settings change, by ``calltracking whisper
sync`` and by the scheduler's ``whisper`` job, never during a call: the ``route`` hook only
checks that the file exists (:func:`~.rules.lookup`).
"""
