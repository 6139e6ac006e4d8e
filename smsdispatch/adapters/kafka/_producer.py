"""An aiokafka producer that keeps the metadata of every topic it writes and refreshes it at most once per retry
backoff.

Why, read in aiokafka 0.14.0 (the version pinned in pyproject.toml; upstream HEAD is the same):

* **A topic the producer writes can fall out of its metadata, and its records then wait forever.** The client asks
  the broker for the topics in its tracked set, or for every topic while that set is empty (``client.py``
  257-260, 286). ``_wait_on_metadata`` (486-506) adds a topic to the set only when the topic is *not* in the
  metadata already. A producer whose metadata was fetched whole (Faust's ``create_topic`` forces that at start,
  faust #499) writes to the topics it knows without tracking them; the first write to a topic it did not know
  then makes the set that one topic, the next metadata answer holds only that topic, and every other topic's
  partitions are gone (``cluster.py`` 270-276). Batches already queued for them have no leader; the sender asks
  for metadata again at once (``producer/sender.py`` 155-159), for the same tracked set, which still lacks them,
  and so on: about 470 metadata requests a second in the worker, 3,800 on an idle broker, until the batch
  expires (Faust's producer request timeout: 20 minutes). A later write to such a topic tracks it and ends the
  loop, so it bit only when the last writes to a topic were queued in that window: the worker that stopped
  publishing outcomes (issue 22). Java's producer tracks every topic it writes (``KafkaProducer.waitOnMetadata``
  adds the topic first), and its sender adds the topics of batches without a leader. Here: every topic this
  producer writes is added to the tracked set (``AIOKafkaClient.add_topic``, public) before its first write.
* **No backoff between metadata requests for a partition without a leader.** Whatever the cause (the one above,
  a leader election, a broker restart), the sender's loop forces a refresh and waits only for it; aiokafka's
  comment there says "wait backoff time", but nothing waits. :class:`RefreshLimiter` makes the client's
  ``force_metadata_update`` start at most one refresh per ``retry_backoff_ms``, as Java's ``refreshBackoffMs``
  does. The same loop without a backoff in aiokafka's fetcher is aio-libs/aiokafka#1155; #1018 reports a
  producer asking for metadata without end.

``tests/adapters/kafka/test_producer.py`` reproduces both on a real broker, with and without this class.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition

from smsdispatch.adapters.kafka._pending import PendingWrites


class RefreshLimiter:
    """Wraps a client's ``force_metadata_update``: a call within ``interval`` of the last refresh started gets a
    refresh that starts when the interval is over (one for every caller meanwhile), not one at once."""

    def __init__(
        self,
        refresh: Callable[[], asyncio.Future[Any]],
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._refresh = refresh
        self._interval = interval
        self._clock = clock
        self._started_at = -math.inf
        self._delayed: asyncio.Future[Any] | None = None
        #: Refreshes started (tests and diagnostics read it).
        self.started = 0

    def __call__(self) -> asyncio.Future[Any]:
        if self._delayed is not None and not self._delayed.done():
            return asyncio.shield(self._delayed)
        wait = self._started_at + self._interval - self._clock()
        if wait <= 0:
            return self._start()
        self._delayed = asyncio.ensure_future(self._start_after(wait))
        return asyncio.shield(self._delayed)

    def _start(self) -> asyncio.Future[Any]:
        self._started_at = self._clock()
        self.started += 1
        return self._refresh()

    async def _start_after(self, wait: float) -> Any:
        await asyncio.sleep(wait)
        return await self._start()


class TopicTrackingProducer(AIOKafkaProducer):  # type: ignore[misc]  # aiokafka is untyped
    """``AIOKafkaProducer`` that tracks the metadata of every topic it writes, refreshes metadata at most once per
    ``retry_backoff_ms`` (default 100), and keeps its unacknowledged writes in :attr:`pending`."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self._tracked: set[str] = set()
        self.pending = PendingWrites()
        client = self.client
        client.force_metadata_update = RefreshLimiter(
            client.force_metadata_update, settings.get("retry_backoff_ms", 100) / 1000
        )

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Any = None,
    ) -> asyncio.Future[Any]:
        if topic not in self._tracked:
            self._tracked.add(topic)
            self.client.add_topic(topic)  # its metadata is asked for from now on, whatever else is written
        delivery: asyncio.Future[Any] = await super().send(topic, value, key, partition, timestamp_ms, headers)
        self.pending.watch(delivery, topic, partition)
        return delivery

    def waiting_for(self, topic: str, partition: int | None) -> str:
        """What a write to ``topic`` (``partition``, if it was given) waits for, as the producer's metadata says."""
        cluster = self.client.cluster
        if cluster.partitions_for_topic(topic) is None:
            return "the topic's metadata (not in the producer's metadata)"
        if partition is None:
            return "an answer from the broker (partition chosen by key)"
        leader = cluster.leader_for_partition(TopicPartition(topic, partition))
        if leader is None:
            return "the partition's metadata (not in the producer's metadata)"
        if leader == -1:
            return "a leader for the partition"
        return f"an answer from broker {leader}"
