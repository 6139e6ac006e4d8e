"""Prometheus metrics of the worker, served on ``/metrics`` by the worker's web server."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from smsdispatch.contract import Outcome, SmsDispatched


class DispatchMetrics:
    """Requests in, outcomes out by code, send latency, requests in flight per tenant."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "smsdispatch_requests", "sms.requested records taken by the dispatcher", registry=self.registry
        )
        self.outcomes = Counter(
            "smsdispatch_outcomes",
            "Outcomes emitted, by topic, status or error code, and tenant",
            ["topic", "code", "tenant"],
            registry=self.registry,
        )
        self.repeats = Counter(
            "smsdispatch_repeated_requests",
            "Requests seen again (redelivered or published twice) whose recorded outcome was re-emitted",
            registry=self.registry,
        )
        self.send_seconds = Histogram(
            "smsdispatch_send_seconds",
            "Time from taking a request to its outcome, retries and reconciliation included, by tenant",
            ["tenant"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "smsdispatch_in_flight",
            "Requests being sent to Twilio, per tenant",
            ["tenant"],
            registry=self.registry,
        )
        self.held = Gauge(
            "smsdispatch_pipeline_records",
            "Records a pipeline holds: started and not yet acked (in flight, or waiting for earlier offsets)",
            ["pipeline"],
            registry=self.registry,
        )
        self.drained = Counter(
            "smsdispatch_drained_records",
            "Records handled by a drain (rebalance or shutdown), by result: acked after finishing, or given back",
            ["pipeline", "result"],
            registry=self.registry,
        )
        self.rate_waiting = Gauge(
            "smsdispatch_rate_waiting",
            "Requests waiting for their turn under their tenant's sending rate (tenants update --mps)",
            ["tenant"],
            registry=self.registry,
        )
        self.opt_outs = Counter(
            "smsdispatch_opt_outs",
            "Changes to tenants' suppression lists made by this worker, by source and change",
            ["tenant", "source", "change"],
            registry=self.registry,
        )
        self.polls = Counter(
            "smsdispatch_status_polls",
            "Pending status polls examined, by tenant and result (final, pending, error, gave_up, dropped)",
            ["tenant", "result"],
            registry=self.registry,
        )
        self.webhooks = Counter(
            "smsdispatch_webhook_deliveries",
            "Webhook delivery attempts, by tenant and result (delivered, retry, gave_up, dropped)",
            ["tenant", "result"],
            registry=self.registry,
        )
        self.sink_retries = Counter(
            "smsdispatch_sink_retries",
            "Dispatch-log writes that failed and are being retried (the database is unavailable)",
            registry=self.registry,
        )
        self.offset_gaps = Counter(
            "smsdispatch_offset_gaps",
            "Records found missing from what the consumer delivered and read again directly, by topic (should be 0)",
            ["topic"],
            registry=self.registry,
        )
        self.consumer_rewinds = Counter(
            "smsdispatch_consumer_rewinds",
            "Records the consumer had moved past without handing them over (Faust dropped them) and read again",
            ["topic"],
            registry=self.registry,
        )
        self.kafka_writes_stuck = Counter(
            "smsdispatch_kafka_writes_stuck",
            "Kafka writes unacknowledged for more than 10 s, each counted once, by topic",
            ["topic"],
            registry=self.registry,
        )
        self.kafka_write_wait = Gauge(
            "smsdispatch_kafka_oldest_write_seconds",
            "How long the oldest unacknowledged Kafka write of the worker has waited (0: none waits)",
            registry=self.registry,
        )
        self.pipeline_stalled = Gauge(
            "smsdispatch_pipeline_stalled_seconds",
            "How long a pipeline has held records without one finishing (0 while it holds none)",
            ["pipeline"],
            registry=self.registry,
        )
        self.degraded = Gauge(
            "smsdispatch_degraded",
            "1 while /health says degraded (Kafka away, records held without progress, Kafka writes stuck), else 0",
            registry=self.registry,
        )
        self.sink_rows = Counter(
            "smsdispatch_sink_outcomes", "Outcomes written to the dispatch log", registry=self.registry
        )
        # Labelled children of the per-request (and per-poll, per-delivery) metrics, kept: ``labels()`` takes a
        # lock and builds its key on every call, three times per request. Never removed, as prometheus_client
        # keeps them too.
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def sending(self, tenant_id: str) -> tuple[Gauge, Histogram]:
        """The tenant's requests in flight and its send time."""
        return self._child(self.in_flight, tenant_id), self._child(self.send_seconds, tenant_id)

    def count_poll(self, tenant_id: str, result: str) -> None:
        self._child(self.polls, tenant_id, result).inc()

    def count_webhook(self, tenant_id: str, result: str) -> None:
        self._child(self.webhooks, tenant_id, result).inc()

    def count(self, outcome: Outcome) -> None:
        # Tenants are few (each brings its own Twilio account), so a tenant label stays a small set of series.
        tenant = outcome.tenant_id or ""
        if isinstance(outcome, SmsDispatched):
            self._child(self.outcomes, "sms.dispatched", outcome.status, tenant).inc()
        else:
            self._child(self.outcomes, "sms.failed", outcome.error.code.value, tenant).inc()
