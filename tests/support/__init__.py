"""The test helpers, one module per thing they stand in for or start (``from support.web import login``).

- ``config``: :func:`~support.config.make_config`, the configuration of every component a test starts;
- ``fixtures``: where the recorded fixtures are, and what the recordings contain;
- ``postgres``: the throw-away PostgreSQL cluster (``CALLTRACKING_TEST_DB=postgresql``);
- ``net``, ``polling``: free loopback ports, listening sockets; waiting for a condition;
- FastAGI: ``fastagi_client`` (Asterisk's side of the protocol), ``agi_server`` (our server in a thread);
- AMI: ``ami_server`` (a fake Asterisk serving recorded frames), ``ami_streams`` (streams built
  frame by frame, bursts of copied calls), ``ami_restarts`` (the restart recordings),
  ``listener`` (the real AMI listener in a thread), ``replay`` (a stream straight through the
  interpreter);
- the web UI: ``web`` (users, calls, the app served for real, raw HTTP), ``dni`` (a project with a
  pool, the asyncio DNI server), ``browser`` (Debian's Chromium for Playwright), ``report_data``
  (the reports' known data set);
- a real Asterisk 22: ``asterisk`` (a private instance), ``ami_client`` (the tests' own AMI
  session), ``live_world`` and ``live_verdict`` (the live suite's PBX, calls and checks).
"""
