"""Partitions in memory: dicts, sorted when iterated."""

from __future__ import annotations

from collections.abc import Iterator

from smsdispatch.adapters.partitions._store import Records


class MemoryPartitions:
    def __init__(self) -> None:
        self._data: dict[int, dict[bytes, bytes]] = {}
        self._offsets: dict[int, int] = {}

    def get(self, partition: int, key: bytes) -> bytes | None:
        return self._data.get(partition, {}).get(key)

    def write(self, partition: int, records: Records, offset: int) -> None:
        data = self._data.setdefault(partition, {})
        for key, value in list(records):
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        self._offsets[partition] = offset

    def offset(self, partition: int) -> int | None:
        return self._offsets.get(partition)

    def items(self, partition: int, after: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        data = self._data.get(partition, {})
        for key in sorted(key for key in data if after is None or key > after):
            value = data.get(key)
            if value is not None:
                yield key, value

    def partitions(self) -> list[int]:
        return sorted(self._data)

    def approximate_len(self, partition: int) -> int:
        return len(self._data.get(partition, {}))

    def wipe(self, partition: int) -> None:
        self._data.pop(partition, None)
        self._offsets.pop(partition, None)

    def release(self, partition: int) -> None:
        pass  # memory is the store: releasing would lose it, and a partition that comes back restores the rest

    def close(self) -> None:
        pass
