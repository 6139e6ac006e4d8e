"""Work still to do, kept in a store made durable by its changelog: pending status polls and pending webhook
deliveries.

Like the ledger (:mod:`smsdispatch.core.ledger`), a :class:`DurableMap` makes a change in its store at once and
writes it to the changelog, returning once Kafka has the write, into the partition it is told (the tenant's): the
worker that owns a tenant's partitions owns its pending work, and the next owner recovers it from the
changelog after a rebalance or a restart. Writes are compare-and-set where a concurrent change must win (a
callback settling a poll while the poll runs): the store is checked and written with no await in between, so
on one event loop nothing interleaves.

Limits: :meth:`scan` walks the store from a cursor, a bounded number of entries per call, so finding what is
due costs a sweep of the whole store over several calls (fine for the thousands a worker holds pending; a
due-time index would be the next step for millions). The store may hold partitions this worker owned before:
callers filter by ownership.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from smsdispatch.core.ledger_store import ChangelogWrite, ChangelogWriter, Cursor, LedgerStore, MappingStore

__all__ = ["ChangelogWrite", "DurableMap"]


class DurableMap:
    def __init__(
        self, store: LedgerStore | MutableMapping[bytes, bytes], write_changelog: ChangelogWriter | None = None
    ) -> None:
        """A plain mapping (tests) needs ``write_changelog``; a :class:`LedgerStore` writes its own changelog."""
        if isinstance(store, MutableMapping):
            if write_changelog is None:
                raise TypeError("a durable map over a plain mapping needs write_changelog")
            store = MappingStore(store, write_changelog)
        self._store: LedgerStore = store
        self._cursor: Cursor = None

    def get(self, key: bytes) -> bytes | None:
        return self._store.get(key)

    def put(self, partition: int, key: bytes, value: bytes | None) -> ChangelogWrite:
        """Write (``None``: delete) now in the store; returns the changelog write, for the caller to see through
        (a retry repeats only the changelog write: the store already holds the change)."""
        return self._store.put(partition, key, value)

    def add_if_absent(self, partition: int, key: bytes, value: bytes) -> ChangelogWrite | None:
        """Write ``value`` unless the key is held already (a record seen again must not restart its schedule);
        None when nothing was written."""
        # Only where it would be (every write of a key goes to the partition its caller names): a miss asked in
        # every open RocksDB cost about 50 µs per outcome, and most keys added are new.
        if self._store.get(key, partition) is not None:
            return None
        return self.put(partition, key, value)

    def discard(self, partition: int, key: bytes) -> ChangelogWrite | None:
        """Delete the key if it is held; None when it was not."""
        return self.put(partition, key, None) if self._store.get(key, partition) is not None else None

    def replace(self, partition: int, key: bytes, expected: bytes, value: bytes | None) -> ChangelogWrite | None:
        """Write ``value`` (``None``: delete) only while the store still holds ``expected``; None when it does
        not (someone else changed the entry since it was read, and their change stands)."""
        if self._store.get(key, partition) != expected:
            return None
        return self.put(partition, key, value)

    def scan(self, limit: int) -> list[tuple[bytes, bytes]]:
        """The next ``limit`` entries at most, going on from where the last call stopped (wrapping around)."""
        taken, self._cursor = self._store.scan(self._cursor, limit)
        return taken

    def checkpoint(self) -> None:
        self._store.checkpoint()

    def __len__(self) -> int:
        return self._store.approximate_len()
