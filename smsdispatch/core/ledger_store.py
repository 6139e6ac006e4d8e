"""What the ledger and the pending-work maps read and write: a store per partition whose truth is a changelog.

The worker's store is a :class:`~smsdispatch.core.changelog_table.ChangelogTable` (RocksDB files under the data
dir by default, or memory), which writes a change to the store only once Kafka has it, with its offset.
:class:`MappingStore` is the plain one over a dict, for tests: a change is in the dict at once.

Scans go key by key from a cursor, a bounded number per call, and never load the whole store.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from functools import partial
from typing import Protocol

from smsdispatch.core.changelog_table import ChangelogWrite, ChangelogWriter, Cursor

__all__ = ["ChangelogWrite", "ChangelogWriter", "Cursor", "LedgerStore", "MappingStore"]


class LedgerStore(Protocol):
    def get(self, key: bytes, partition: int | None = None) -> bytes | None:
        """The value of ``key``; looked for in ``partition`` only when it is given (the caller knows where the
        entry would be), otherwise in every partition the store holds."""
        ...

    def put(self, partition: int, key: bytes, value: bytes | None) -> ChangelogWrite:
        """Make the change now (``None`` deletes); returns its changelog write, for the caller to see through."""
        ...

    def checkpoint(self) -> None:
        """Write down what Kafka acknowledged (a store may write it lazily)."""

    def scan(self, cursor: Cursor, limit: int) -> tuple[list[tuple[bytes, bytes]], Cursor]:
        """Up to ``limit`` entries after ``cursor``; the next cursor, or None once the end was reached."""
        ...

    def approximate_len(self) -> int: ...


class MappingStore:
    """A store over any mapping (a dict in tests). Partitions are not kept apart (the mapping has one namespace),
    so scans walk the sorted keys: fine for what fits in memory."""

    def __init__(self, data: MutableMapping[bytes, bytes], write_changelog: ChangelogWriter) -> None:
        self.data = data
        self._write_changelog = write_changelog

    def get(self, key: bytes, partition: int | None = None) -> bytes | None:
        return self.data.get(key)

    def put(self, partition: int, key: bytes, value: bytes | None) -> ChangelogWrite:
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value
        return partial(self._write_changelog, key, value, partition)

    def checkpoint(self) -> None:
        pass

    def scan(self, cursor: Cursor, limit: int) -> tuple[list[tuple[bytes, bytes]], Cursor]:
        keys = sorted(key for key in self.data if cursor is None or key > cursor[1])
        taken = [(key, self.data[key]) for key in keys[:limit]]
        return taken, ((0, taken[-1][0]) if len(keys) > limit else None)

    def approximate_len(self) -> int:
        return len(self.data)
