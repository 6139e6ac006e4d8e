"""The worker's Kafka writes that wait too long: logged, with what each waits for, and counted.

The worker's producer (:class:`~smsdispatch.adapters.kafka.TopicTrackingProducer`) keeps every write it accepted
until Kafka acknowledges it. :class:`WriteWatch` looks at them every few seconds (a timer of the worker): each write
unacknowledged for more than ``log_after`` seconds is counted once, by topic
(``smsdispatch_kafka_writes_stuck_total``), and while any waits, one warning per ``log_every`` seconds names
each topic-partition, how many wait, the oldest's age, and what it waits for (the topic's metadata, a leader, a
broker's answer), as the producer's metadata says. Issue 22 was a producer waiting in silence for two minutes.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from smsdispatch.adapters.kafka import TopicTrackingProducer

log = logging.getLogger("smsdispatch.kafka")


class WriteWatch:
    def __init__(
        self,
        producer: Callable[[], TopicTrackingProducer | None],
        count: Callable[[str, int], None],
        *,
        log_after: float = 10.0,
        log_every: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._producer = producer
        self._count = count
        self._log_after = log_after
        self._log_every = log_every
        self._clock = clock
        self._logged_at = -math.inf

    def oldest_age(self) -> float:
        """Seconds the oldest unacknowledged write has waited (0: none waits, or no producer yet)."""
        producer = self._producer()
        return producer.pending.oldest_age() if producer is not None else 0.0

    def check(self) -> bool:
        """Count the writes that became stuck since the last check; log them if due. True when any is stuck."""
        producer = self._producer()
        if producer is None:
            return False
        stuck = producer.pending.stuck(self._log_after)
        for topic, newly in stuck.newly_stuck.items():
            self._count(topic, newly)
        now = self._clock()
        if stuck and now - self._logged_at >= self._log_every:
            self._logged_at = now
            waiting = "; ".join(
                f"{topic}[{'by key' if partition is None else partition}]: {count} waiting, the oldest {age:.0f} s, "
                f"for {producer.waiting_for(topic, partition)}"
                for (topic, partition), (count, age) in sorted(stuck.by_partition.items(), key=str)
            )
            log.warning("Kafka writes unacknowledged for more than %.0f s: %s", self._log_after, waiting)
        return bool(stuck)
