"""The producer side and the subscriber side of smsdispatch, for Python programs."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import aclosing
from types import TracebackType
from typing import Self

from pydantic import ValidationError

from smsdispatch.adapters.kafka import TopicTrackingProducer
from smsdispatch.client._reading import TopicRecord, tail_topic
from smsdispatch.contract import Outcome, SmsDispatched, SmsFailed, SmsRequested, topics
from smsdispatch.contract.settings import DEFAULT_BROKER, bootstrap_servers
from smsdispatch.runtime.topics import ensure_topics

__all__ = ["SmsClient", "TopicRecord", "new_request_id"]


def new_request_id() -> str:
    return uuid.uuid4().hex


def parse_outcome(record: TopicRecord) -> Outcome | None:
    """The typed outcome of a record on sms.dispatched / sms.failed; None for anything else."""
    if record.value is None or record.topic not in (topics.DISPATCHED, topics.FAILED):
        return None
    try:
        if record.topic == topics.DISPATCHED:
            return SmsDispatched.model_validate_json(record.value)
        return SmsFailed.model_validate_json(record.value)
    except ValidationError:
        return None


class SmsClient:
    """Publishes ``SmsRequested`` (keyed by tenant_id, acks=all) and follows the outcome topics."""

    def __init__(self, broker: str = DEFAULT_BROKER, *, partitions: int = 8, replication_factor: int = 1) -> None:
        """``partitions`` and ``replication_factor`` are used only to create the contract's topics if they are
        missing (publishing to a missing topic would create it with the broker's defaults)."""
        self.broker = broker
        self._partitions = partitions
        self._replication_factor = replication_factor
        self._producer: TopicTrackingProducer | None = None

    async def __aenter__(self) -> Self:
        self._producer = TopicTrackingProducer(
            bootstrap_servers=bootstrap_servers(self.broker), acks="all", enable_idempotence=True
        )
        try:
            await self._producer.start()
        except BaseException:
            await self._producer.stop()  # a producer that failed to start still holds a client to close
            self._producer = None
            raise
        # Publishing to a missing topic would auto-create it with the broker's defaults (one partition).
        await ensure_topics(self.broker, self._partitions, replication_factor=self._replication_factor)
        return self

    async def __aexit__(
        self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]
    ) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def publish(self, request: SmsRequested) -> None:
        """Publish one request; returns once Kafka has it."""
        await self.publish_raw(request.tenant_id.encode(), request.model_dump_json(exclude_none=True).encode())

    async def publish_raw(
        self, key: bytes | None, value: bytes, topic: str = topics.REQUESTED, partition: int | None = None
    ) -> None:
        """Publish bytes as they are, to ``partition`` or where the key's hash puts them; returns once Kafka has
        them. For producers' mistakes on purpose (tests, demos): the worker still gives each record one outcome."""
        if self._producer is None:
            raise RuntimeError("use SmsClient inside 'async with'")
        await self._producer.send_and_wait(topic, value, key=key, partition=partition)

    async def publish_many(
        self,
        requests: Iterable[SmsRequested],
        *,
        window: int = 500,
        on_published: Callable[[int], None] | None = None,
    ) -> int:
        """Publish requests in order, ``window`` in flight at a time; return the count once Kafka has them all.

        One round trip per record would make a large replay take minutes; the idempotent producer keeps the
        order within a partition while the acknowledgements are pipelined. ``on_published`` gets the running
        count after each window.
        """
        if self._producer is None:
            raise RuntimeError("use SmsClient inside 'async with'")
        in_flight: list[asyncio.Future[object]] = []
        published = 0
        for request in requests:
            value = request.model_dump_json(exclude_none=True).encode()
            in_flight.append(await self._producer.send(topics.REQUESTED, value, key=request.tenant_id.encode()))
            if len(in_flight) >= window:
                published += len(await asyncio.gather(*in_flight))
                in_flight.clear()
                if on_published is not None:
                    on_published(published)
        if in_flight:
            published += len(await asyncio.gather(*in_flight))
            if on_published is not None:
                on_published(published)
        return published

    async def send(
        self,
        tenant_id: str,
        to: str,
        body: str,
        *,
        request_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        resend_of: str | None = None,
    ) -> SmsRequested:
        """Validate and publish a request (a ValidationError says which rule it breaks); return it."""
        request = SmsRequested(
            request_id=request_id or new_request_id(),
            tenant_id=tenant_id,
            to=to,
            body=body,
            metadata=dict(metadata or {}),
            resend_of=resend_of,
        )
        await self.publish(request)
        return request

    async def outcomes(
        self,
        *,
        tenant: str | None = None,
        from_beginning: bool = False,
        start_ms: int | None = None,
        outcome_topics: Sequence[str] = (topics.DISPATCHED, topics.FAILED),
        stop: asyncio.Event | None = None,
    ) -> AsyncIterator[Outcome]:
        """Typed outcomes as they arrive (optionally only one tenant's)."""
        records = tail_topic(self.broker, outcome_topics, from_beginning=from_beginning, start_ms=start_ms, stop=stop)
        async with aclosing(records):
            async for record in records:
                outcome = parse_outcome(record)
                if outcome is not None and (tenant is None or outcome.tenant_id == tenant):
                    yield outcome

    async def wait_for(
        self,
        request_ids: str | Sequence[str],
        timeout: float = 30.0,  # noqa: ASYNC109 - a deadline for the whole wait, documented as such
        since_ms: int | None = None,
        tenant: str | None = None,
    ) -> dict[str, Outcome]:
        """The outcome of each request id, waiting up to ``timeout`` seconds; raises TimeoutError otherwise."""
        wanted = {request_ids} if isinstance(request_ids, str) else set(request_ids)
        start = since_ms if since_ms is not None else int(time.time() * 1000) - 60_000
        found: dict[str, Outcome] = {}
        stop = asyncio.Event()

        async def collect() -> None:
            # request_id is unique per tenant only: with ``tenant`` given, other tenants' outcomes never match.
            outcomes = self.outcomes(start_ms=start, stop=stop, tenant=tenant)
            async with aclosing(outcomes):  # type: ignore[type-var]  # an async generator has aclose()
                async for outcome in outcomes:
                    if outcome.request_id in wanted and outcome.request_id not in found:
                        found[outcome.request_id] = outcome
                        if len(found) == len(wanted):
                            return

        try:
            await asyncio.wait_for(collect(), timeout)
        except TimeoutError:
            missing = len(wanted) - len(found)
            raise TimeoutError(f"no outcome for {missing} of {len(wanted)} requests within {timeout:g}s") from None
        finally:
            stop.set()
        return found
