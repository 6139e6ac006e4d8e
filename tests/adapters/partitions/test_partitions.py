"""Per-partition stores: each write is one batch of records and the offset they reflect, in RocksDB or in memory.
Crashes are real: a child process that exits without closing its databases (``os._exit``), as SIGKILL would."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from rocksdict import Options, Rdict

from smsdispatch.adapters.partitions import OFFSET_KEY, MemoryPartitions, PartitionStore, RocksOptions, RocksPartitions

ENTRIES = 20_000


@pytest.fixture(params=["rocksdb", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PartitionStore]:
    made: PartitionStore = RocksPartitions(tmp_path, "ledger") if request.param == "rocksdb" else MemoryPartitions()
    yield made
    made.close()


def test_a_write_applies_its_records_and_records_its_offset(store: PartitionStore) -> None:
    store.write(3, [(b"a", b"1"), (b"b", b"2")], offset=10)
    store.write(3, [(b"a", None), (b"c", b"3")], offset=11)

    assert (store.get(3, b"a"), store.get(3, b"b"), store.get(3, b"c")) == (None, b"2", b"3")
    assert store.offset(3) == 11
    assert store.offset(4) is None
    assert store.get(4, b"b") is None, "partitions are kept apart"
    assert list(store.items(3)) == [(b"b", b"2"), (b"c", b"3")], "in key order, the offset left out"
    assert list(store.items(3, after=b"b")) == [(b"c", b"3")]


def test_wiping_a_partition_forgets_its_data_and_offset(store: PartitionStore) -> None:
    store.write(0, [(b"a", b"1")], offset=5)
    store.write(1, [(b"a", b"1")], offset=6)

    store.wipe(0)

    assert (store.get(0, b"a"), store.offset(0)) == (None, None)
    assert (store.get(1, b"a"), store.offset(1)) == (b"1", 6)


def test_a_released_rocksdb_partition_keeps_its_data_for_the_next_open(tmp_path: Path) -> None:
    store = RocksPartitions(tmp_path, "polls")
    store.write(2, [(b"k", b"v")], offset=99)
    store.release(2)
    assert store.partitions() == []

    again = RocksPartitions(tmp_path, "polls")
    try:
        assert (again.get(2, b"k"), again.offset(2)) == (b"v", 99)
        assert again.partitions() == [2]
    finally:
        again.close()


def test_a_partition_written_by_fausts_rocksdb_store_opens_with_its_entries_and_restore_position(
    tmp_path: Path,
) -> None:
    # What the versions that kept the ledger in a Faust table left: raw keys, the position as decimal digits.
    db = Rdict(str(tmp_path / "ledger-5.db"), Options(raw_mode=True))
    db.put(b"acme\x1fr-1", b'{"state":"done"}')
    db.put(b"__faust\x00offset__", b"41")
    db.close()

    store = RocksPartitions(tmp_path, "ledger")
    try:
        assert store.offset(5) == 41
        assert list(store.items(5)) == [(b"acme\x1fr-1", b'{"state":"done"}')]
    finally:
        store.close()
    assert OFFSET_KEY == b"__faust\x00offset__"


def test_rocksdb_partitions_are_written_without_the_write_ahead_log(tmp_path: Path) -> None:
    run_child(
        f"""
        import os
        from pathlib import Path
        from smsdispatch.adapters.partitions import RocksPartitions

        store = RocksPartitions(Path({str(tmp_path)!r}), "ledger")  # held: a database let go is closed, and flushed
        store.write(0, [(b"written", b"then crashed")], offset=1)
        os._exit(0)
        """
    )
    db = Rdict(str(tmp_path / "ledger-0.db"), Options(raw_mode=True))
    try:
        assert db.get(b"written") is None, "the write survived the crash: it went through a write-ahead log"
    finally:
        db.close()


def test_a_crash_keeps_an_offset_and_exactly_the_records_up_to_it(tmp_path: Path) -> None:
    # Small memtables, so that the child's writes are flushed several times before it dies mid-stream.
    run_child(
        f"""
        import os
        from pathlib import Path
        from smsdispatch.adapters.partitions import RocksOptions, RocksPartitions

        store = RocksPartitions(Path({str(tmp_path)!r}), "ledger", RocksOptions(write_buffer_size=256 * 1024))
        for offset in range({ENTRIES}):
            store.write(0, [(b"entry-%08d" % offset, b"x" * 512)], offset=offset)
        os._exit(0)  # no close: the memtables die with the process
        """
    )

    store = RocksPartitions(tmp_path, "ledger", RocksOptions())
    try:
        position = store.offset(0)
        assert position is not None
        assert 0 < position < ENTRIES - 1, "some, not all, batches reached the files"
        present = {key for key, _ in store.items(0)}
    finally:
        store.close()
    assert present == {b"entry-%08d" % offset for offset in range(position + 1)}


def test_a_clean_close_keeps_every_write(tmp_path: Path) -> None:
    store = RocksPartitions(tmp_path, "webhooks")
    store.write(0, [(b"k", b"kept")], offset=7)
    store.close()

    again = RocksPartitions(tmp_path, "webhooks")
    try:
        assert (again.get(0, b"k"), again.offset(0)) == (b"kept", 7)
    finally:
        again.close()


def run_child(script: str) -> None:
    subprocess.run([sys.executable, "-c", textwrap.dedent(script)], check=True, timeout=120)
