"""The worker's own Prometheus metrics: the per-request children it keeps are the series /metrics exports."""

from __future__ import annotations

from smsdispatch.contract import ErrorCode, ErrorInfo, SmsRequested
from smsdispatch.core.metrics import DispatchMetrics
from smsdispatch.core.outcomes import dispatched_outcome, failed_outcome

from .fakes import T0, TO, accepted


def request(tenant_id: str) -> SmsRequested:
    return SmsRequested(request_id="r-1", tenant_id=tenant_id, to=TO, body="Hello", requested_at=T0)


def test_outcomes_are_counted_per_topic_code_and_tenant_across_repeated_calls() -> None:
    metrics = DispatchMetrics()
    sent = dispatched_outcome(request("acme"), accepted(TO, "Hello"), attempts=1)
    refused = failed_outcome(request("acme"), ErrorInfo(code=ErrorCode.UNKNOWN_TENANT, message="no"), attempts=0)

    for outcome in (sent, sent, refused, dispatched_outcome(request("other"), accepted(TO, "Hello"), attempts=1)):
        metrics.count(outcome)

    def counted(topic: str, code: str, tenant: str) -> float | None:
        labels = {"topic": topic, "code": code, "tenant": tenant}
        return metrics.registry.get_sample_value("smsdispatch_outcomes_total", labels)

    assert counted("sms.dispatched", "queued", "acme") == 2
    assert counted("sms.failed", "unknown_tenant", "acme") == 1
    assert counted("sms.dispatched", "queued", "other") == 1


def test_a_tenants_in_flight_gauge_and_send_time_are_kept_and_exported_under_its_label() -> None:
    metrics = DispatchMetrics()
    in_flight, send_seconds = metrics.sending("acme")
    in_flight.inc()
    send_seconds.observe(0.2)
    again = metrics.sending("acme")
    again[0].inc()

    assert again == (in_flight, send_seconds)
    assert metrics.registry.get_sample_value("smsdispatch_in_flight", {"tenant": "acme"}) == 2
    assert metrics.registry.get_sample_value("smsdispatch_send_seconds_count", {"tenant": "acme"}) == 1
    assert metrics.sending("other")[0] is not in_flight


def test_polls_and_webhook_deliveries_are_counted_per_tenant_and_result() -> None:
    metrics = DispatchMetrics()
    for result in ("pending", "pending", "final"):
        metrics.count_poll("acme", result)
    metrics.count_webhook("acme", "delivered")

    def sample(name: str, result: str) -> float | None:
        return metrics.registry.get_sample_value(name, {"tenant": "acme", "result": result})

    assert sample("smsdispatch_status_polls_total", "pending") == 2
    assert sample("smsdispatch_status_polls_total", "final") == 1
    assert sample("smsdispatch_webhook_deliveries_total", "delivered") == 1
