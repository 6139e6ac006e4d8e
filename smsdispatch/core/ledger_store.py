"""Where the ledger's entries live: RocksDB files under the worker's ``--data-dir`` (the default), or memory.

The ledger grows with traffic (one entry per request for the retention, 7 days by default): in memory that was
about 480 bytes per request, gigabytes a week at modest rates. In RocksDB the worker's memory stays flat and the
entries cost disk instead. ``SMSDISPATCH_LEDGER_STORE=memory`` keeps the in-memory store (tests, demos).

Both stores are Faust's own for the ledger table, so Faust restores them from the changelog: all of it into
memory at every start, or into RocksDB only what was written after the offset the files already hold (a warm
start), everything when the directory is empty. The ledger writes through :class:`LedgerStore` rather than
``table[key] = value`` (see :mod:`smsdispatch.core.ledger` for why), so this module also

* puts each entry in the RocksDB of its own partition, which Faust's store would take from the *current event*
  (there is none in the pipeline's tasks), and
* records, after each changelog write Kafka acknowledged, that the files hold the changelog up to that offset
  (the value was written to RocksDB before it was sent), so a warm start replays only what came after.

Scans for expiry go key by key from a cursor, a bounded number per call, and never load the whole store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, MutableMapping
from typing import Any, Protocol

#: Faust keeps its restore position in each partition's RocksDB under this key; it is not a ledger entry.
FAUST_OFFSET_KEY = b"__faust\0offset__"

#: Where a scan stands: (partition, last key seen), or None to start from the beginning.
Cursor = tuple[int, bytes] | None


class LedgerStore(Protocol):
    def get(self, key: bytes, partition: int | None = None) -> bytes | None:
        """The value of ``key``; looked for in ``partition`` only when it is given (the caller knows where the
        entry would be), otherwise in every partition the store holds."""
        ...

    def put(self, partition: int, key: bytes, value: bytes) -> None: ...

    def delete(self, partition: int, key: bytes) -> None: ...

    def applied(self, partition: int, changelog_offset: int) -> None:
        """The store holds every changelog record of ``partition`` up to ``changelog_offset``."""

    def checkpoint(self) -> None:
        """Write down the positions :meth:`applied` has not written yet (a store may write them lazily)."""

    def scan(self, cursor: Cursor, limit: int) -> tuple[list[tuple[bytes, bytes]], Cursor]:
        """Up to ``limit`` entries after ``cursor``; the next cursor, or None once the end was reached."""
        ...

    def approximate_len(self) -> int: ...


class MappingStore:
    """A ledger store over any mapping: Faust's in-memory table store, or a dict in tests. Partitions are not
    kept apart (the mapping has one namespace), so scans walk the sorted keys: fine for what fits in memory."""

    def __init__(self, data: MutableMapping[bytes, bytes]) -> None:
        self.data = data

    def get(self, key: bytes, partition: int | None = None) -> bytes | None:
        return self.data.get(key)

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        self.data[key] = value

    def delete(self, partition: int, key: bytes) -> None:
        self.data.pop(key, None)

    def applied(self, partition: int, changelog_offset: int) -> None:
        pass  # restored whole at every start: nothing to remember

    def checkpoint(self) -> None:
        pass

    def scan(self, cursor: Cursor, limit: int) -> tuple[list[tuple[bytes, bytes]], Cursor]:
        keys = sorted(key for key in self.data if cursor is None or key > cursor[1])
        taken = [(key, self.data[key]) for key in keys[:limit]]
        return taken, ((0, taken[-1][0]) if len(keys) > limit else None)

    def approximate_len(self) -> int:
        return len(self.data)


class RocksStore:
    """A ledger store over Faust's RocksDB table store: one database per partition (rocksdict ``Rdict``). The
    runtime builds it over Faust's store (:func:`smsdispatch.runtime.app.rocks_store_over`); this class touches
    only the three callables it is given."""

    def __init__(
        self,
        db_for_partition: Callable[[int], Any],
        open_partitions: Callable[[], Collection[int]],
        persist_offset: Callable[[int, int], None],
    ) -> None:
        self._db_for = db_for_partition
        self._open_partitions = open_partitions
        self._persist_offset = persist_offset
        # The restore position is written at most once a second per partition: one more RocksDB write per
        # changelog write cost 3% of the worker's CPU, and a position a second old only replays a second more.
        self._applied: dict[int, int] = {}
        self._applied_written_at: dict[int, float] = {}
        self._applied_written: dict[int, int] = {}

    def get(self, key: bytes, partition: int | None = None) -> bytes | None:
        # One partition when the caller knows it: a new request (the common case) is a miss in every partition,
        # and each miss costs a memtable search on top of the bloom filters (2% of the worker's CPU for 8). Only
        # open ones, as without a hint: asking for another would open its database.
        held = self._open_partitions()
        for where in (partition,) if partition is not None and partition in held else held:
            db = self._db_for(where)
            if db.key_may_exist(key):  # a bloom-filter check: cheap for the partitions that do not hold it
                value: bytes | None = db.get(key)
                if value is not None:
                    return value
        return None

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        self._db_for(partition).put(key, value)

    def delete(self, partition: int, key: bytes) -> None:
        self._db_for(partition).delete(key)

    def applied(self, partition: int, changelog_offset: int) -> None:
        if changelog_offset <= self._applied.get(partition, -1):
            return
        self._applied[partition] = changelog_offset
        if time.monotonic() - self._applied_written_at.get(partition, -1.0) >= 1.0:
            self._write_applied(partition)

    def checkpoint(self) -> None:
        for partition, offset in self._applied.items():
            if self._applied_written.get(partition) != offset:
                self._write_applied(partition)

    def _write_applied(self, partition: int) -> None:
        offset = self._applied[partition]
        self._persist_offset(partition, offset)
        self._applied_written[partition] = offset
        self._applied_written_at[partition] = time.monotonic()

    def scan(self, cursor: Cursor, limit: int) -> tuple[list[tuple[bytes, bytes]], Cursor]:
        partitions = sorted(self._open_partitions())
        taken: list[tuple[bytes, bytes]] = []
        for partition in partitions:
            if cursor is not None and partition < cursor[0]:
                continue
            after = cursor[1] if cursor is not None and partition == cursor[0] else None
            for key, value in self._db_for(partition).items(from_key=after):
                if key in (after, FAUST_OFFSET_KEY):
                    continue
                if len(taken) >= limit:
                    return taken, cursor
                taken.append((key, value))
                cursor = (partition, key)
        return taken, None

    def approximate_len(self) -> int:
        return sum(
            int(self._db_for(partition).property_int_value("rocksdb.estimate-num-keys") or 0)
            for partition in self._open_partitions()
        )
