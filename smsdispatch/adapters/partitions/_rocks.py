"""Partitions in RocksDB (rocksdict), one database per partition, written without RocksDB's write-ahead log.

Why no write-ahead log, and why that is safe: every write is one ``WriteBatch`` holding the records and the
changelog offset they reflect, so whatever a crash keeps of the unflushed memtables, the files hold an offset and
exactly the data up to it (RocksDB keeps batches whole and in order). The changelog in Kafka is the truth; a
crash costs a longer restore from it, never an entry the offset claims. :meth:`RocksPartitions.flush` (a clean
stop) writes the memtables to the files, so the next start replays nothing it had.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rocksdict import (
    AccessType,
    BlockBasedIndexType,
    BlockBasedOptions,
    Cache,
    Options,
    Rdict,
    ReadOptions,
    WriteBatch,
    WriteOptions,
)

from smsdispatch.adapters.partitions._store import Records

#: Where a partition's changelog offset is kept, beside its data: the key Faust's RocksDB store used, with the
#: same meaning (the offset of the last changelog record applied) and encoding (decimal digits), so a data
#: directory written by the versions that kept these stores in Faust's tables opens as it is.
OFFSET_KEY = b"__faust\0offset__"


@dataclass(frozen=True)
class RocksOptions:
    """Sized so that memory stays small and flat (RocksDB's defaults give each database 3 x 64 MB of write
    buffers and a large block cache): a worker holds up to three stores of as many partitions as it owns."""

    write_buffer_size: int = 4 * 1024 * 1024
    max_write_buffer_number: int = 2
    target_file_size_base: int = 16 * 1024 * 1024
    block_cache_size: int = 8 * 1024 * 1024
    max_open_files: int = 256
    bloom_filter_bits: int = 3

    def open(self, path: Path) -> Rdict:
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        options.set_max_open_files(self.max_open_files)
        options.set_write_buffer_size(self.write_buffer_size)
        options.set_target_file_size_base(self.target_file_size_base)
        options.set_max_write_buffer_number(self.max_write_buffer_number)
        table = BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_bits, block_based=True)
        table.set_block_cache(Cache(self.block_cache_size))
        table.set_index_type(BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        db = Rdict(str(path), options=options, access_type=AccessType.read_write())
        db.set_read_options(ReadOptions())
        db.set_write_options(UNLOGGED)
        return db


def _unlogged() -> WriteOptions:
    options = WriteOptions()
    # A property at run time; rocksdict's stub calls it a method.
    options.disable_wal = True  # type: ignore[method-assign,assignment]
    return options


#: Writes that skip RocksDB's write-ahead log (``Rdict.write`` takes its options per call, not the database's).
UNLOGGED = _unlogged()


class RocksPartitions:
    """The databases ``<directory>/<name>-<partition>.db``."""

    def __init__(self, directory: Path, name: str, options: RocksOptions | None = None) -> None:
        self._directory = directory
        self._name = name
        self._options = options or RocksOptions()
        self._dbs: dict[int, Rdict] = {}

    def path(self, partition: int) -> Path:
        return self._directory / f"{self._name}-{partition}.db"

    def _db(self, partition: int) -> Rdict:
        db = self._dbs.get(partition)
        if db is None:
            self._directory.mkdir(parents=True, exist_ok=True)
            db = self._dbs[partition] = self._options.open(self.path(partition))
        return db

    def get(self, partition: int, key: bytes) -> bytes | None:
        db = self._db(partition)
        if not db.key_may_exist(key):  # a bloom-filter check: most keys asked for are new
            return None
        value: bytes | None = db.get(key)
        return value

    def write(self, partition: int, records: Records, offset: int) -> None:
        batch = WriteBatch(raw_mode=True)
        for key, value in records:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        batch.put(OFFSET_KEY, str(offset).encode())
        self._db(partition).write(batch, UNLOGGED)

    def offset(self, partition: int) -> int | None:
        raw: Any = self._db(partition).get(OFFSET_KEY)
        return int(raw) if raw is not None else None

    def items(self, partition: int, after: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        for key, value in self._db(partition).items(from_key=after):
            if isinstance(key, bytes) and key not in (OFFSET_KEY, after):
                yield key, value

    def partitions(self) -> list[int]:
        return sorted(self._dbs)

    def approximate_len(self, partition: int) -> int:
        db = self._dbs.get(partition)
        if db is None:
            return 0
        return max(0, int(db.property_int_value("rocksdb.estimate-num-keys") or 0) - 1)  # less the offset

    def wipe(self, partition: int) -> None:
        self.release(partition)
        shutil.rmtree(self.path(partition), ignore_errors=True)

    def release(self, partition: int) -> None:
        db = self._dbs.pop(partition, None)
        if db is not None:
            db.flush()
            db.close()

    def flush(self) -> None:
        for db in self._dbs.values():
            db.flush()

    def close(self) -> None:
        for partition in list(self._dbs):
            self.release(partition)
