"""Client fixtures: the session's real broker with the contract topics, a fresh tenant per test, and ``produce``
to write records as the worker (or any producer) would, optionally with a chosen record timestamp.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import pytest
from aiokafka.structs import RecordMetadata

from tests.client.records import Record, create_contract_topics, new_tenant, produce

Produce = Callable[[Sequence[Record]], Awaitable[list[RecordMetadata]]]


@pytest.fixture(scope="session")
def broker(kafka_broker_url: str) -> str:
    """The broker URL (``kafka://…``), with the contract topics created at their configured partition count."""
    create_contract_topics(kafka_broker_url)
    return kafka_broker_url


@pytest.fixture
def tenant() -> str:
    return new_tenant()


@pytest.fixture
def publish_records(broker: str, kafka_bootstrap: str) -> Produce:
    async def publish(records: Sequence[Record]) -> list[RecordMetadata]:
        return await produce(kafka_bootstrap, records)

    return publish
