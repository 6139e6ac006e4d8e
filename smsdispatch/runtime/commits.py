"""Offsets the worker commits itself, for the topics it reads with Faust's acking off (``acks=False``).

Why not Faust's acks: even with ``stream.noack()``, Faust acks records on its own, and its commit then runs past
records nobody processed. Two paths, both read from faust-streaming 0.15.2:

* a record fetched before a rebalance and still in the stream's buffer after it is *skipped as stale and acked*
  (``Stream._py_aiter``); when its partition stays with the worker, those acks are at or past the committed
  offset, so the next commit jumps over the records the worker is about to re-read;
* a jump in fetched offsets is filled in as acked (``Consumer._add_gap``).

Measured before this module: 2 of 10,000 requests committed and never processed, in a join/leave/kill test.
With ``acks=False`` Faust tracks, acks and commits nothing for the topic; it still seeks every assigned
partition to its committed offset after each rebalance, which is what makes this safe.

Guarantees, and their limits:

* **Only what is reported done is committed.** :meth:`OffsetCommitter.done` is called by the pipelines, which
  report in offset order per partition and only after the record's work finished; the offset committed is the
  last one reported plus one.
* **Committed before a partition moves.** The drain hook calls :meth:`flush` while the partitions are still
  assigned (Faust's revocation wait); a crash loses at most one ``interval`` of commits, and the records after
  the committed offset are read again (the ledger makes that harmless).
* **A commit that fails is not the worker's end.** Faust's own commit crashes the worker on any error but a
  rebalance; here a commit Kafka refuses because the group rebalanced is dropped (that rebalance's drain
  committed what was done), and any other failure (the broker is away) keeps the positions for the next flush.
  Committing a position late is always truthful: every record before it was finished.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiokafka.errors import CommitFailedError
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from faust.types import TP

log = logging.getLogger("smsdispatch.commits")


class OffsetCommitter:
    """Positions done per topic-partition, committed through the Faust consumer's own Kafka client."""

    def __init__(self, consumer: Callable[[], Any]) -> None:
        # A getter: the app creates its consumer lazily, after this object is built.
        self._consumer = consumer
        self._done: dict[TP, int] = {}
        self._lock = asyncio.Lock()

    def done(self, topic: str, partition: int, offset: int) -> None:
        """The record at ``offset`` and every earlier one on the partition (that this worker read) are done."""
        tp = TP(topic, partition)
        position = offset + 1
        if self._done.get(tp, -1) < position:
            self._done[tp] = position

    def pending(self) -> dict[TP, int]:
        return dict(self._done)

    async def flush(self) -> bool:
        """Commit every position reported since the last flush; True when Kafka took them (or none were due)."""
        async with self._lock:
            positions, self._done = self._done, {}
            if not positions:
                return True
            consumer = self._consumer()
            owned = consumer.assignment()
            offsets = {tp: offset for tp, offset in positions.items() if tp in owned}
            if not offsets:
                return True
            try:
                await _commit(consumer, offsets)
            except CommitFailedError:
                log.info("a commit of %d partitions was refused after a rebalance; they are read again", len(offsets))
                return False
            except Exception as exc:
                for tp, offset in offsets.items():
                    self.done(tp.topic, tp.partition, offset - 1)
                log.warning("committing offsets failed (%s); the next flush retries", type(exc).__name__)
                return False
            return True


async def _commit(consumer: Any, offsets: dict[TP, int]) -> None:
    """Commit on Faust's Kafka consumer, in the thread that owns it, without Faust's crash-on-error wrapper."""
    thread = consumer._thread
    client = thread._ensure_consumer()
    committable = {
        TopicPartition(tp.topic, tp.partition): OffsetAndMetadata(offset, "") for tp, offset in offsets.items()
    }
    await thread.call_thread(client.commit, committable)
