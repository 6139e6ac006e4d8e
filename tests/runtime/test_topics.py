"""Creating the contract's topics: against the real broker (their partitions and cleanup policies), and the wait
for a new topic to reach the broker's metadata with a fake admin client."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from smsdispatch.contract.settings import bootstrap_servers
from smsdispatch.contract.topics import TopicSpec
from smsdispatch.runtime.topics import TopicsNotVisible, check_partitions, describe_when_visible, ensure_topics

pytestmark = pytest.mark.asyncio


@pytest.mark.kafka
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


@pytest.mark.kafka
async def test_new_topics_have_the_partition_count_asked_for(kafka_broker_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    specs = tuple(TopicSpec(f"{prefix}.topic{n}") for n in range(6))

    mismatched = await check_partitions(kafka_broker_url, 3, specs)

    assert mismatched == []


class MetadataLag:
    """An admin client whose broker has not yet seen the last topic for the first ``lagging`` descriptions."""

    def __init__(self, lagging: int) -> None:
        self.lagging = lagging
        self.calls = 0

    async def describe_topics(self, topics: list[str]) -> list[dict[str, Any]]:
        self.calls += 1
        seen = [{"topic": name, "error_code": 0, "partitions": [{}] * 3} for name in topics[:-1]]
        if self.calls <= self.lagging:
            return [*seen, {"topic": topics[-1], "error_code": 3, "partitions": []}]
        return [*seen, {"topic": topics[-1], "error_code": 0, "partitions": [{}] * 3}]


async def test_a_topic_not_yet_in_the_metadata_is_described_again_not_taken_for_zero_partitions() -> None:
    # A worker started on a fresh broker described its last new topic before the metadata had it (unknown
    # topic, no partitions) and refused to start, blaming SMSDISPATCH_PARTITIONS.
    admin, sleeps = MetadataLag(lagging=2), []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    described = await describe_when_visible(admin, ["a", "b"], within=15.0, sleep=sleep)

    assert [len(meta["partitions"]) for meta in described] == [3, 3]
    assert admin.calls == 3
    assert len(sleeps) == 2


async def test_a_topic_that_never_shows_up_is_an_error_naming_it() -> None:
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(TopicsNotVisible, match="b not in the broker's metadata after 1s"):
        await describe_when_visible(
            MetadataLag(lagging=1000), ["a", "b"], within=1.0, sleep=sleep, clock=lambda: now[0]
        )


@pytest.mark.kafka
async def test_a_topic_with_another_partition_count_is_reported(kafka_broker_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_broker_url, 2, (TopicSpec(f"{prefix}.old"),))

    mismatched = await check_partitions(kafka_broker_url, 3, (TopicSpec(f"{prefix}.old"), TopicSpec(f"{prefix}.new")))

    assert mismatched == [f"{prefix}.old"]
