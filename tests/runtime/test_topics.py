"""ensure_topics against the real broker: the contract's topics, with their partitions and cleanup policies."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from smsdispatch.contract.settings import bootstrap_servers
from smsdispatch.contract.topics import TopicSpec
from smsdispatch.runtime.topics import ensure_topics

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka]


async def test_missing_topics_are_created_once_with_their_partitions_and_cleanup_policy(kafka_broker_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    specs = (TopicSpec(f"{prefix}.requests"), TopicSpec(f"{prefix}.tenants", {"cleanup.policy": "compact"}))

    created = await ensure_topics(kafka_broker_url, 3, specs)
    again = await ensure_topics(kafka_broker_url, 3, specs)

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(kafka_broker_url))
    await admin.start()
    try:
        described = await admin.describe_topics([spec.name for spec in specs])
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, f"{prefix}.tenants")])
    finally:
        await admin.close()
    assert created == [spec.name for spec in specs]
    assert again == []
    assert [len(topic["partitions"]) for topic in described] == [3, 3]
    entries = {entry[0]: entry[1] for entry in configs[0].resources[0][4]}
    assert entries["cleanup.policy"] == "compact"
