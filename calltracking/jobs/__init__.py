"""Background work: the scheduler and its jobs — notifications, integrations, recordings.

* ``scheduler``: the job table (name, interval, function), the runner and its lease;
  ``doctor``: the jobs' ``calltracking doctor`` checks.
* Deliveries, from top to bottom: ``rules`` (which deliveries each notification rule queues,
  and when) -> ``notify`` (what an e-mail or SMS/chat webhook says) and ``integrations`` (the
  CRM webhook and GA4 requests) -> ``outbox`` (the ``deliveries`` table: queue, retries, dead
  letters) -> ``transport`` (HTTP to public addresses only, SMTP, the signature).
* Recordings: ``recordings`` (the job: find, measure, convert, record — crash-safe),
  ``recording_files`` (names, the finder, what may be touched, what the web UI serves),
  ``recording_audio`` (talk time, talk ratio, longest silence), ``recording_retention``.
* Transcripts: ``transcripts`` (the job: recorded calls transcribed in a pool of low-priority
  worker processes; the rules in :mod:`calltracking.transcripts`).
"""
