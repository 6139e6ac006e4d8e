"""Every record of a partition reaches the pipeline: a hole in the offsets a stream delivers is filled first.

Why: the pipeline acks in offset order, and the committed offset is the one after the last record acked. That
is safe only if no record is missing from what the stream delivers. Holes were seen after rebalances (the
join/leave/kill test) until their causes in the consumer were closed (:mod:`smsdispatch.runtime.kafka_clients`);
this guard is now a tripwire: it knows where each partition's reading restarted (the consumer's last seek) and
what offset must come next; when a record arrives past a hole, the hole's records are read directly from Kafka
and handed over first, in order, and the hole is logged and counted (``smsdispatch_offset_gaps_total{topic}``,
which should stay 0: a count is a cause not yet found). Offsets that hold no record (transaction markers,
compaction) read as nothing.

Guarantee: a record is handed to the pipeline only after every earlier record of its partition since the
restart point, so the ordered acks never pass a record nobody handled. A read that fails (Kafka away) is
retried until it succeeds, the way every write the acks depend on is: reading waits, nothing is passed over.
Limit: a record older than the one expected (a second delivery within one assignment) is dropped, since it was
handed over already.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from smsdispatch.core.persist import ThrottledWarning, until_taken

log = logging.getLogger("smsdispatch.continuity")

TopicPartition = tuple[str, int]
#: Reads the records of (topic, partition) with offsets in [start, end), in order.
ReadRange = Callable[[str, int, int, int], Awaitable[list[Any]]]


class Continuity:
    def __init__(
        self,
        restart_offsets: Callable[[], Mapping[TopicPartition, int | None]],
        read: ReadRange,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_gap: Callable[[str, int], None] = lambda _topic, _records: None,
    ) -> None:
        """``on_gap(topic, records)`` is told of each hole filled, with the number of records read for it."""
        self._restart_offsets = restart_offsets
        self._read = read
        self._sleep = sleep
        self._on_gap = on_gap
        self._trouble = ThrottledWarning(log)
        self._expected: dict[TopicPartition, int | None] = {}
        self._generation: dict[TopicPartition, int] = {}
        #: Records read to fill holes, for /metrics and tests.
        self.filled = 0

    async def admit(self, topic: str, partition: int, offset: int, generation: int) -> tuple[list[Any], bool]:
        """Before handing over the record at ``offset``: the records missing before it (read from Kafka, to be
        handed over first), and whether to hand it over at all (False for one handed over already)."""
        tp = (topic, partition)
        if self._generation.get(tp) != generation:
            # A new assignment: reading restarted at the committed offset (None: the partition's beginning,
            # whose offset is not known here, so its first record is taken as the start).
            self._generation[tp] = generation
            self._expected[tp] = self._restart_offsets().get(tp)
        expected = self._expected.get(tp)
        if expected is not None and offset < expected:
            return [], False
        missed: list[Any] = []
        if expected is not None and offset > expected:
            start = expected
            missed = await until_taken(
                lambda: self._read(topic, partition, start, offset), self._trouble, "reading a hole", sleep=self._sleep
            )
            self.filled += len(missed)
            if missed:
                self._on_gap(topic, len(missed))
                log.warning(
                    "%s[%d]: offsets %d to %d were not delivered before %d; %d records read directly and handled first",
                    topic, partition, expected, offset - 1, offset, len(missed),
                )  # fmt: skip
        self._expected[tp] = offset + 1
        return missed, True
