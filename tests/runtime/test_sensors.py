"""The lean Faust sensor exports exactly what Faust's Prometheus sensor exports, for the same calls."""

from __future__ import annotations

from typing import Any

from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from faust.types import TP
from prometheus_client import CollectorRegistry, generate_latest

from smsdispatch.runtime.sensors import LeanPrometheusMonitor


class FakeTask:
    def __init__(self, label: str) -> None:
        self.label = label

    def __str__(self) -> str:
        return self.label


class FakeStream:
    def __init__(self, label: str) -> None:
        self.shortlabel = f"Stream: {label}"
        self.task_owner = FakeTask(f"task {label}")  # Faust keeps tasks in a weak dictionary

    def __str__(self) -> str:
        return self.shortlabel


REQUESTED = [TP("sms.requested", partition) for partition in range(3)]
STREAMS = [FakeStream("smsdispatch.dispatcher"), FakeStream("smsdispatch.logsink")]


def exported(monitor_type: type[PrometheusMonitor], rebalance_after: int | None = None) -> list[str]:
    """What /metrics would show after the same records went through a monitor, latencies left out (timing)."""
    registry = CollectorRegistry()
    monitor = monitor_type(metrics=FaustMetrics.create(registry, "faust"))
    for offset in range(40):
        if offset == rebalance_after:
            monitor._clear_partition_related_metrics()
        tp, stream = REQUESTED[offset % 3], STREAMS[offset % 2]
        monitor.track_tp_end_offset(tp, 1000 + offset)
        state = monitor.on_stream_event_in(tp, offset, stream, object())
        monitor.on_stream_event_out(tp, offset, stream, object(), state)
    text = generate_latest(registry).decode()
    timed = ("latency", "_created", "runtime_ms_sum")  # durations and creation times differ between two runs
    return [line for line in text.splitlines() if not line.startswith("#") and not any(t in line for t in timed)]


def test_the_lean_sensor_exports_the_same_event_counts_and_end_offsets_as_fausts() -> None:
    lean = exported(LeanPrometheusMonitor)
    assert lean == exported(PrometheusMonitor)
    assert 'faust_topic_partition_end_offset{partition="2",topic="sms.requested"} 1038.0' in lean
    assert 'faust_total_events_per_stream_total{stream="stream.smsdispatch.dispatcher.events"} 20.0' in lean


def test_the_lean_sensor_exports_the_same_after_a_rebalance_cleared_the_partition_metrics() -> None:
    lean = exported(LeanPrometheusMonitor, rebalance_after=25)
    assert lean == exported(PrometheusMonitor, rebalance_after=25)
    assert any(line.startswith("faust_topic_partition_end_offset{") for line in lean)


def test_the_lean_sensor_returns_fausts_state_for_the_event_out_call() -> None:
    registry: Any = CollectorRegistry()
    monitor = LeanPrometheusMonitor(metrics=FaustMetrics.create(registry, "faust"))
    state = monitor.on_stream_event_in(REQUESTED[0], 0, STREAMS[0], object())
    assert state is not None
    assert "time_in" in state
    monitor.on_stream_event_out(REQUESTED[0], 0, STREAMS[0], object(), state)
    assert monitor.events_active == 0
