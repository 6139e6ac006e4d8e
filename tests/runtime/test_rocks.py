"""The changelog tables' RocksDB files are written without RocksDB's write-ahead log, and a crash still never
leaves a restore position ahead of the entries it covers. Crashes are real: a child process that exits
without closing its databases (``os._exit``), as SIGKILL would."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from rocksdict import Options, Rdict

from smsdispatch.contract.settings import Settings
from smsdispatch.core.ledger_store import FAUST_OFFSET_KEY
from smsdispatch.runtime.app import create_app
from smsdispatch.runtime.rocks import UnloggedRocksOptions, flush_to_files

ENTRIES = 20_000


def run_child(script: str) -> None:
    subprocess.run([sys.executable, "-c", textwrap.dedent(script)], check=True, timeout=120)


def reopen(path: Path) -> Rdict:
    return Rdict(str(path), Options(raw_mode=True))


def test_a_crash_loses_unflushed_entries_and_never_leaves_the_restore_position_ahead_of_them(tmp_path: Path) -> None:
    # Small memtables, so that the child's writes are flushed several times before it dies mid-stream.
    run_child(
        f"""
        import os
        from smsdispatch.core.ledger_store import FAUST_OFFSET_KEY, RocksStore
        from smsdispatch.runtime.rocks import UnloggedRocksOptions

        db = UnloggedRocksOptions(write_buffer_size=256 * 1024, use_rocksdict=True).open({str(tmp_path / "p0")!r})
        def persist(_partition, offset):
            db.put(FAUST_OFFSET_KEY, str(offset).encode())

        store = RocksStore(lambda _partition: db, lambda: [0], persist)
        for offset in range({ENTRIES}):
            store.put(0, b"entry-%08d" % offset, b"x" * 512)  # the entry, then (after Kafka took it) its position
            if offset % 100 == 0:
                store.applied(0, offset)
                store.checkpoint()
        os._exit(0)  # no close: the memtables die with the process
        """
    )

    db = reopen(tmp_path / "p0")
    try:
        position = int(db[FAUST_OFFSET_KEY])
        assert db.get(b"entry-%08d" % (ENTRIES - 1)) is None, "the last writes should have died with the process"
        missing = [offset for offset in range(position + 1) if db.get(b"entry-%08d" % offset) is None]
    finally:
        db.close()
    assert position > 0, "some memtables should have been flushed before the crash"
    assert missing == []


def test_a_clean_close_keeps_every_unlogged_write(tmp_path: Path) -> None:
    db = UnloggedRocksOptions(use_rocksdict=True).open(tmp_path / "p0")
    db.put(b"entry", b"kept")
    db.put(FAUST_OFFSET_KEY, b"7")
    db.close()

    again = reopen(tmp_path / "p0")
    try:
        assert again.get(b"entry") == b"kept"
        assert again.get(FAUST_OFFSET_KEY) == b"7"
    finally:
        again.close()


def test_the_workers_ledger_polls_and_webhooks_tables_open_their_databases_unlogged(tmp_path: Path) -> None:
    run_child(
        f"""
        import os
        from smsdispatch.contract.settings import Settings
        from smsdispatch.runtime.app import create_app

        streams = create_app(Settings(broker="kafka://localhost:1", data_dir={str(tmp_path)!r}))
        for table in (streams.ledger_table, streams.polls_table, streams.webhooks_table):
            db = table.data._db_for_partition(0)
            db.put(b"written", b"then crashed")
            print(table.data.partition_path(0))
        os._exit(0)
        """
    )
    paths = sorted(tmp_path.rglob("*-0.db"))
    assert len(paths) == 3, paths
    for path in paths:
        db = reopen(path)
        try:
            assert db.get(b"written") is None, f"{path.name} kept a write through the crash: it has a write-ahead log"
        finally:
            db.close()


def test_the_workers_unlogged_tables_keep_their_configured_sizes(tmp_path: Path) -> None:
    streams = create_app(Settings(broker="kafka://localhost:1", data_dir=str(tmp_path)))
    options = streams.ledger_table.data.rocksdb_options
    assert isinstance(options, UnloggedRocksOptions)
    assert (options.write_buffer_size, options.block_cache_size) == (4 * 1024 * 1024, 8 * 1024 * 1024)


def test_the_in_memory_ledger_store_is_left_as_it_is(tmp_path: Path) -> None:
    streams = create_app(Settings(broker="kafka://localhost:1", data_dir=str(tmp_path), ledger_store="memory"))
    assert not hasattr(streams.ledger_table.data, "rocksdb_options")


def test_a_table_flushed_at_a_clean_stop_keeps_its_unlogged_writes_whatever_happens_after(tmp_path: Path) -> None:
    run_child(
        f"""
        import os
        from smsdispatch.contract.settings import Settings
        from smsdispatch.runtime.app import create_app
        from smsdispatch.runtime.rocks import flush_to_files

        streams = create_app(Settings(broker="kafka://localhost:1", data_dir={str(tmp_path)!r}))
        for table in (streams.ledger_table, streams.polls_table, streams.webhooks_table):
            table.data._db_for_partition(0).put(b"written", b"then flushed")
            flush_to_files(table)
        os._exit(0)  # the databases are never closed
        """
    )
    paths = sorted(tmp_path.rglob("*-0.db"))
    assert len(paths) == 3, paths
    for path in paths:
        db = reopen(path)
        try:
            assert db.get(b"written") == b"then flushed", path.name
        finally:
            db.close()


def test_flushing_a_table_in_memory_does_nothing(tmp_path: Path) -> None:
    streams = create_app(Settings(broker="kafka://localhost:1", data_dir=str(tmp_path), ledger_store="memory"))
    flush_to_files(streams.ledger_table)
    assert list(tmp_path.rglob("*.db")) == []
