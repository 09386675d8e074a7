"""Server logs on stderr: readable text lines by default, JSON lines with ``--log-format json``.

A JSON line holds ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, plus any
``extra={...}`` fields and ``exc_info`` for exceptions, e.g.::

    {"time": "2026-11-28T14:05:01.123Z", "level": "INFO", "logger": "vectord", "message": "..."}
"""

from __future__ import annotations

import logging
import sys
import time

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def json_formatter() -> logging.Formatter:
    try:
        from pythonjsonlogger.json import JsonFormatter
    except ImportError:  # python-json-logger < 3
        from pythonjsonlogger.jsonlogger import JsonFormatter

    class Formatter(JsonFormatter):
        converter = time.gmtime

        def formatTime(self, record, datefmt=None):  # noqa: N802 - logging's name
            return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"

    return Formatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                     rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Sends every log record to stderr in ``fmt`` ("text" or "json"), replacing handlers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
