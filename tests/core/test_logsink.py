"""The log sink: outcome records parsed leniently, written to the dispatch log, retried while it is down."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pytest

from smsdispatch.adapters.storage import DispatchLog, StorageError, StorageUnavailable
from smsdispatch.contract import ErrorCode, ErrorInfo, SmsDispatched, SmsFailed, SmsStatus, topics
from smsdispatch.core import logsink
from smsdispatch.core.logsink import Loggable, LogSink, parse_outcome
from smsdispatch.core.metrics import DispatchMetrics

from .fakes import TO

DISPATCHED = SmsDispatched(
    request_id="r-1",
    tenant_id="acme",
    provider_message_id="SM" + "a" * 32,
    status="queued",
    to=TO,
    segments=1,
    encoding="GSM-7",
    attempts=1,
)
FAILED = SmsFailed(
    request_id="r-2",
    tenant_id="acme",
    provider="twilio",
    to=TO,
    error=ErrorInfo(code=ErrorCode.PROVIDER_REJECTED, message="invalid To", provider_code=21211),
    attempts=1,
)
UNREADABLE = SmsFailed(error=ErrorInfo(code=ErrorCode.INVALID_REQUEST, message="not JSON"), raw="garbage")
RECEIPT = SmsStatus(tenant_id="acme", request_id="r-1", provider_message_id="SM" + "a" * 32, status="delivered")


def sample_value(metric: DispatchMetrics, name: str) -> float:
    value = metric.registry.get_sample_value(name)
    assert value is not None
    return value


def test_parse_outcome_reads_each_topic_with_its_model() -> None:
    records: list[tuple[str, bytes | None]] = [
        (topics.DISPATCHED, DISPATCHED.to_bytes()),
        (topics.FAILED, FAILED.to_bytes()),
        (topics.FAILED, UNREADABLE.to_bytes()),
        (topics.STATUS, RECEIPT.to_bytes()),
    ]

    assert [parse_outcome(topic, value) for topic, value in records] == [DISPATCHED, FAILED, UNREADABLE, RECEIPT]


def test_parse_outcome_gives_none_for_records_that_are_not_valid_outcomes(caplog: pytest.LogCaptureFixture) -> None:
    records: list[tuple[str, bytes | None]] = [
        (topics.DISPATCHED, b"not json"),
        (topics.DISPATCHED, b"\xff\xfe"),
        (topics.DISPATCHED, FAILED.to_bytes()),  # a failure on the dispatched topic is not a dispatch
        (topics.FAILED, b'{"request_id": "r-3"}'),
        (topics.STATUS, None),
        (topics.REQUESTED, DISPATCHED.to_bytes()),  # not an outcome topic
        (topics.STATUS, RECEIPT.to_bytes()),
    ]

    with caplog.at_level(logging.WARNING, logger="smsdispatch.logsink"):
        parsed = [parse_outcome(topic, value) for topic, value in records]

    assert parsed == [None, None, None, None, None, None, RECEIPT]
    assert len(caplog.records) == 4  # the invalid values; a tombstone and a foreign topic are just skipped


class FakeDispatchLog:
    """Stands for :class:`DispatchLog`: ``open`` and ``record`` fail as scripted, then succeed."""

    def __init__(self, open_failures: Sequence[StorageError], record_failures: Sequence[StorageError]) -> None:
        self.open_failures = list(open_failures)
        self.record_failures = list(record_failures)
        self.opened: list[str] = []
        self.recorded: list[list[Loggable]] = []
        self.closed = False

    async def open(self, url: str) -> FakeDispatchLog:
        self.opened.append(url)
        if self.open_failures:
            raise self.open_failures.pop(0)
        return self

    async def record(self, outcomes: Sequence[Loggable]) -> None:
        if self.record_failures:
            raise self.record_failures.pop(0)
        self.recorded.append(list(outcomes))

    async def close(self) -> None:
        self.closed = True


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def install(monkeypatch: pytest.MonkeyPatch, fake: FakeDispatchLog) -> None:
    monkeypatch.setattr(logsink, "DispatchLog", fake)


@pytest.mark.asyncio
async def test_write_retries_while_the_database_is_unavailable_then_writes_the_batch_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    down = StorageUnavailable("The database is unavailable while recording 2 outcomes: connection refused.")
    fake = FakeDispatchLog(open_failures=[], record_failures=[down, down, down])
    install(monkeypatch, fake)
    metrics, sleeps = DispatchMetrics(), Sleeps()
    sink = LogSink("sqlite+aiosqlite:///unused.db", metrics, sleep=sleeps)

    await sink.write([DISPATCHED, FAILED])

    assert fake.recorded == [[DISPATCHED, FAILED]]
    assert sleeps.delays == [0.5, 1.0, 2.0]
    assert sample_value(metrics, "smsdispatch_sink_retries_total") == 3
    assert sample_value(metrics, "smsdispatch_sink_outcomes_total") == 2


@pytest.mark.asyncio
async def test_write_keeps_opening_the_log_until_the_database_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    down = StorageUnavailable("The database is unavailable while connecting: no such host.")
    fake = FakeDispatchLog(open_failures=[down, down], record_failures=[])
    install(monkeypatch, fake)
    sink = LogSink("postgresql+asyncpg://db/log", DispatchMetrics(), sleep=Sleeps())

    await sink.write([RECEIPT])
    await sink.write([FAILED])

    assert fake.opened == ["postgresql+asyncpg://db/log"] * 3  # opened once it worked, then kept
    assert fake.recorded == [[RECEIPT], [FAILED]]


@pytest.mark.asyncio
async def test_write_waits_at_most_max_delay_between_tries(monkeypatch: pytest.MonkeyPatch) -> None:
    down = StorageUnavailable("The database is unavailable.")
    install(monkeypatch, FakeDispatchLog(open_failures=[], record_failures=[down] * 6))
    sleeps = Sleeps()

    await LogSink("sqlite+aiosqlite:///unused.db", DispatchMetrics(), max_delay=3.0, sleep=sleeps).write([FAILED])

    assert sleeps.delays == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


@pytest.mark.asyncio
async def test_an_error_retrying_cannot_fix_is_logged_as_an_error_and_still_retried(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    broken = StorageError("The database refused recording 1 outcomes: no such table.")
    fake = FakeDispatchLog(open_failures=[], record_failures=[broken])
    install(monkeypatch, fake)

    with caplog.at_level(logging.WARNING, logger="smsdispatch.logsink"):
        await LogSink("sqlite+aiosqlite:///unused.db", DispatchMetrics(), sleep=Sleeps()).write([FAILED])

    assert [record.levelno for record in caplog.records] == [logging.ERROR]
    assert fake.recorded == [[FAILED]]


@pytest.mark.asyncio
async def test_close_closes_the_opened_log(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeDispatchLog(open_failures=[], record_failures=[])
    install(monkeypatch, fake)
    sink = LogSink("sqlite+aiosqlite:///unused.db", DispatchMetrics())
    await sink.write([FAILED])

    await sink.close()

    assert fake.closed


@pytest.mark.asyncio
async def test_written_outcomes_land_in_a_real_sqlite_dispatch_log(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'log.db'}"
    sink = LogSink(url, DispatchMetrics())
    try:
        await sink.write([DISPATCHED, FAILED, RECEIPT])
    finally:
        await sink.close()

    log = await DispatchLog.open(url)
    try:
        first, second = await log.get("r-1"), await log.get("r-2")
    finally:
        await log.close()
    assert first is not None
    assert second is not None
    assert (first.status, first.provider_message_id) == ("delivered", DISPATCHED.provider_message_id)
    assert (second.status, second.error_code, second.provider_code) == ("failed", "provider_rejected", 21211)


class RefusesOne(FakeDispatchLog):
    """Refuses, for good, any batch holding ``bad``; writes everything else."""

    def __init__(self, bad: Loggable) -> None:
        super().__init__(open_failures=[], record_failures=[])
        self.bad = bad

    async def record(self, outcomes: Sequence[Loggable]) -> None:
        if self.bad in outcomes:
            raise StorageError("The database refused recording the batch: invalid byte sequence.")
        self.recorded.append(list(outcomes))


@pytest.mark.asyncio
async def test_a_row_the_database_always_refuses_is_skipped_alone_and_the_rest_of_its_batch_lands(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake = RefusesOne(bad=FAILED)
    install(monkeypatch, fake)

    with caplog.at_level(logging.ERROR, logger="smsdispatch.logsink"):
        await LogSink("sqlite+aiosqlite:///unused.db", DispatchMetrics(), sleep=Sleeps()).write(
            [DISPATCHED, FAILED, RECEIPT]
        )

    assert fake.recorded == [[DISPATCHED], [RECEIPT]]
    assert "refuses an outcome" in caplog.text
