"""Dynamic number insertion: which pool number a website visitor sees, and for how long.

- :mod:`~calltracking.dni.request` — what the snippet sends and gets back (validation);
- :mod:`~calltracking.dni.assign` — the assignment: session, pool choice, reservation;
- :mod:`~calltracking.dni.new_visitors` — the same for new visitors, batched in raw SQL;
- :mod:`~calltracking.dni.holds` — provisional holds, heartbeats, release, pool status;
- :mod:`~calltracking.dni.projects` — a project's DNI settings, cached;
- :mod:`~calltracking.dni.statements`, :mod:`~calltracking.dni.transactions` — the SQL and
  the transaction discipline of the general path;
- :mod:`~calltracking.dni.useragent` — device, OS, browser and bots (ua-parser);
- :mod:`~calltracking.dni.guard` — abuse limits of the public endpoints;
- :mod:`~calltracking.dni.pool_sizing` — measured traffic and the pool size it needs;
- :mod:`~calltracking.dni.snippet_pings` — where and when the snippet runs (the setup page's check).
"""
