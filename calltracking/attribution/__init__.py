"""Attribution: which project, source and campaign a call belongs to, and which queue gets it.

- :mod:`.lookup`: how a call is attributed (:func:`~.lookup.attribute`), first or repeat
  caller (:func:`~.lookup.is_first_call`), time to call: the ORM path (AMI listener, web UI);
- :mod:`.fast`: the same rules on the FastAGI hot path (the ``route`` hook), on
  :mod:`.catalogue` (every DID's mapping and the routing rules, in memory) and plain SQL
  (:mod:`.rawsql`); ``tests/agi/test_agi_core.py`` proves the two paths agree;
- :mod:`.routing`: the routing rules (its docstring is the spec), the default queue;
- :mod:`.promo`: promo codes shown by the website snippet;
- :mod:`.numbers_csv`: tracking numbers from and to CSV.
"""
