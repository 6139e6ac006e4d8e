"""Reading and writing the compacted ``sms.suppressions`` topic (the CLI's ``suppressions`` verbs use it).

Writing publishes what :func:`smsdispatch.contract.suppression_change` builds, with acks=all, so a change is
on every in-sync replica before the command says it is done; the workers' followers then apply it. Publishing
to a topic that does not exist yet would create it with the broker's defaults (not compacted): call
:func:`smsdispatch.runtime.topics.ensure_topics` first, as the CLI does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from smsdispatch.adapters.kafka import TopicTrackingProducer
from smsdispatch.client._reading import read_topic
from smsdispatch.contract import SuppressionRecord, SuppressionSource, parse_suppression_key, suppression_change, topics
from smsdispatch.contract.settings import bootstrap_servers

#: A record's (key, value), as :func:`smsdispatch.contract.suppression_change` returns it.
SuppressionChange = tuple[bytes, bytes | None]


@dataclass(frozen=True, slots=True)
class Suppression:
    """One opted-out number as the topic holds it. ``source`` is None when the record's value cannot be read:
    the workers still honour it (its key alone suppresses), so it is listed, with the record's timestamp."""

    tenant_id: str
    number: str
    source: SuppressionSource | None
    since: datetime


async def current_suppressions(broker_url: str, tenant: str | None = None) -> list[Suppression]:
    """Every opt-out on the topic now (optionally one tenant's), sorted by tenant then number: the last record
    per key, keys whose last record is a tombstone left out."""
    latest: dict[tuple[str, str], Suppression | None] = {}
    prefix = f"{tenant}/".encode() if tenant is not None else b""
    async for record in read_topic(broker_url, [topics.SUPPRESSIONS]):
        if record.key is None or not record.key.startswith(prefix):
            continue  # filtered before parsing: listing one tenant of a long list stays cheap
        pair = parse_suppression_key(record.key)
        if pair is None:
            continue  # not a key the workers honour either
        latest[pair] = None if record.value is None else _entry(pair, record.value, record.timestamp_ms)
    return [entry for _, entry in sorted(latest.items()) if entry is not None]


async def publish_suppression(
    broker_url: str,
    tenant_id: str,
    number: str,
    opted_out: bool,
    source: SuppressionSource = SuppressionSource.OPERATOR,
) -> None:
    """Record that ``number`` opted out of ``tenant_id``'s messages (or back in, ``opted_out=False``); returns
    once Kafka has it. Invalid ids raise ``pydantic.ValidationError`` before anything is sent."""
    await publish_suppression_changes(broker_url, [suppression_change(tenant_id, number, opted_out, source)])


async def publish_suppression_changes(broker_url: str, changes: Iterable[SuppressionChange]) -> None:
    """Publish ready-made changes in order, through one producer; returns once Kafka has all of them."""
    producer = TopicTrackingProducer(
        bootstrap_servers=bootstrap_servers(broker_url), acks="all", enable_idempotence=True
    )
    try:
        await producer.start()  # inside: a producer that failed to start still holds a client to close
        sends = [await producer.send(topics.SUPPRESSIONS, value, key=key) for key, value in changes]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


def _entry(pair: tuple[str, str], value: bytes, timestamp_ms: int) -> Suppression:
    tenant_id, number = pair
    try:
        record = SuppressionRecord.model_validate_json(value)
    except ValidationError:
        return Suppression(tenant_id, number, None, datetime.fromtimestamp(timestamp_ms / 1000, UTC))
    return Suppression(tenant_id, number, record.source, record.at)
