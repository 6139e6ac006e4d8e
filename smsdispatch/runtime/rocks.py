"""RocksDB for the tables whose changelog is the truth (ledger, polls, webhooks): written without RocksDB's own
write-ahead log.

Why: each ``put`` also appended to the write-ahead log, a ``write`` system call. In the worker that made a put
cost about 31 µs instead of about 10 µs, three puts per request: about 60 µs, 5% of a request's CPU
(``benchmarks/dispatch_throughput.py --profile``, ``RocksStore.put`` samples 94 → 33 over the same burst).

Why it is safe. The files are a cache of the table's changelog in Kafka, and what they hold is described by the
restore position Faust keeps in them (``FAUST_OFFSET_KEY``, one per partition database): at start Faust replays
the changelog from that position. Without the log, a crash loses the writes not yet flushed from memory, and the
guarantee that matters is that the position is never lost *less* than the data it covers:

* every write of a partition, entries and position alike, goes to that partition's one database, and
  *all* of them skip the log (set here on the database itself when it is opened, so Faust's own restore writes
  too: a position kept by the log beside entries that were not would claim entries the files lack);
* RocksDB flushes its memtables in the order they were filled and commits them in that order, so what survives a
  crash is every write up to some point and none after it;
* a position is written only after the entries it covers (``RocksStore.applied`` after Kafka acknowledged the
  changelog write, which itself follows the put; Faust's restore writes a batch, then its position).

So after a crash the files hold a position and at least everything before it, and the restore replays the rest
from Kafka: a crash costs a longer restore (up to the unflushed memtables, a few MB per partition), never a
forgotten entry. A clean stop keeps everything: the worker flushes these tables as it stops
(:func:`flush_to_files`), and RocksDB flushes unlogged writes whenever it closes a database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faust.stores.rocksdb import RocksDBOptions
from faust.stores.rocksdb import Store as FaustRocksStore
from rocksdict import WriteOptions


class UnloggedRocksOptions(RocksDBOptions):
    """Faust's RocksDB options, opening each database with writes that skip the write-ahead log."""

    def open(self, path: Path, *, read_only: bool = False) -> Any:
        db = super().open(path, read_only=read_only)
        unlogged = WriteOptions()
        # A property at run time; rocksdict's stub calls it a method (tests/runtime/test_rocks.py proves it works).
        unlogged.disable_wal = True  # type: ignore[method-assign,assignment]
        db.set_write_options(unlogged)
        return db


def write_without_log(table: Any) -> None:
    """Make ``table``'s RocksDB store (if it has one) open its databases unlogged. Call before the app starts:
    a database opened earlier keeps its log, and the two must not be mixed (see the module docstring)."""
    store = table.data
    if not isinstance(store, FaustRocksStore):
        return  # the in-memory store: restored whole at every start
    if not store.use_rocksdict:
        raise RuntimeError("the worker's tables need the rocksdict driver (python-rocksdb has no unlogged writes)")
    # The sizes, cache and filters the table was configured with (Faust's store keeps them in ``options``).
    store.rocksdb_options = UnloggedRocksOptions(**(store.options or {}), use_rocksdict=True)


def flush_to_files(table: Any) -> None:
    """Write ``table``'s unlogged writes held in memory to its files (a clean stop): the next start then replays
    nothing it already had. RocksDB also does this when a database is closed; this does not rely on when Faust
    lets go of its databases."""
    store = table.data
    if isinstance(store, FaustRocksStore):
        for db in list(store._dbs.values()):
            db.flush()
