"""A table whose truth is a Kafka changelog: read from a local partitioned store, written through the changelog.

The ledger and the pending polls and webhooks live in these (:mod:`smsdispatch.core.ledger`,
:mod:`smsdispatch.core.durable_map`). The shape is Quix Streams' checkpoint, in small:

1. :meth:`ChangelogTable.put` records a change in memory at once (reads see it from then on) and returns its
   changelog write, for the caller to see through (and to call again if it failed);
2. once Kafka has acknowledged that record, the change waits in memory with the record's offset;
3. :meth:`ChangelogTable.checkpoint` (every second, and before a partition is let go) writes, per partition,
   every acknowledged change and the offset of the last in **one** batch (:meth:`PartitionStore.write`).

Guarantees: the store never holds a change without the offset that covers it, nor an offset ahead of the
changes it covers, whatever a crash interrupts; a restore (:mod:`smsdispatch.runtime.restore`) reads the
changelog after that offset and loses nothing. A read sees the latest change made here, acknowledged or not.
Limits: :meth:`scan` walks the store, so a key added since the last checkpoint is found by the scan after the
next one (at most a second later); a change the scan finds in memory overrides what the store holds. Changes to
the same key are written to the changelog in the order they are made, so callers must not retry an older
change's write after a newer one's (they see each write through before the next, as the ledger does).
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from smsdispatch.adapters.partitions import PartitionStore

#: Where a scan stands: (partition, last key seen), or None to start from the beginning.
Cursor = tuple[int, bytes] | None

#: The changelog write of a change already made: call it (again, if it failed) until Kafka has it.
ChangelogWrite = Callable[[], Awaitable[Any]]


class ChangelogWriter(Protocol):
    """Sends one record to a changelog partition; the awaitable completes (with Kafka's record metadata) once Kafka
    has it."""

    def __call__(self, key: bytes, value: bytes | None, partition: int) -> Awaitable[Any]: ...


@dataclass
class _Change:
    value: bytes | None
    sequence: int


class ChangelogTable:
    """One table (``name``) over ``store``, writing each change to its changelog with ``write_changelog``."""

    def __init__(self, name: str, store: PartitionStore, write_changelog: ChangelogWriter) -> None:
        self.name = name
        self.store = store
        self._write_changelog = write_changelog
        self._sequence = itertools.count(1)
        #: The latest change per key not yet in the store, per partition.
        self._changes: dict[int, dict[bytes, _Change]] = {}
        #: Acknowledged changes waiting for the next checkpoint: (offset, key, change), per partition.
        self._acknowledged: dict[int, list[tuple[int, bytes, _Change]]] = {}
        #: Partitions let go: acknowledgements still arriving for them are not kept (the next owner restores).
        self._released: set[int] = set()

    def get(self, key: bytes, partition: int | None = None) -> bytes | None:
        """The key's value in ``partition`` (where the caller knows it lives), or in any partition held here."""
        partitions = [partition] if partition is not None else sorted({*self._changes, *self.store.partitions()})
        for where in partitions:
            change = self._changes.get(where, {}).get(key)
            if change is not None:
                if change.value is not None:
                    return change.value
                continue
            value = self.store.get(where, key)
            if value is not None:
                return value
        return None

    def put(self, partition: int, key: bytes, value: bytes | None) -> ChangelogWrite:
        """Make the change now (``None`` deletes); returns its changelog write."""
        self._released.discard(partition)
        change = _Change(value, next(self._sequence))
        self._changes.setdefault(partition, {})[key] = change
        return partial(self._send, partition, key, change)

    async def _send(self, partition: int, key: bytes, change: _Change) -> Any:
        metadata = await self._write_changelog(key, change.value, partition)
        offset = getattr(metadata, "offset", None)
        if isinstance(offset, int) and partition not in self._released:
            self._acknowledged.setdefault(partition, []).append((offset, key, change))
        return metadata

    def checkpoint(self) -> None:
        """Write every acknowledged change to the store, with its partition's offset, one batch per partition."""
        for partition in list(self._acknowledged):
            self._persist(partition)

    def _persist(self, partition: int) -> None:
        acknowledged = self._acknowledged.pop(partition, [])
        if not acknowledged:
            return
        acknowledged.sort(key=lambda entry: entry[0])
        self.store.write(partition, [(key, change.value) for _, key, change in acknowledged], acknowledged[-1][0])
        pending = self._changes.get(partition, {})
        for _, key, change in acknowledged:
            if pending.get(key) is change:
                del pending[key]  # the store holds it now; a newer change of the key stays in memory

    def release(self, partition: int) -> None:
        """Let ``partition`` go (it moved to another worker): write what was acknowledged, forget the rest, close
        its store. The next owner restores it from the changelog, changes still in flight included."""
        self._persist(partition)
        self._changes.pop(partition, None)
        self._released.add(partition)
        self.store.release(partition)

    def scan(self, cursor: Cursor, limit: int) -> tuple[list[tuple[bytes, bytes]], Cursor]:
        """Up to ``limit`` entries of the store after ``cursor`` (as changed here since), and the next cursor; None
        once the end of the last partition was reached."""
        taken: list[tuple[bytes, bytes]] = []
        for partition in self.store.partitions():
            if cursor is not None and partition < cursor[0]:
                continue
            after = cursor[1] if cursor is not None and partition == cursor[0] else None
            pending = self._changes.get(partition, {})
            for key, value in self.store.items(partition, after):
                if len(taken) >= limit:
                    return taken, cursor
                cursor = (partition, key)
                change = pending.get(key)
                if change is None:
                    taken.append((key, value))
                elif change.value is not None:
                    taken.append((key, change.value))
        return taken, None

    def approximate_len(self) -> int:
        held = sum(self.store.approximate_len(partition) for partition in self.store.partitions())
        return held + sum(len(changes) for changes in self._changes.values())
