"""The Faust app: its configuration, the contract topics it reads, and the worker's own state.

The app has no Faust tables. The ledger and the pending polls and webhooks are the worker's own
(:class:`~smsdispatch.runtime.state.WorkerState`: per-partition RocksDB, restored from their changelogs when a
partition is gained), and the tenants come from the view every worker holds of all of ``sms.tenants``
(:class:`~smsdispatch.runtime.followers.TenantFollower`). Faust's table recovery was where records went missing
and where a recovery once read nothing for two minutes (../shared/reference/faust-races.md, F-6 and HB1).

Configuration choices, each because of a Faust trap (docs/reference/faust-kafka.md):

* at-least-once (never ``exactly_once``: open duplicate/crash bugs); idempotency comes from the ledger;
* raw bytes in and out (``value_serializer="raw"``): values are decoded by pydantic, so a bad record becomes
  an ``invalid_request`` outcome instead of a decode error that Faust would ack and drop;
* the topics the worker consumes are read with Faust's acking off (``acks=False``): Faust acks records it
  skips after a rebalance and gaps it sees, and commits past unprocessed records (measured; see
  :mod:`smsdispatch.runtime.commits`). The worker commits those offsets itself (:attr:`StreamsApp.commits`);
* ``stream_wait_empty``: on a rebalance (and on shutdown) Faust pauses fetching and waits for its streams
  before it gives partitions away. :class:`DrainingApp` runs the drain hooks (the pipelines'
  :meth:`~smsdispatch.core.pipeline.Pipeline.drain`, then a commit of what they finished) at the start of
  that wait, so in-flight sends finish within a bound, and records not finished are read again from the
  committed offset;
* the consumer co-partitions: the owner of partition p of ``sms.requested`` owns partition p of every topic the
  worker reads, so the state it restores for p is the state every record it handles of p needs
  (:mod:`smsdispatch.runtime.kafka_clients`);
* the producer is idempotent, so a retried write never lands twice (:mod:`smsdispatch.runtime.kafka_clients`
  has the clients, their settings and why);
* no ``isolated_partitions``: on revocation it cancels its actors and the worker exits (faust-streaming #529).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import faust

from smsdispatch.contract import topics
from smsdispatch.contract.settings import Settings
from smsdispatch.contract.topics import TopicSpec
from smsdispatch.core.changelog_table import ChangelogWriter
from smsdispatch.runtime.commits import OffsetCommitter
from smsdispatch.runtime.kafka_clients import PRODUCER_LINGER_S, IdempotentProducer, RewindingConsumer
from smsdispatch.runtime.state import WorkerState, changelog_topic
from smsdispatch.runtime.topics import groupless_consumer

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
    outcomes: Any
    commits: OffsetCommitter
    state: WorkerState

    async def publish(self, topic: str, key: bytes, value: bytes | None, partition: int | None = None) -> Any:
        """Send one record now (not attached to the current event) and wait until Kafka has it."""
        return await publish(self.app, topic, key, value, partition)


async def publish(app: Any, topic: str, key: bytes, value: bytes | None, partition: int | None = None) -> Any:
    """Send one record through ``app``'s producer now and wait until Kafka has it; returns its metadata."""
    delivery = await app.producer.send(topic, key, value, partition, None, None)
    return await delivery


def changelog_writer(app: Any, topic: str) -> ChangelogWriter:
    """Writes to the changelog ``topic`` through ``app``'s producer, each returning once Kafka has it."""

    async def write(key: bytes, value: bytes | None, partition: int) -> Any:
        return await publish(app, topic, key, value, partition)

    return write


#: Topics the worker reads in its group; their partitions are the partitions of the state it keeps.
STATE_TOPICS = frozenset({topics.REQUESTED, *topics.OUTCOME_TOPICS})


def default_data_dir() -> Path:
    return Path.home() / ".local" / "state" / "smsdispatch" / "worker"


def changelog_specs(settings: Settings) -> tuple[TopicSpec, ...]:
    """The worker's changelog topics and their configuration: the ledger's entries leave Kafka with the ledger's
    retention (:meth:`~smsdispatch.core.ledger.Ledger.expire` drops them from the store), the pending polls and
    webhooks by the worker's own tombstones only."""
    retention_ms = int(timedelta(days=settings.ledger_retention_days).total_seconds() * 1000)
    compacted = {"cleanup.policy": "compact"}
    return (
        TopicSpec(
            changelog_topic(settings.app_id, "ledger"),
            {"cleanup.policy": "compact,delete", "retention.ms": str(retention_ms)},
        ),
        TopicSpec(changelog_topic(settings.app_id, "polls"), compacted),
        TopicSpec(changelog_topic(settings.app_id, "webhooks"), compacted),
    )


def create_app(settings: Settings) -> StreamsApp:
    data_dir = Path(settings.data_dir) if settings.data_dir else default_data_dir()
    app = DrainingApp(
        settings.app_id,
        broker=settings.broker,
        datadir=str(data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
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
    outcomes = _raw_topic(app, topics.DISPATCHED, topics.FAILED, topics.STATUS)
    commits = OffsetCommitter(lambda: app.consumer)
    state = WorkerState(
        settings.app_id,
        lambda topic: changelog_writer(app, topic),
        lambda: groupless_consumer(settings.broker),
        data_dir=data_dir if settings.ledger_store == "rocksdb" else None,
    )
    return StreamsApp(app, requested, outcomes, commits, state)


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
