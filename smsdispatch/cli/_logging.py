"""The worker's log: one JSON object per line on stderr, whatever logs it, and no floods.

Every line is a JSON object with ``time``, ``level``, ``logger``, ``pid`` and ``message``; structured events
(one per outcome) add their fields (``logging.info(msg, extra={"fields": {...}})``), and a traceback comes as
``exception``. Faust, aiokafka and mode log through the same handler, so a collector parses every line.

Libraries repeat themselves when the broker is away (aiokafka logged about 4,000 "Unable connect to node" lines
a second in a measured outage). :class:`Throttle` lets one line through per logger, level and message template
per ``window`` seconds and counts the rest; the next line let through carries ``"suppressed": N``. It applies to
warnings and errors from other libraries only: the project's own lines are already one per event or rate-limited
where they repeat.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update((key, value) for key, value in fields.items() if key not in entry)
        suppressed = getattr(record, "suppressed", 0)
        if suppressed:
            entry["suppressed"] = suppressed
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class Throttle(logging.Filter):
    """At most one record per (logger, level, message template) per ``window`` seconds from other libraries'
    warnings and errors; the next one let through counts those held back."""

    def __init__(self, window: float = 10.0, own_prefix: str = "smsdispatch") -> None:
        super().__init__()
        self._window = window
        self._own_prefix = own_prefix
        self._last: dict[tuple[str, int, str], float] = {}
        self._held: dict[tuple[str, int, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.name.startswith(self._own_prefix):
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._window:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._last[key] = now
        record.suppressed = self._held.pop(key, 0)
        if len(self._last) > 10_000:  # templates are few; this only bounds a pathological logger
            self._last.clear()
        return True


def worker_logging(level: str) -> dict[str, object]:
    """The ``logging.config.dictConfig`` for the worker: JSON lines on stderr, throttled library noise.

    (Faust's default colour formatter also cost about 7% of the worker's CPU under load, measured with py-spy.)
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonLines}},
        "filters": {"throttle": {"()": Throttle}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["throttle"],
                "level": level,
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        # One line per HTTP call to Twilio would drown the one line per outcome (and cost CPU at volume);
        # aiokafka's info lines are about its connections, which its warnings cover.
        "loggers": {"httpx": {"level": "WARNING"}, "aiokafka": {"level": "WARNING"}},
    }
