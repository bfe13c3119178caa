"""Qualified ("target") calls: per-project target rules and predefined tags.

:mod:`~calltracking.qualify.rules` decides, as a pure function, what the rules make of one call;
:mod:`~calltracking.qualify.apply` applies them to finished calls (the scheduler's ``qualify``
job) and again to a date range on demand; :mod:`~calltracking.qualify.settings` is what a valid
rule is; :mod:`~calltracking.qualify.tags` the predefined tags (colour, description, picker).
"""
