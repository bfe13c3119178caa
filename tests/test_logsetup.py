"""Log lines carry the call's Linkedid: given explicitly, or from the current task's context."""
import asyncio
import io
import json
import logging

from calltracking.config import load_config
import pytest

from calltracking.logsetup import CURRENT_LINKEDID, setup_logging


@pytest.fixture(autouse=True)
def restore_root_logger():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def _config(tmp_path, fmt):
    return load_config(tmp_path / "none.ini", env={"CALLTRACKING_LOG_FORMAT": fmt}, require_file=False)


def test_json_lines_with_linkedid(tmp_path):
    out = io.StringIO()
    setup_logging(_config(tmp_path, "json"), stream=out)
    log = logging.getLogger("calltracking.test")
    log.warning("explicit", extra={"linkedid": "1795391970.0"})

    async def request(lid):
        CURRENT_LINKEDID.set(lid)
        await asyncio.sleep(0)
        log.warning("inside a request")

    async def main():
        await asyncio.gather(request("1.1"), request("2.2"))
        log.warning("no call")

    asyncio.run(main())
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["msg"], r.get("linkedid")) for r in rows] == [
        ("explicit", "1795391970.0"), ("inside a request", "1.1"), ("inside a request", "2.2"),
        ("no call", None)]
    assert all(r["level"] == "warning" and r["ts"].endswith("Z") for r in rows)


def test_text_lines_with_linkedid(tmp_path):
    out = io.StringIO()
    setup_logging(_config(tmp_path, "text"), stream=out)
    logging.getLogger("calltracking.test").error("boom", extra={"linkedid": "9.9"})
    assert out.getvalue().rstrip().endswith("boom [linkedid=9.9]")
