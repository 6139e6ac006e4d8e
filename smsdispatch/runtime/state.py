"""The worker's own state: the idempotency ledger and the pending polls and webhooks, per partition, restored from
their changelogs when the worker gains a partition.

:class:`WorkerState` holds the three :class:`~smsdispatch.core.changelog_table.ChangelogTable`, in RocksDB files
under the data dir (or in memory with ``SMSDISPATCH_LEDGER_STORE=memory``), and follows the group's assignment
(:meth:`WorkerState.assigned`, called by the app at each rebalance):

* a partition the worker gains is restored (:mod:`smsdispatch.runtime.restore`), in a task of its own; its
  records wait for it (:meth:`WorkerState.ready`), other partitions' records don't;
* a partition the worker loses has its restore cancelled, its acknowledged changes written, and its store closed;
  the pending polls and webhooks of that partition are wiped (small, and a copy kept while another worker owns
  them could outlive the tombstones compaction removes), the ledger is kept (a later restore goes on from it);
* a restore that fails (:class:`~smsdispatch.runtime.restore.RestoreFailed`, Kafka away) is logged at ERROR with
  the partition, reported by :meth:`trouble` (``/health``), and retried with backoff; its records keep waiting.

The changelog topics keep the names Faust's tables gave them (``<app id>-ledger-changelog`` ...), and the files
the layout and offset key Faust's RocksDB store used, so a data directory and topics written by the earlier
versions are used as they are.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from smsdispatch.adapters.partitions import MemoryPartitions, PartitionStore, RocksPartitions
from smsdispatch.core.changelog_table import ChangelogTable, ChangelogWriter
from smsdispatch.runtime.restore import restore_partition

log = logging.getLogger("smsdispatch.state")

#: The tables, by name; each has the changelog topic ``<app id>-<name>-changelog``.
TABLES = ("ledger", "polls", "webhooks")
#: Tables wiped when their partition moves away (see the module docstring).
WIPED_ON_RELEASE = ("polls", "webhooks")


def changelog_topic(app_id: str, table: str) -> str:
    return f"{app_id}-{table}-changelog"


def table_directory(data_dir: Path) -> Path:
    """Where the files are: where Faust's tables kept them (``<data dir>/v1/tables``)."""
    return data_dir / "v1" / "tables"


class WorkerState:
    def __init__(
        self,
        app_id: str,
        write: Callable[[str], ChangelogWriter],
        new_consumer: Callable[[], AIOKafkaConsumer],
        *,
        data_dir: Path | None,
        stall_seconds: float = 30.0,
    ) -> None:
        """``write(topic)`` writes to one changelog topic; ``data_dir`` None keeps the tables in memory."""
        self._new_consumer = new_consumer
        self._stall_seconds = stall_seconds
        self.tables: dict[str, ChangelogTable] = {}
        for name in TABLES:
            topic = changelog_topic(app_id, name)
            store: PartitionStore = (
                MemoryPartitions() if data_dir is None else RocksPartitions(table_directory(data_dir), name)
            )
            self.tables[topic] = ChangelogTable(name, store, write(topic))
        self._owned: set[int] = set()
        self._ready: dict[int, asyncio.Event] = {}
        self._restores: dict[int, asyncio.Task[None]] = {}
        self._failures: dict[int, str] = {}

    def table(self, name: str) -> ChangelogTable:
        return next(table for table in self.tables.values() if table.name == name)

    def assigned(self, partitions: Iterable[int]) -> None:
        """The group gave this worker ``partitions`` (of the topics whose state it keeps); start what changed."""
        now = set(partitions)
        for partition in self._owned - now:
            self._release(partition)
        for partition in sorted(now - self._owned):
            self._ready.setdefault(partition, asyncio.Event())
            self._restores[partition] = asyncio.ensure_future(self._restore(partition))
        self._owned = now

    def is_ready(self, partition: int) -> bool:
        event = self._ready.get(partition)
        return event is not None and event.is_set()

    async def ready(self, partition: int) -> None:
        """Return once ``partition`` is restored (waits across a rebalance that has not assigned it yet)."""
        event = self._ready.setdefault(partition, asyncio.Event())
        if not event.is_set():
            await event.wait()

    def owned(self) -> list[int]:
        """The partitions the group gave this worker, restored or not."""
        return sorted(self._owned)

    def restored(self) -> set[int]:
        """The partitions owned and restored: the ones timers may work on."""
        return {partition for partition in self._owned if self.is_ready(partition)}

    @property
    def all_restored(self) -> bool:
        return all(self.is_ready(partition) for partition in self._owned)

    def trouble(self) -> list[str]:
        """One sentence per partition whose last restore attempt failed."""
        return [f"restoring partition {partition} failed: {why}" for partition, why in sorted(self._failures.items())]

    def checkpoint(self) -> None:
        for table in self.tables.values():
            table.checkpoint()

    async def close(self) -> None:
        """Cancel restores, write what was acknowledged, and close the files (a clean stop)."""
        for task in self._restores.values():
            task.cancel()
        await asyncio.gather(*self._restores.values(), return_exceptions=True)
        self._restores.clear()
        for table in self.tables.values():
            table.checkpoint()
            table.store.close()

    def _release(self, partition: int) -> None:
        task = self._restores.pop(partition, None)
        if task is not None:
            task.cancel()
        self._ready.pop(partition, None)
        self._failures.pop(partition, None)
        for table in self.tables.values():
            table.release(partition)
            if table.name in WIPED_ON_RELEASE:
                table.store.wipe(partition)

    async def _restore(self, partition: int) -> None:
        delay = 1.0
        stores = {topic: table.store for topic, table in self.tables.items()}
        while True:
            try:
                done = await restore_partition(self._new_consumer, stores, partition, stall_seconds=self._stall_seconds)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failures[partition] = f"{exc} ({type(exc).__name__})"
                log.error("restoring partition %d failed: %s; retrying in %.0f s", partition, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
                continue
            self._failures.pop(partition, None)
            read = ", ".join(f"{topic} {count}" for topic, count in done.records.items() if count)
            log.info("partition %d restored in %.2f s (%s)", partition, done.seconds, read or "nothing to read")
            self._ready.setdefault(partition, asyncio.Event()).set()
            return
