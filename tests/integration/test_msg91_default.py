"""The platform default, end to end: MSG91 (the simulator's Flow API) sends for every tenant without a verified
Twilio account, and its delivery reports, posted by the simulator to the first worker, land in the dispatch log.

Two workers in one group, so a report reaches a worker that does not own the tenant's partition. Reports come
3 s after each send: long enough for a test to post its own (forged) report first, which is what makes the
forged-report test's order deterministic (it checks that the real report had not been sent yet).
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks import Webhook

from smsdispatch.adapters.crypto import Keyring
from smsdispatch.adapters.storage import DispatchLog
from smsdispatch.client import latest_tenant_records, publish_suppression, read_topic
from smsdispatch.contract import ErrorCode, SmsDispatched, SmsFailed, SmsRequested, topics
from smsdispatch.runtime.worker import home_partition
from smsdispatch.tools.testing.processes import worker_metric
from tests.integration.conftest import MSG91_OTHER_TEMPLATE, MSG91_TEMPLATE, Stack, running_stack
from tests.integration.outcomes import row_when, send_and_collect, simulator_messages
from tests.integration.test_callbacks_any_worker import settled_owners
from tests.integration.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka, pytest.mark.slow]

PARTITIONS = 8
INDIAN = "+919876543210"


@pytest.fixture(scope="module")
def stack(kafka_broker_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("msg91")
    with running_stack(kafka_broker_url, base, msg91=True, simulator_args=["--msg91-report-delay-ms", "3000"]) as two:
        two.add_worker()
        yield two


def request(tenant_id: str, to: str = INDIAN, **extra: Any) -> SmsRequested:
    fields = {"request_id": uuid.uuid4().hex, "tenant_id": tenant_id, "to": to, "body": f"hi {uuid.uuid4()}"}
    return SmsRequested.model_validate({**fields, **extra})


def msg91_messages(stack: Stack) -> dict[str, dict[str, Any]]:
    """The simulator's MSG91 messages by MSG91 request id."""
    with urllib.request.urlopen(f"{stack.simulator_url}/_sim/msg91/messages", timeout=5) as response:  # noqa: S310
        return {message["request_id"]: message for message in json.load(response)}


def post_report(url: str, report: dict[str, Any]) -> tuple[int, str]:
    body = json.dumps(report).encode()
    post = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(post, timeout=10) as response:  # noqa: S310 - loopback
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as refused:
        return int(refused.code), refused.read().decode()


def report_url(stack: Stack, worker_url: str | None = None, token: str | None = None) -> str:
    token = token or stack.env["SMSDISPATCH_MSG91_REPORT_TOKEN"]
    return f"{worker_url or stack.worker_url}/msg91/report/{token}"


def dispatched(outcome: object) -> SmsDispatched:
    assert isinstance(outcome, SmsDispatched), outcome
    return outcome


async def test_each_tenant_is_sent_through_the_provider_its_registration_chooses(stack: Stack) -> None:
    own_twilio = request(stack.tenant("live"), to="+14155552671")
    unverified = request(stack.tenant("unverified"))
    platform = request(stack.tenant("platform"))
    unknown = request(f"nobody-{stack.suffix}")

    outcomes = await send_and_collect(stack.broker_url, [own_twilio, unverified, platform, unknown])

    assert dispatched(outcomes[own_twilio.request_id]).provider == "twilio"
    assert dispatched(outcomes[unverified.request_id]).provider == "msg91"
    assert dispatched(outcomes[platform.request_id]).provider == "msg91"
    failed = outcomes[unknown.request_id]
    assert isinstance(failed, SmsFailed)
    assert failed.error.code is ErrorCode.UNKNOWN_TENANT
    sent = msg91_messages(stack)
    by_msg91 = {outcomes[r.request_id].provider_message_id for r in (unverified, platform)}  # type: ignore[union-attr]
    assert by_msg91 <= sent.keys()
    on_msg91 = sent[dispatched(outcomes[platform.request_id]).provider_message_id]
    assert (on_msg91["mobile"], on_msg91["template_id"]) == ("919876543210", MSG91_TEMPLATE)
    assert on_msg91["crqid"] == f"{len(platform.tenant_id):02d}{platform.tenant_id}{platform.request_id}"
    assert on_msg91["variables"]["body"] == platform.body
    twilio_bodies = {message["body"] for message in simulator_messages(stack.simulator_url)}
    assert own_twilio.body in twilio_bodies
    assert not {unverified.body, platform.body, unknown.body} & twilio_bodies
    for sent_request, provider in ((own_twilio, "twilio"), (platform, "msg91"), (unverified, "msg91")):
        row = await row_when(stack.database_url, sent_request.tenant_id, sent_request.request_id, "delivered")
        assert row.provider == provider, row


async def test_a_requests_own_template_and_variables_are_sent(stack: Stack) -> None:
    options = {"msg91": {"template_id": MSG91_OTHER_TEMPLATE, "variables": {"order": "A-17"}}}
    sent = request(stack.tenant("platform"), provider_options=options)

    outcome = dispatched((await send_and_collect(stack.broker_url, [sent]))[sent.request_id])

    message = msg91_messages(stack)[outcome.provider_message_id]
    assert message["template_id"] == MSG91_OTHER_TEMPLATE
    assert message["variables"] == {"order": "A-17", "body": sent.body}


async def test_msg91_refusals_and_failure_reports_keep_msg91s_codes(stack: Stack) -> None:
    invalid = request(stack.tenant("platform"), to="+919876540202")  # the simulator answers type:error 202
    broke = request(stack.tenant("platform"), to="+919876540301")  # 301: insufficient balance
    blocked = request(stack.tenant("platform"), to="+919876540017")  # accepted, then reported 17 (blocked)

    outcomes = await send_and_collect(stack.broker_url, [invalid, broke, blocked])

    refused, unpaid = outcomes[invalid.request_id], outcomes[broke.request_id]
    assert isinstance(refused, SmsFailed)
    assert isinstance(unpaid, SmsFailed)
    assert (refused.provider, refused.error.code, refused.error.provider_code) == (
        "msg91",
        ErrorCode.PROVIDER_REJECTED,
        202,
    )
    assert (unpaid.error.code, unpaid.error.provider_code, unpaid.error.retryable) == (
        ErrorCode.PROVIDER_UNAVAILABLE,
        301,
        True,
    )
    dispatched(outcomes[blocked.request_id])
    row = await row_when(stack.database_url, blocked.tenant_id, blocked.request_id, "failed")
    assert (row.provider, row.provider_code) == ("msg91", 17)


async def test_a_report_reaching_the_worker_without_the_tenants_partition_lands_in_the_log(stack: Stack) -> None:
    owners = await settled_owners(stack)
    reported_to = stack.worker  # the simulator's --msg91-report-url
    far = next(
        name
        for n in range(1000)
        if owners[home_partition(f"{(name := f'far{n}')}-{stack.suffix}", PARTITIONS)] is not reported_to
    )
    tenant = stack.register_platform(far)
    sent = request(tenant)

    outcome = dispatched((await send_and_collect(stack.broker_url, [sent]))[sent.request_id])

    row = await row_when(stack.database_url, tenant, sent.request_id, "delivered")
    assert (row.provider, row.provider_message_id) == ("msg91", outcome.provider_message_id)
    assert msg91_messages(stack)[outcome.provider_message_id]["report"] == "sent"
    assert home_partition(tenant, PARTITIONS) not in _owned_by(reported_to.base_url)


async def test_forged_reports_change_nothing(stack: Stack) -> None:
    victim = request(stack.tenant("platform"))
    other = request(stack.tenant("unverified"))
    outcomes = await send_and_collect(stack.broker_url, [victim, other])
    victim_sid = dispatched(outcomes[victim.request_id]).provider_message_id
    other_sid = dispatched(outcomes[other.request_id]).provider_message_id
    crqid = f"{len(victim.tenant_id):02d}{victim.tenant_id}{victim.request_id}"
    failed = {"requestId": victim_sid, "CRQID": crqid, "status": "2", "desc": "Failed", "number": "919876543210"}

    wrong_token = [
        post_report(report_url(stack, w.base_url, f"forged{uuid.uuid4().hex}"), failed) for w in stack.workers()
    ]
    # The right token, naming the victim's request but another message: the row holds the victim's SID.
    crossed = post_report(report_url(stack), {**failed, "requestId": other_sid})

    assert [status for status, _ in wrong_token] == [403, 403], wrong_token
    assert crossed[0] == 200, crossed
    # Both forged reports were answered before the simulator's own report: had one been recorded, its final
    # "failed" would have stood against the real "delivered".
    assert msg91_messages(stack)[victim_sid]["report"] == "pending", "the real report overtook the forged ones"
    row = await row_when(stack.database_url, victim.tenant_id, victim.request_id, "delivered")
    assert (row.provider_message_id, row.provider_code) == (victim_sid, None)


def _owned_by(worker_url: str) -> list[int]:
    with urllib.request.urlopen(f"{worker_url}/health", timeout=5) as response:  # noqa: S310 - loopback
        partitions: list[int] = json.load(response)["partitions"]
    return partitions


async def test_the_authkey_and_report_token_reach_no_topic_log_line_or_row(stack: Stack) -> None:
    refused = request(stack.tenant("platform"), to="+919876540418")  # the simulator refuses it, code 418
    sent = request(stack.tenant("platform"))
    outcomes = await send_and_collect(stack.broker_url, [refused, sent])
    await row_when(stack.database_url, sent.tenant_id, sent.request_id, "delivered")
    post_report(report_url(stack, token="wrong"), {"requestId": "x", "status": "1"})  # a refusal is logged
    assert isinstance(outcomes[refused.request_id], SmsFailed)

    seen = bytearray()
    every = [topics.TENANTS, topics.REQUESTED, topics.DISPATCHED, topics.FAILED, topics.STATUS]
    async for record in read_topic(stack.broker_url, every):
        seen += (record.key or b"") + (record.value or b"")
    for worker in stack.workers():
        seen += worker.log_text().encode()
    async with await DispatchLog.open(stack.database_url) as log:
        seen += repr(await log.recent(1000)).encode()

    assert b"MSG91 refused the platform's auth key" in seen  # the 418 is in the outcome, its key is not
    for secret in (stack.env["SMSDISPATCH_MSG91_AUTHKEY"], stack.env["SMSDISPATCH_MSG91_REPORT_TOKEN"]):
        assert secret.encode() not in seen


async def test_suppressions_expiry_webhooks_and_metrics_apply_to_msg91_tenants_alike(stack: Stack) -> None:
    receiver = WebhookReceiver()
    try:
        tenant = stack.register_platform("hooked", "--webhook-url", f"{receiver.base_url}/ok/m", "--mps", "5")
        record = (await latest_tenant_records(stack.broker_url))[tenant]
        keyring = Keyring.from_value(stack.env["SMSDISPATCH_ENCRYPTION_KEYS"])
        secret = keyring.unseal_platform(record.config).webhook_secret
        assert secret is not None
        opted_out = "+919876543299"
        await publish_suppression(stack.broker_url, tenant, opted_out, opted_out=True)
        await asyncio.sleep(2)  # every worker follows sms.suppressions live; a change applies within moments
        sent = request(tenant)
        refused = request(tenant, to=opted_out)
        late = request(tenant, expires_at="2020-01-01T00:00:00Z")

        outcomes = await send_and_collect(stack.broker_url, [sent, refused, late])

        assert dispatched(outcomes[sent.request_id]).provider == "msg91"
        assert [outcomes[r.request_id].error.code for r in (refused, late)] == [  # type: ignore[union-attr]
            ErrorCode.RECIPIENT_OPTED_OUT,
            ErrorCode.EXPIRED,
        ]
        assert {refused.body, late.body}.isdisjoint(m["variables"].get("body") for m in msg91_messages(stack).values())
        await row_when(stack.database_url, tenant, sent.request_id, "delivered")
        deadline = asyncio.get_running_loop().time() + 20
        while {"sms.dispatched", "sms.failed", "sms.status"} - {
            json.loads(h.body)["type"] for h in receiver.at("/ok/m")
        }:
            assert asyncio.get_running_loop().time() < deadline, [h.body for h in receiver.at("/ok/m")]
            await asyncio.sleep(0.1)
        for hit in receiver.at("/ok/m"):
            assert Webhook(secret.get_secret_value()).verify(hit.body, hit.headers)["data"]["tenant_id"] == tenant
        counted = sum(
            worker_metric(worker.base_url, "smsdispatch_outcomes_total", f'tenant="{tenant}"')
            for worker in stack.workers()
        )
        assert counted == 3
    finally:
        receiver.stop()
