"""The Faust application: its configuration, the contract topics, and the two tables.

Configuration choices, each because of a Faust trap (docs/reference/faust-kafka.md):

* at-least-once (never ``exactly_once``: open duplicate/crash bugs); idempotency comes from the ledger;
* raw bytes in and out (``value_serializer="raw"``): values are decoded by pydantic, so a bad record becomes
  an ``invalid_request`` outcome instead of a decode error that Faust would ack and drop;
* ``table_standby_replicas=0`` and the in-memory store: tables recover from their changelogs on start;
* the topics the worker consumes are read with Faust's acking off (``acks=False``): Faust acks records it
  skips after a rebalance and gaps it sees, and commits past unprocessed records (measured; see
  :mod:`smsdispatch.runtime.commits`). The worker commits those offsets itself (:attr:`StreamsApp.commits`);
* ``stream_wait_empty``: on a rebalance (and on shutdown) Faust pauses fetching and waits for its streams
  before it gives partitions away. :class:`DrainingApp` runs the drain hooks (the pipelines'
  :meth:`~smsdispatch.core.pipeline.Pipeline.drain`, then a commit of what they finished) at the start of
  that wait, so in-flight sends finish within a bound, and records not finished are read again from the
  committed offset (Faust seeks every assigned partition there after each rebalance, and
  :class:`~smsdispatch.runtime.kafka_clients.RewindingConsumer` makes that hold for partitions never committed
  too);
* the ledger's, polls' and webhooks' RocksDB files are written without RocksDB's write-ahead log: they are a
  cache of their changelogs, and :mod:`smsdispatch.runtime.rocks` says why a crash cannot lose an entry;
* the producer is idempotent, so a retried write never lands twice; the broker holds a fetch that found nothing
  new for at most 100 ms, not Faust's fixed 1.5 s, and answers it once it has 16 KB, not at the first byte; the
  producer lingers 10 ms for writes to share a request (:mod:`smsdispatch.runtime.kafka_clients` has the
  clients, their settings and why);
* no ``isolated_partitions``: on revocation it cancels its actors and the worker exits (faust-streaming #529).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import faust
from faust.types import TP

from smsdispatch.contract import topics
from smsdispatch.contract.settings import Settings
from smsdispatch.core.ledger import ChangelogWriter
from smsdispatch.core.ledger_store import LedgerStore, RocksStore
from smsdispatch.runtime.commits import OffsetCommitter
from smsdispatch.runtime.kafka_clients import PRODUCER_LINGER_S, IdempotentProducer, RewindingConsumer
from smsdispatch.runtime.rocks import write_without_log

log = logging.getLogger(__name__)

DrainHook = Callable[[], Awaitable[None]]


class DrainingApp(faust.App):
    """A Faust app that drains the worker's pipelines wherever Faust waits for its streams to go empty.

    ``_consumer_wait_empty`` is the one place both the revocation path (``_on_partitions_revoked``) and the
    shutdown path (``_stop_consumer``) wait for in-flight records, after fetching is paused: the drain runs
    there, then Faust's own wait sees every record acked or given back, commits, and moves on.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.drain_hooks: list[DrainHook] = []

    def _new_consumer(self) -> Any:
        return RewindingConsumer(
            self.transport,
            callback=self.topics.on_message,
            on_partitions_revoked=self._on_partitions_revoked,
            on_partitions_assigned=self._on_partitions_assigned,
            beacon=self.beacon,
            loop=self.loop,
        )

    def _new_producer(self) -> Any:
        return IdempotentProducer(self.transport, loop=self.loop, beacon=self.beacon)

    async def _consumer_wait_empty(self, consumer: Any, logger: Any) -> None:
        for hook in self.drain_hooks:
            try:
                await hook()
            except Exception:  # a failed drain must not stop the rebalance: Faust's wait still follows
                log.exception("draining a pipeline failed")
        await super()._consumer_wait_empty(consumer, logger)


@dataclass
class StreamsApp:
    """The Faust app with the handles the agents need."""

    app: Any  # faust.App (untyped library)
    requested: Any
    tenants_source: Any
    outcomes: Any
    tenants_table: Any
    ledger_table: Any
    commits: OffsetCommitter
    #: Pending work, partitioned like everything else by tenant: status polls and webhook deliveries.
    polls_table: Any
    webhooks_table: Any

    @property
    def written_through_changelog(self) -> tuple[Any, ...]:
        """The tables the worker writes itself, store first and changelog after (ledger, polls, webhooks): their
        RocksDB files skip RocksDB's write-ahead log (:mod:`smsdispatch.runtime.rocks`)."""
        return (self.ledger_table, self.polls_table, self.webhooks_table)

    async def publish(self, topic: str, key: bytes, value: bytes | None, partition: int | None = None) -> Any:
        """Send one record now (not attached to the current event) and wait until Kafka has it."""
        delivery = await self.app.producer.send(topic, key, value, partition, None, None)
        return await delivery

    async def write_ledger(self, key: bytes, value: bytes | None, partition: int) -> Any:
        return await self.publish(self.ledger_table.changelog_topic.get_topic_name(), key, value, partition)

    def changelog_writer(self, table: Any) -> ChangelogWriter:
        """Writes to ``table``'s changelog, each returning once Kafka has it."""
        topic = table.changelog_topic.get_topic_name()

        async def write(key: bytes, value: bytes | None, partition: int) -> Any:
            return await self.publish(topic, key, value, partition)

        return write


def default_data_dir() -> Path:
    return Path.home() / ".local" / "state" / "smsdispatch" / "worker"


def create_app(settings: Settings) -> StreamsApp:
    retention = timedelta(days=settings.ledger_retention_days)
    app = DrainingApp(
        settings.app_id,
        broker=settings.broker,
        # The app's default store is the ledger's (see _ledger_store): Faust falls back to it when a table's own
        # store URL has no host or path (yarl's URL("rocksdb://") is falsy), so the tenants table names a path.
        store="rocksdb://" if settings.ledger_store == "rocksdb" else "memory://",
        datadir=settings.data_dir or str(default_data_dir()),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        table_standby_replicas=0,
        key_serializer="raw",
        value_serializer="raw",
        processing_guarantee="at_least_once",
        producer_acks=-1,
        producer_linger=PRODUCER_LINGER_S,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=True,
        # A crashed worker's partitions move to the others after this long without heartbeats (Faust's default
        # of 60 s would hold a tenant's traffic for a minute after a crash).
        broker_session_timeout=15.0,
        broker_heartbeat_interval=3.0,
        web_port=settings.web_port,
        web_enabled=True,
        # The port also takes Twilio's callbacks from the internet: Faust's table and router views stay off.
        web_tables_enabled=False,
        web_router_enabled=False,
        autodiscover=False,
    )
    requested = _raw_topic(app, topics.REQUESTED, partitions=settings.partitions)
    tenants_source = _raw_topic(app, topics.TENANTS, partitions=settings.partitions)
    outcomes = _raw_topic(app, topics.DISPATCHED, topics.FAILED, topics.STATUS)
    tenants_table = app.Table(
        "tenants", partitions=settings.partitions, key_type=bytes, value_type=bytes, store="memory://tenants"
    )
    ledger_table = app.Table(
        "ledger",
        partitions=settings.partitions,
        key_type=bytes,
        value_type=bytes,
        **_ledger_store(settings),
        # Old entries leave Kafka with the retention; Ledger.expire drops them from memory.
        extra_topic_configs={
            "cleanup.policy": "compact,delete",
            "retention.ms": str(int(retention.total_seconds() * 1000)),
        },
    )
    commits = OffsetCommitter(lambda: app.consumer)
    # Entries leave these tables by our own tombstones (done, given up), never by age: compaction only.
    polls_table, webhooks_table = (
        app.Table(name, partitions=settings.partitions, key_type=bytes, value_type=bytes, **_ledger_store(settings))
        for name in ("polls", "webhooks")
    )
    streams = StreamsApp(
        app, requested, tenants_source, outcomes, tenants_table, ledger_table, commits, polls_table, webhooks_table
    )
    for table in streams.written_through_changelog:
        write_without_log(table)
    return streams


def _ledger_store(settings: Settings) -> dict[str, Any]:
    """The ledger table's store: RocksDB (rocksdict) under the data dir, sized so that memory stays small and
    flat (Faust's defaults give each partition 3 x 64 MB of write buffers and a 2 GB block cache), or memory."""
    if settings.ledger_store == "memory":
        return {}
    mib = 1024 * 1024
    options = {
        "driver": "rocksdict",
        "write_buffer_size": 4 * mib,
        "max_write_buffer_number": 2,
        "target_file_size_base": 16 * mib,
        "block_cache_size": 8 * mib,
        "max_open_files": 256,
    }
    return {"options": options}


def ledger_store(streams: StreamsApp) -> LedgerStore | Any:
    """What the ledger reads and writes: the RocksDB files by partition, or the in-memory table store."""
    return table_store(streams.ledger_table)


def table_store(table: Any) -> LedgerStore | Any:
    """What a table written through its changelog by us reads and writes: RocksDB files by partition, or the
    in-memory table store."""
    data = table.data
    if isinstance(data, MutableMapping) and not hasattr(data, "_db_for_partition"):
        return data
    return rocks_store_over(data, table.changelog_topic.get_topic_name())


def rocks_store_over(faust_store: Any, changelog_topic: str) -> RocksStore:
    """A :class:`RocksStore` over a ``faust.stores.rocksdb.Store``. Its ``_db_for_partition`` and ``_dbs`` are
    private: the public ``store[key] = value`` needs a current event to choose the partition, which pipeline
    tasks lack."""

    def persist(partition: int, offset: int) -> None:
        faust_store.set_persisted_offset(TP(changelog_topic, partition), offset)

    return RocksStore(faust_store._db_for_partition, lambda: list(faust_store._dbs), persist)


def _raw_topic(app: Any, *names: str, partitions: int | None = None) -> Any:
    return app.topic(
        *names,
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        acks=False,  # the worker commits these offsets itself (runtime/commits.py)
    )
