"""The worker's log lines: text by default, JSON objects on request, fields kept, library floods held back."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator

import pytest

from smsdispatch.cli._logging import JsonLines, TextLines, Throttle, worker_logging


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLines())
    handler.addFilter(Throttle(window=60.0))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_line_is_a_json_object_with_time_level_logger_and_message(captured: io.StringIO) -> None:
    logging.getLogger("faust.worker").info("Starting %s", "worker")

    [line] = lines(captured)
    assert line["level"] == "INFO"
    assert line["logger"] == "faust.worker"
    assert line["message"] == "Starting worker"
    assert str(line["time"]).endswith("+00:00")


def test_structured_fields_become_keys_of_the_line(captured: io.StringIO) -> None:
    logging.getLogger("smsdispatch.dispatcher").info(
        "sms.dispatched r-1", extra={"fields": {"event": "sms.dispatched", "request_id": "r-1", "message": "x"}}
    )

    [line] = lines(captured)
    assert (line["event"], line["request_id"]) == ("sms.dispatched", "r-1")
    assert line["message"] == "sms.dispatched r-1", "a field never overwrites the line's own keys"


def test_a_traceback_stays_inside_its_line(captured: io.StringIO) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("smsdispatch.worker").exception("failed")

    [line] = lines(captured)
    assert "ValueError: boom" in str(line["exc_info"])


def test_a_library_repeating_an_error_is_held_to_one_line_and_the_next_one_counts_the_rest(
    captured: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr("smsdispatch.cli._logging.time.monotonic", lambda: clock[0])
    noisy = logging.getLogger("somelibrary.conn")  # not aiokafka: CLI tests may have silenced that logger
    for _ in range(5000):
        noisy.error("Unable connect to node with id %s: %s", 1, "refused")
    clock[0] += 61
    noisy.error("Unable connect to node with id %s: %s", 1, "refused")

    first, second = lines(captured)
    assert "suppressed" not in first
    assert second["suppressed"] == 4999


def test_the_projects_own_warnings_are_never_held_back(captured: io.StringIO) -> None:
    for tenant in range(3):
        logging.getLogger("smsdispatch.worker").warning("status callback refused for tenant %s", tenant)

    assert len(lines(captured)) == 3


@pytest.mark.parametrize(("log_format", "formatter"), [("text", TextLines), ("json", JsonLines)])
def test_the_worker_configuration_is_accepted_by_dictconfig(log_format: str, formatter: type) -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        logging.config.dictConfig(worker_logging("INFO", log_format))
        [handler] = [h for h in root.handlers if isinstance(h.formatter, formatter)]
        assert any(isinstance(f, Throttle) for f in handler.filters)
        assert logging.getLogger("httpx").level == logging.WARNING, "one line per HTTP call would drown outcomes"
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_text_lines_are_for_people_with_an_events_fields_appended() -> None:
    record = logging.LogRecord("smsdispatch.dispatcher", logging.INFO, __file__, 1, "sms.dispatched %s", ("r-1",), None)
    record.fields = {"event": "sms.dispatched", "request_id": "r-1"}

    line = TextLines().format(record)

    assert "[INFO] smsdispatch.dispatcher: sms.dispatched r-1 " in line
    assert line.endswith('{"event": "sms.dispatched", "request_id": "r-1"}')
