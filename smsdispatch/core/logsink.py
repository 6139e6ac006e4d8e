"""The log sink: every outcome and delivery receipt into ``notification_dispatch_log``.

Offsets are acked only after the database transaction commits: while the database is down the batch is
retried (logged, and counted in ``smsdispatch_sink_retries``) and nothing is acked, so when it returns every
outcome lands. The dispatcher is a separate agent and keeps sending meanwhile. Records that are not valid
outcomes are logged and skipped: they cannot become rows, and retrying would stall the sink forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from functools import partial
from typing import Any

from pydantic import BaseModel, ValidationError

from smsdispatch.adapters.storage import DispatchLog, StorageError
from smsdispatch.contract import SmsDispatched, SmsFailed, SmsStatus, topics
from smsdispatch.core.metrics import DispatchMetrics
from smsdispatch.core.persist import ThrottledWarning, until_taken

log = logging.getLogger("smsdispatch.logsink")

_MODELS: dict[str, type[BaseModel]] = {
    topics.DISPATCHED: SmsDispatched,
    topics.FAILED: SmsFailed,
    topics.STATUS: SmsStatus,
}

Loggable = SmsDispatched | SmsFailed | SmsStatus
_REFUSALS_BEFORE_NARROWING = 3


def parse_outcome(topic: str, value: bytes | None) -> Loggable | None:
    """The outcome a record holds, or None (logged) for one that cannot become a row."""
    model = _MODELS.get(topic)
    if model is None or value is None:
        return None
    try:
        return model.model_validate_json(value)  # type: ignore[return-value]
    except ValidationError as exc:
        log.warning("skipping a record on %s that is not a valid outcome: %s", topic, exc.error_count())
        return None


class LogSink:
    def __init__(
        self,
        database_url: str,
        metrics: DispatchMetrics,
        max_delay: float = 10.0,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._url = database_url
        self._metrics = metrics
        self._max_delay = max_delay
        self._sleep = sleep  # injectable so tests ride out an outage without waiting for it
        self._log: DispatchLog | None = None
        self._opening = asyncio.Lock()  # the sink's batches and the report page may both open it first
        self._trouble = ThrottledWarning(log)

    async def write(self, outcomes: Sequence[Loggable]) -> None:
        """Write the batch in one transaction; wait and retry while the database is unavailable.

        A refusal that waiting cannot fix (``retryable`` false), three times over, is narrowed down: the batch
        is written one outcome at a time, and an outcome refused on its own is logged and skipped, so one bad
        row cannot stall the log for everyone. It stays on its Kafka topic either way.
        """
        try:
            await until_taken(
                partial(self._record, outcomes),
                self._trouble,
                f"writing {len(outcomes)} outcomes to the dispatch log",
                first_delay=0.5,
                max_delay=self._max_delay,
                sleep=self._sleep,
                refusals=_REFUSALS_BEFORE_NARROWING,
                on_failure=lambda _exc: self._metrics.sink_retries.inc(),
            )
        except StorageError as refused:
            await self._narrow_down(outcomes, refused)
            return
        self._metrics.sink_rows.inc(len(outcomes))

    async def tenant_of(self, provider_message_id: str) -> str | None:
        """The tenant whose row carries ``provider_message_id`` (any tenant's: for a provider whose ids are the
        platform's own, such as MSG91's), or None. Raises :class:`StorageError` while the database is away."""
        row = await (await self._opened()).find_by_provider_message_id(provider_message_id)
        return None if row is None else row.tenant_id

    async def _record(self, outcomes: Sequence[Loggable]) -> None:
        await (await self._opened()).record(outcomes)

    async def _opened(self) -> DispatchLog:
        async with self._opening:
            if self._log is None:
                self._log = await DispatchLog.open(self._url)
            return self._log

    async def _narrow_down(self, outcomes: Sequence[Loggable], error: StorageError) -> None:
        if len(outcomes) > 1:
            for outcome in outcomes:
                await self.write([outcome])
            return
        [outcome] = outcomes
        ids = f"tenant {getattr(outcome, 'tenant_id', None)!r}, request {getattr(outcome, 'request_id', None)!r}"
        log.error("the dispatch log refuses an outcome (%s); skipping it (%s)", error, ids)

    async def close(self) -> None:
        if self._log is not None:
            await self._log.close()


class Batcher:
    """Gathers outcomes handed in one at a time into batches for :meth:`LogSink.write`.

    Each caller of :meth:`add` returns once the batch holding its outcome is committed, so the pipeline acks a
    record only after its row is in the database. A batch is closed when it holds ``max_size`` outcomes or
    ``within`` seconds after its first one, whichever comes first. Batches are written one at a time, in order:
    concurrent transactions from one worker would only queue on the database's locks (SQLite's file lock, the
    log's per-tenant locks) and, with other workers doing the same, time out and back off.
    """

    def __init__(
        self, write: Callable[[Sequence[Loggable]], Coroutine[Any, Any, None]], max_size: int, within: float
    ) -> None:
        self._write = write
        self._max_size = max_size
        self._within = within
        self._items: list[Loggable] = []
        self._written: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._turn = asyncio.Lock()  # FIFO: batches are written in the order they were closed

    async def add(self, outcome: Loggable) -> None:
        await self.enqueue(outcome)

    def enqueue(self, outcome: Loggable) -> asyncio.Future[None]:
        """Add ``outcome`` to the open batch now; the awaitable completes once that batch is committed. Lets a
        caller do other work meanwhile without a task of its own for this wait."""
        if self._written is None:
            self._written = asyncio.get_running_loop().create_future()
            self._timer = asyncio.get_running_loop().call_later(self._within, self._flush)
        written = self._written
        self._items.append(outcome)
        if len(self._items) >= self._max_size:
            self._flush()
        # Shielded: a caller cancelled by a drain leaves the batch to finish for the others.
        return asyncio.shield(written)

    def _flush(self) -> None:
        items, written = self._items, self._written
        self._items, self._written = [], None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if written is not None and items:
            task = asyncio.create_task(self._write_in_turn(items))
            task.add_done_callback(lambda done: _settle(written, done))

    async def _write_in_turn(self, items: list[Loggable]) -> None:
        async with self._turn:
            await self._write(items)


def _settle(written: asyncio.Future[None], done: asyncio.Task[None]) -> None:
    if written.done():
        return
    if done.cancelled():
        written.cancel()
    elif (error := done.exception()) is not None:
        written.set_exception(error)
    else:
        written.set_result(None)
