"""Records in, handled concurrently, acknowledged in offset order per partition: the dispatcher's conveyor.

This module knows nothing about Faust or Kafka clients. The runtime hands it each record as it arrives, with
two callbacks of its own: ``ack`` (the record is done, its offset may be committed) and, optionally,
``release`` (the record is given back unprocessed: it is not acked, so whoever owns its partition next reads it
again). A "partition" here is any hashable name of one ack order, such as a (topic, partition) pair.

Guarantees, and their limits:

* **A record is acked only after its handler returned.** A handler that raises or is cancelled leaves its
  record unacked (and the error is logged): nothing is ever committed past work that did not finish.
* **Acks go out in offset order per partition.** A record that finishes before an earlier one waits for it,
  so the committed offset never skips an unfinished record (Faust's own gap handling can, faust-streaming
  #606). Records must be submitted in offset order per partition, as a consumer delivers them.
* **No head-of-line blocking.** A record starts as soon as it is submitted; one slow record holds back only
  the *acks* behind it, not their work. Records with the same ``key`` run one after the other, in order, so a
  request seen twice is never handled twice at once.
* **Bounded.** At most ``max_pending`` records are held at once; :meth:`submit` waits for room, which is what
  pauses reading from Kafka.
* **Progress is visible.** :meth:`stalled_for` says how long the pipeline has held records without one of
  them finishing (the worker's liveness check reads it).
* **Drain.** :meth:`drain` (on a rebalance or shutdown) lets the handlers that have passed their point of no
  return (:meth:`Work.irrevocable`) finish, within ``timeout``; every other record, and any handler still
  running at the deadline, is cancelled and released. After it returns nothing is held.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

log = logging.getLogger("smsdispatch.pipeline")

T = TypeVar("T")


@dataclass(eq=False)
class Work(Generic[T]):
    """One submitted record and its progress. ``token`` is the runtime's handle (its event)."""

    partition: Hashable
    offset: int
    token: T
    key: Hashable | None
    done: bool = False
    #: Set by the handler once it has done something that must be seen through (e.g. a send has started).
    committed: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    finished: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def irrevocable(self) -> None:
        """From here on a drain waits for this record (up to its deadline) instead of cancelling it."""
        self.committed = True


Handler = Callable[["Work[T]"], Awaitable[None]]


class Pipeline(Generic[T]):
    def __init__(
        self,
        *,
        ack: Callable[[T], Awaitable[Any]],
        release: Callable[[T], None] | None = None,
        max_pending: int = 5000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ack = ack
        self._clock = clock
        self._held = 0
        #: When a handler last finished, or when records arrived at an empty pipeline.
        self._progressed_at = clock()
        # Nothing to do by default: a runtime that re-reads from the committed offset gets them back anyway.
        self._release = release or (lambda token: None)
        self._room = asyncio.Semaphore(max_pending)
        self._by_partition: dict[Hashable, deque[Work[T]]] = {}
        self._last_of_key: dict[Hashable, Work[T]] = {}
        self._draining = False
        #: Bumped by every drain: a submit that was waiting for room across a drain gives its record back.
        self._generation = 0

    def __len__(self) -> int:
        return self._held

    def stalled_for(self) -> float:
        """Seconds this pipeline has held records without any of them finishing; 0 while it holds none."""
        return self._clock() - self._progressed_at if self._held else 0.0

    async def submit(
        self, partition: Hashable, offset: int, token: T, handler: Handler[T], key: Hashable | None = None
    ) -> None:
        """Start ``handler`` for a record; returns once it is started (waits while ``max_pending`` are held).

        A record submitted while a drain runs, or across one, is given back at once: its partition may be
        another worker's by now.
        """
        generation = self._generation
        await self._room.acquire()
        if self._draining or generation != self._generation:
            self._room.release()
            self._release(token)
            return
        work = Work(partition, offset, token, key)
        if not self._held:
            self._progressed_at = self._clock()  # the wait for progress starts with the first record held
        self._held += 1
        self._by_partition.setdefault(partition, deque()).append(work)
        before = self._last_of_key.get(key) if key is not None else None
        if key is not None:
            self._last_of_key[key] = work
        work.task = asyncio.create_task(self._run(work, handler, before))

    async def _run(self, work: Work[T], handler: Handler[T], before: Work[T] | None) -> None:
        try:
            if before is not None:
                await before.finished.wait()
            await handler(work)
        except asyncio.CancelledError:
            return  # a drain gives it back; it stays unacked
        except Exception:
            # The handler's own job is to turn every failure into an outcome; reaching here is a bug. The record
            # stays unacked (never committed without an outcome) and holds its partition's acks until a drain.
            log.exception("handling the record at partition %s offset %d failed", work.partition, work.offset)
            return
        finally:
            work.finished.set()
            if work.key is not None and self._last_of_key.get(work.key) is work:
                del self._last_of_key[work.key]
        work.done = True
        self._progressed_at = self._clock()
        await self._ack_ready(work.partition)

    async def _ack_ready(self, partition: Hashable) -> None:
        queue = self._by_partition.get(partition)
        while queue and queue[0].done and not self._draining:
            work = queue.popleft()
            self._held -= 1
            self._room.release()
            await self._ack(work.token)

    async def drain(self, deadline: float) -> tuple[int, int]:
        """Finish (within ``deadline`` seconds) or give back all it holds; returns (acked, given back)."""
        self._draining = True
        self._generation += 1
        try:
            held = [work for queue in self._by_partition.values() for work in queue]
            for work in held:
                if not work.committed and not work.done and work.task is not None:
                    work.task.cancel()
            running = [work.task for work in held if work.task is not None and not work.task.done()]
            if running:
                _, late = await asyncio.wait(running, timeout=deadline)
                for task in late:
                    task.cancel()
                if late:
                    log.warning("drain: %d records still in flight after %.0fs are given back", len(late), deadline)
                    await asyncio.wait(late)
            acked = released = 0
            for queue in self._by_partition.values():
                blocked = False
                for work in queue:
                    if work.done and not blocked:
                        await self._ack(work.token)
                        acked += 1
                    else:
                        blocked = True
                        self._release(work.token)
                        released += 1
                    self._room.release()
            self._by_partition.clear()
            self._last_of_key.clear()
            self._held = 0
            return acked, released
        finally:
            self._draining = False
