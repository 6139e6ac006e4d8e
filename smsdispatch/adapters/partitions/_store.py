"""What a partitioned store offers: per partition, a sorted key-value map and the changelog offset it reflects."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

#: Records to write: ``(key, value)``, a value of None deleting the key.
Records = Iterable[tuple[bytes, bytes | None]]


class PartitionStore(Protocol):
    """Partitions are opened on first use and stay open until :meth:`release` or :meth:`close`."""

    def get(self, partition: int, key: bytes) -> bytes | None: ...

    def write(self, partition: int, records: Records, offset: int) -> None:
        """Apply ``records`` and record ``offset`` (the changelog offset they reflect), atomically."""

    def offset(self, partition: int) -> int | None:
        """The changelog offset the partition's data reflects (the last one applied); None: nothing yet."""

    def items(self, partition: int, after: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """The partition's entries in key order, from the first key after ``after`` (the offset left out)."""

    def partitions(self) -> list[int]:
        """The partitions open now."""

    def approximate_len(self, partition: int) -> int: ...

    def wipe(self, partition: int) -> None:
        """Forget everything of the partition, its offset included."""

    def release(self, partition: int) -> None:
        """Close the partition (its data stays for a later open)."""

    def close(self) -> None: ...
