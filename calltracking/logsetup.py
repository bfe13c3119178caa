"""Logging to stdout/journald: text or JSON lines, with the call's Linkedid when known.

Code that logs about a call passes ``extra={"linkedid": ...}``; the formatter
puts it on the line (``[linkedid=...]`` in text, a ``linkedid`` key in JSON).
"""
from __future__ import annotations

import json
import logging
import sys
import time


class TextFormatter(logging.Formatter):
    def format(self, record):
        base = super().format(record)
        lid = getattr(record, "linkedid", None)
        return f"{base} [linkedid={lid}]" if lid else base


class JsonFormatter(logging.Formatter):
    def format(self, record):
        d = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        lid = getattr(record, "linkedid", None)
        if lid:
            d["linkedid"] = lid
        if record.exc_info:
            d["exc"] = self.formatException(record.exc_info)
        return json.dumps(d, ensure_ascii=False)


def setup_logging(config, stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stdout)
    if config.log.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(config.log.level.upper())
