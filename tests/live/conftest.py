"""The live suite: a real Asterisk 22 (``ASTERISK_PREFIX``, default ``/opt/asterisk``) driven
through AMI ``Originate``, with ``calltracking run`` recording what happens.

Every test here is marked ``live``. ``tests/run.sh`` leaves them out; ``tests/live.sh`` runs
them on SQLite and PostgreSQL. Without an Asterisk they are skipped, each saying why.
"""
from __future__ import annotations

import pytest

from support.asterisk import missing_reason
from support.live_world import World, seed


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/live/" in str(item.fspath):
            item.add_marker(pytest.mark.live)


@pytest.fixture(scope="session")
def world(tmp_path_factory, db_factory):
    """One Asterisk and one ``calltracking run`` for the whole live session."""
    reason = missing_reason()
    if reason:
        pytest.skip(f"live suite did not run: {reason}")
    url = db_factory.migrated()
    seed(url)
    w = World(tmp_path_factory.mktemp("live"), url)
    w.write_config()
    try:
        w.start_asterisk()
        w.start_run()
        yield w
    finally:
        w.close()
