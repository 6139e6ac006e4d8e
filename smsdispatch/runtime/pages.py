"""The worker's web pages: health, readiness, metrics, Twilio's two webhooks (status callbacks, inbound
messages) and MSG91's delivery reports.

Providers' webhooks may reach any worker (behind a load balancer), so Twilio's are checked against the view of
every tenant (:mod:`smsdispatch.core.tenant_view`), MSG91's against the platform's report token, and what they
produce goes to Kafka, never to local state only: a status to ``sms.status``, an opt-out change to the
suppression list through ``opt_out_changed``, which returns once it is durable. A webhook is answered 200 only
after that, so a provider retries one that was not recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from faust.web import View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr

from smsdispatch.contract import topics
from smsdispatch.core.inbound import EMPTY_TWIML, OptOutChange, opt_out_from_inbound
from smsdispatch.core.ledger import Ledger
from smsdispatch.core.liveness import Liveness
from smsdispatch.core.metrics import DispatchMetrics
from smsdispatch.core.reports import ReportRefused, TenantOfMessage, require_token, statuses_from_reports
from smsdispatch.core.status import CallbackRejected, status_from_callback
from smsdispatch.core.tenant_view import TenantView
from smsdispatch.runtime.app import StreamsApp
from smsdispatch.runtime.broker_health import BrokerHealth

log = logging.getLogger("smsdispatch.worker")


def add_pages(
    streams: StreamsApp,
    *,
    public_url: str | None,
    broker: BrokerHealth,
    ledger: Ledger,
    metrics: DispatchMetrics,
    liveness: Liveness,
    every_tenant: TenantView,
    opt_out_changed: Callable[[OptOutChange], Awaitable[None]],
    ready: Callable[[], bool],
    pending: Callable[[], dict[str, int]] = dict,
    msg91_report_token: SecretStr | None = None,
    tenant_of_message: TenantOfMessage | None = None,
) -> None:
    """Register every page on the app (they serve once the app's web server runs)."""
    app = streams.app
    public = (public_url or "").rstrip("/")

    def called_url(request: Any) -> str:
        # Twilio signs the URL it called: ours as configured publicly, whatever proxy is in between.
        return public + request.path_qs if public else str(request.url)

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        """Always 200 while the process serves; ``status`` is ``degraded``, with ``reasons``, while Kafka is
        unreachable, records are held without progress or a Kafka write is not acknowledged
        (:mod:`smsdispatch.core.liveness`). ``partitions``: the ones this worker owns; ``pending``: status polls
        and webhook deliveries held."""
        verdict = liveness.verdict()
        body: dict[str, object] = {"status": verdict.status, "reasons": list(verdict.reasons), "kafka": broker.report()}
        body |= {"partitions": streams.state.owned(), "tenants": len(every_tenant), "ledger": len(ledger)}
        body["pending"] = pending()
        return web.json(body)

    @app.page("/live")
    async def live(web: Any, request: Any) -> Any:
        """The liveness probe: 503 while the worker is stuck in a way a restart can cure (records held without
        progress, or Kafka writes unacknowledged, while Kafka answers); 200 otherwise."""
        verdict = liveness.verdict()
        status = 503 if verdict.stuck else 200
        return web.json({"live": not verdict.stuck, "reasons": list(verdict.reasons)}, status=status)

    @app.page("/ready")
    async def readiness(web: Any, request: Any) -> Any:
        """200 once every partition's state is restored, the tenants are loaded, no rebalance runs and Kafka
        answers; 503 otherwise (a worker answers /health from the start, but a partition's records wait for its
        state)."""
        is_ready = ready()
        return web.json({"ready": is_ready, "kafka": broker.reachable}, status=200 if is_ready else 503)

    @app.page("/metrics")
    async def prometheus(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/twilio/status/{tenant_id}")
    class StatusCallback(View):
        """Twilio's delivery receipts (POST only: Faust answers 405 to other methods)."""

        async def post(self, request: Any, tenant_id: str) -> Any:
            form = {key: str(value) for key, value in (await request.post()).items()}
            try:
                status = status_from_callback(
                    await every_tenant.lookup(tenant_id),
                    tenant_id,
                    request.query.get("request_id"),
                    called_url(request),
                    form,
                    request.headers.get("X-Twilio-Signature"),
                )
            except CallbackRejected as rejected:
                log.warning("status callback refused for tenant %s: %s", tenant_id, rejected)
                return self.text(str(rejected), status=rejected.status)
            await streams.publish(topics.STATUS, tenant_id.encode(), status.to_bytes())
            return self.text("", status=200)

    @app.page("/twilio/inbound/{tenant_id}")
    class InboundMessage(View):
        """Messages recipients send to a tenant's number: STOP and START change its suppression list."""

        async def post(self, request: Any, tenant_id: str) -> Any:
            form = {key: str(value) for key, value in (await request.post()).items()}
            try:
                change = opt_out_from_inbound(
                    await every_tenant.lookup(tenant_id),
                    tenant_id,
                    called_url(request),
                    form,
                    request.headers.get("X-Twilio-Signature"),
                )
            except CallbackRejected as rejected:
                log.warning("inbound message refused for tenant %s: %s", tenant_id, rejected)
                return self.text(str(rejected), status=rejected.status)
            if change is not None:
                await opt_out_changed(change)
                what = "opted out of" if change.opted_out else "opted back into"
                log.info("a recipient %s tenant %s's messages by an inbound message", what, tenant_id)
            return self.text(EMPTY_TWIML, content_type="text/xml", status=200)

    @app.page("/msg91/report/{token}")
    class Msg91Report(View):
        """MSG91's delivery reports (JSON, v3 or "Webhook (New)"; or v2's form): 200 once every record is on
        ``sms.status``; 403 for a wrong token, 400 for a body that holds no report."""

        async def post(self, request: Any, token: str) -> Any:
            try:
                require_token(msg91_report_token, token)
                body = await request.read()
                read = await statuses_from_reports(body, request.content_type, tenant_of_message or _no_log)
            except ReportRefused as refused:
                log.warning("MSG91 report refused: %s", refused)
                return self.text(str(refused), status=refused.status)
            for status in read.statuses:
                await streams.publish(topics.STATUS, status.tenant_id.encode(), status.to_bytes())
            return self.json({"recorded": len(read.statuses), "unmatched": read.unmatched})

    # Registered on the app by their decorators; named here so that nothing reads as unused.
    _ = (health, live, readiness, prometheus, StatusCallback, InboundMessage, Msg91Report)


async def _no_log(provider_message_id: str) -> str | None:
    return None
