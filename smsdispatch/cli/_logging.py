"""The worker's log: lines for people by default, one JSON object per line for collectors, and no floods.

``SMSDISPATCH_LOG_FORMAT=text`` (the default) writes ``[time] [pid] [LEVEL] name: message``, and a structured
event (one per outcome, ``logging.info(msg, extra={"fields": {...}})``) appends its fields as JSON.
``SMSDISPATCH_LOG_FORMAT=json`` writes every record, Faust's, aiokafka's and tracebacks included, as one JSON
object per line with ``time``, ``level``, ``logger``, ``pid``, ``message``, the event's fields as keys of their
own, and ``exc_info`` for a traceback. It uses python-json-logger rather than structlog: the records come from
the standard library's logging in Faust, aiokafka and our code alike, and python-json-logger is a formatter for
exactly those, with nothing else to adopt.

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

from pythonjsonlogger.json import JsonFormatter


class TextLines(logging.Formatter):
    """``[time] [pid] [LEVEL] name: message``, then an event's fields as JSON, then any traceback."""

    def __init__(self) -> None:
        super().__init__("[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        suppressed = getattr(record, "suppressed", 0)
        if isinstance(fields, dict):
            line += " " + json.dumps(fields, ensure_ascii=False, default=str)
        if suppressed:
            line += f" ({suppressed} more like it held back)"
        return line


class JsonLines(JsonFormatter):
    """One JSON object per record; an event's ``fields`` become keys of their own."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"},
            json_ensure_ascii=False,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        fields = log_data.pop("fields", None)
        if isinstance(fields, dict):
            log_data.update((key, value) for key, value in fields.items() if key not in log_data)
        if not log_data.get("suppressed"):
            log_data.pop("suppressed", None)


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


def worker_logging(level: str, log_format: str = "text") -> dict[str, object]:
    """The ``logging.config.dictConfig`` for the worker: text or JSON lines on stderr, throttled library noise.

    (Faust's default colour formatter also cost about 7% of the worker's CPU under load, measured with py-spy.)
    """
    formatter = JsonLines if log_format == "json" else TextLines
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"lines": {"()": formatter}},
        "filters": {"throttle": {"()": Throttle}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "lines",
                "filters": ["throttle"],
                "level": level,
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        # One line per HTTP call to Twilio would drown the one line per outcome (and cost CPU at volume);
        # aiokafka's info lines are about its connections, which its warnings cover.
        "loggers": {"httpx": {"level": "WARNING"}, "aiokafka": {"level": "WARNING"}},
    }
