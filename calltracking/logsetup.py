"""Logging to stdout/journald: text or JSON lines, with the call's Linkedid when known.

Code that logs about a call passes ``extra={"linkedid": ...}``; the formatter
puts it on the line (``[linkedid=...]`` in text, a ``linkedid`` key in JSON).
"""
from __future__ import annotations

import contextvars
import json
import logging
import sys
import time

#: The Linkedid of the call the current task works on (set by the FastAGI server per request).
CURRENT_LINKEDID: contextvars.ContextVar = contextvars.ContextVar("linkedid", default=None)


class LinkedidFilter(logging.Filter):
    """Give every record the current call's Linkedid unless the caller passed one."""

    def filter(self, record):
        if getattr(record, "linkedid", None) is None:
            record.linkedid = CURRENT_LINKEDID.get()
        return True


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
    handler.addFilter(LinkedidFilter())
    if config.log.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(config.log.level.upper())
