"""The log sink: every outcome and delivery receipt into ``notification_dispatch_log``.

Offsets are acked only after the database transaction commits: while the database is down the batch is
retried (logged, and counted in ``smsdispatch_sink_retries``) and nothing is acked, so when it returns every
outcome lands. The dispatcher is a separate agent and keeps sending meanwhile. Records that are not valid
outcomes are logged and skipped: they cannot become rows, and retrying would stall the sink forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from pydantic import BaseModel, ValidationError

from smsdispatch.agents.metrics import DispatchMetrics
from smsdispatch.schemas import SmsDispatched, SmsFailed, SmsStatus
from smsdispatch.storage import DispatchLog, StorageError
from smsdispatch.streams import topics

log = logging.getLogger("smsdispatch.logsink")

_MODELS: dict[str, type[BaseModel]] = {
    topics.DISPATCHED: SmsDispatched,
    topics.FAILED: SmsFailed,
    topics.STATUS: SmsStatus,
}

Loggable = SmsDispatched | SmsFailed | SmsStatus
_REFUSALS_BEFORE_NARROWING = 3


def parse_outcomes(records: Sequence[tuple[str, bytes | None]]) -> list[Loggable]:
    outcomes: list[Loggable] = []
    for topic, value in records:
        model = _MODELS.get(topic)
        if model is None or value is None:
            continue
        try:
            outcomes.append(model.model_validate_json(value))  # type: ignore[arg-type]
        except ValidationError as exc:
            log.warning("skipping a record on %s that is not a valid outcome: %s", topic, exc.error_count())
    return outcomes


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

    async def write(self, outcomes: Sequence[Loggable]) -> None:
        """Write the batch in one transaction; wait and retry while the database is unavailable.

        A refusal that waiting cannot fix (``retryable`` false), three times over, is narrowed down: the batch
        is written one outcome at a time, and an outcome refused on its own is logged and skipped, so one bad
        row cannot stall the log for everyone. It stays on its Kafka topic either way.
        """
        delay = 0.5
        refusals = 0
        while True:
            try:
                if self._log is None:
                    self._log = await DispatchLog.open(self._url)
                await self._log.record(outcomes)
            except StorageError as exc:
                self._metrics.sink_retries.inc()
                refusals += 0 if exc.retryable else 1
                if refusals >= _REFUSALS_BEFORE_NARROWING and self._log is not None:
                    await self._narrow_down(outcomes, exc)
                    return
                level = logging.WARNING if exc.retryable else logging.ERROR
                log.log(
                    level,
                    "dispatch log write failed (%s); retrying %d outcomes in %.1fs",
                    exc,
                    len(outcomes),
                    delay,
                )
                await self._sleep(delay)
                delay = min(delay * 2, self._max_delay)
                continue
            self._metrics.sink_rows.inc(len(outcomes))
            return

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
