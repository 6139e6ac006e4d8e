"""Creating the topics of docs/contract.md that are missing (their names: :mod:`smsdispatch.contract.topics`).

Faust creates only its internal topics (changelogs); ours would get the broker's default of one partition,
which breaks co-partitioning with the tables, so the worker creates them explicitly before it starts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from smsdispatch.contract.settings import bootstrap_servers
from smsdispatch.contract.topics import CONTRACT_TOPICS, TopicSpec

log = logging.getLogger(__name__)


async def ensure_topics(
    broker_url: str, partitions: int, specs: tuple[TopicSpec, ...] = CONTRACT_TOPICS, replication_factor: int = 1
) -> list[str]:
    """Create every topic of ``specs`` that does not exist yet; return the names created.

    Existing topics are left alone, whatever their partition count: changing it would move keys between
    partitions under running consumers. A mismatch is logged so an operator can see it.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(broker_url))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        created: list[str] = []
        for spec in missing:
            try:
                await admin.create_topics(
                    [
                        NewTopic(
                            spec.name,
                            num_partitions=partitions,
                            replication_factor=replication_factor,
                            topic_configs=spec.config,
                        )
                    ]
                )
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass  # another worker created it between our listing and our request
        present = [spec.name for spec in specs if spec.name in existing]
        if present:
            for meta in await admin.describe_topics(present):
                count = len(meta.get("partitions", []))
                if count != partitions:
                    log.warning(
                        "topic %s has %d partitions, SMSDISPATCH_PARTITIONS is %d: left as it is",
                        meta.get("topic"),
                        count,
                        partitions,
                    )
        return created
    finally:
        await admin.close()


async def check_partitions(
    broker_url: str,
    partitions: int,
    specs: tuple[TopicSpec, ...] = CONTRACT_TOPICS,
    replication_factor: int = 1,
    *,
    visible_within: float = 15.0,
) -> list[str]:
    """Create the missing topics; return those that exist with another partition count than ``partitions``.

    A topic created a moment ago may not be in the broker's metadata yet (described with an error and no
    partitions), which is not a mismatch: it is described again until every topic is visible, for at most
    ``visible_within`` seconds, after which :class:`TopicsNotVisible` is raised.
    """
    await ensure_topics(broker_url, partitions, specs, replication_factor)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(broker_url))
    await admin.start()
    try:
        described = await describe_when_visible(admin, [spec.name for spec in specs], visible_within)
    finally:
        await admin.close()
    return sorted(str(meta.get("topic")) for meta in described if len(meta.get("partitions", [])) != partitions)


class _Describes(Protocol):
    async def describe_topics(self, topics: list[str]) -> list[dict[str, Any]]: ...


async def describe_when_visible(
    admin: _Describes,
    names: list[str],
    within: float,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[dict[str, Any]]:
    """The topics as the broker describes them, once none is described with an error (a topic created a moment
    ago is "unknown" until the metadata has it). Raises :class:`TopicsNotVisible` after ``within`` seconds."""
    deadline = clock() + within
    while True:
        described = await admin.describe_topics(names)
        unseen = sorted(str(meta.get("topic")) for meta in described if meta.get("error_code", 0) != 0)
        if not unseen:
            return described
        if clock() > deadline:
            raise TopicsNotVisible(f"{', '.join(unseen)} not in the broker's metadata after {within:g}s")
        await sleep(0.2)


class TopicsNotVisible(Exception):
    """Topics the worker created (or found listed) that the broker still does not describe."""


def groupless_consumer(broker_url: str) -> AIOKafkaConsumer:
    """A consumer in no group, not yet started: partitions are assigned by hand, so it joins no rebalance and
    commits nothing (the compacted-topic followers, the continuity guard's hole reader)."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(broker_url),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
