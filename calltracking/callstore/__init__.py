"""Interpreted call state -> the database, for the AMI listener and ``ami rebuild``.

:mod:`~.ingest` (the ``Processor``: a batch of queued events checked, interpreted and written,
the search for an event the database refuses), :mod:`~.quarantine` (bad events set aside,
counted, logged), :mod:`~.store` (``CallStore``: one transaction per batch; the ``calls`` and
``call_legs`` rows), :mod:`~.outbound` (``outbound_calls``), :mod:`~.operators` (who a phone or
queue member is), :mod:`~.events` (stored events and the live-call index),
:mod:`~.listener_state` (``ami_listener_state``), :mod:`~.rows` (value conversions, upsert).
"""
