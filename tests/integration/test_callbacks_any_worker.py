"""Twilio's callbacks reach any worker behind a load balancer: each one verifies every tenant's signature.

Two workers in one group, each owning some partitions; a tenant registered while they run. The callback goes to
the worker that does NOT own the tenant's partition: a validly signed one is accepted and its status lands in the
dispatch log, forged ones are refused by both workers. The
simulator's own receipts are held back (10 minutes), so the test's receipt is the only one that moves the row.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from smsdispatch.adapters.twilio.signature import SIGNATURE_HEADER, compute_signature
from smsdispatch.contract import SmsDispatched, SmsRequested
from smsdispatch.contract.settings import bootstrap_servers
from smsdispatch.runtime.worker import home_partition
from smsdispatch.tools.testing.processes import ManagedProcess
from tests.integration.conftest import Stack, running_stack
from tests.integration.outcomes import row_when, send_and_collect

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka, pytest.mark.slow]

PARTITIONS = 8


@pytest.fixture(scope="module")
def pair(kafka_broker_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("any-worker")
    with running_stack(kafka_broker_url, base, simulator_args=["--status-delay-ms", "600000"]) as stack:
        stack.add_worker()
        yield stack


async def group_state(broker_url: str, group_id: str) -> tuple[str, int]:
    """The group's state and how many members it has."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(broker_url))
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group_id])
    finally:
        await admin.close()
    [group] = response.groups
    return group[2], len(group[5])


def health(worker: ManagedProcess) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"{worker.base_url}/health", timeout=2) as response:  # noqa: S310 - loopback
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except (urllib.error.URLError, OSError, ValueError):
        return {}


def ready(worker: ManagedProcess) -> bool:
    try:
        with urllib.request.urlopen(f"{worker.base_url}/ready", timeout=2) as response:  # noqa: S310 - loopback
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


async def settled_owners(stack: Stack, timeout: float = 90.0) -> dict[int, ManagedProcess]:
    """Wait until both workers are ready, in a stable group of exactly them, each owning some partitions (as their
    /health says); return the worker owning each partition."""
    workers = stack.workers()
    deadline = asyncio.get_running_loop().time() + timeout
    seen: object = None
    while asyncio.get_running_loop().time() < deadline:
        state, members = await group_state(stack.broker_url, stack.app_id)
        owned = {id(worker): set(health(worker).get("partitions", [])) for worker in workers}
        seen = (state, members, owned)
        if (
            state == "Stable"
            and members == len(workers)
            and all(owned.values())
            and sorted(p for parts in owned.values() for p in parts) == list(range(PARTITIONS))
            and all(ready(worker) for worker in workers)
        ):
            return {p: worker for worker in workers for p in owned[id(worker)]}
        await asyncio.sleep(0.5)
    raise AssertionError(f"the group did not settle on both workers within {timeout:g}s: {seen!r}")


def post_callback(
    target: str, public_url: str, tenant_id: str, token: str, query: str, form: dict[str, str]
) -> tuple[int, str]:
    """POST a status callback to ``target`` (a worker behind the load balancer), signed with ``token`` over the
    public URL, as Twilio signs it; return the status and body of the answer."""
    path_qs = f"/twilio/status/{urllib.parse.quote(tenant_id)}{query}"
    headers = {SIGNATURE_HEADER: compute_signature(token, public_url + path_qs, form)}
    body = urllib.parse.urlencode(form).encode()
    post = urllib.request.Request(target + path_qs, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(post, timeout=10) as response:  # noqa: S310 - loopback
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as refused:
        return int(refused.code), refused.read().decode()


@pytest.mark.timeout(300)
async def test_a_callback_reaching_the_worker_without_the_tenants_partition_is_verified_and_logged(
    pair: Stack,
) -> None:
    await settled_owners(pair)
    tenant = pair.register_live("anyw")  # registered while both run: the views follow the topic live
    owners = await settled_owners(pair)
    home = home_partition(tenant, PARTITIONS)
    [elsewhere] = [worker for worker in pair.workers() if worker is not owners[home]]

    sent = SmsRequested(request_id=uuid.uuid4().hex, tenant_id=tenant, to="+14155552671", body="any worker")
    outcome = (await send_and_collect(pair.broker_url, [sent]))[sent.request_id]
    assert isinstance(outcome, SmsDispatched), outcome
    sid = outcome.provider_message_id
    await row_when(pair.database_url, tenant, sent.request_id, outcome.status)

    query = f"?request_id={sent.request_id}"
    receipt = {"MessageSid": sid, "MessageStatus": "delivered", "AccountSid": pair.live_account[0]}
    forged = {**receipt, "MessageStatus": "failed", "ErrorCode": "30008"}
    public = pair.worker_url  # SMSDISPATCH_PUBLIC_URL of both workers: what Twilio calls and signs
    wrong_token = f"forged{uuid.uuid4().hex}"
    refusals = [post_callback(w.base_url, public, tenant, wrong_token, query, forged) for w in pair.workers()]
    accepted = post_callback(elsewhere.base_url, public, tenant, pair.live_account[1], query, receipt)

    assert [status for status, _ in refusals] == [403, 403], refusals
    assert accepted[0] == 200, f"{accepted}\n{elsewhere.log_tail()}"
    row = await row_when(pair.database_url, tenant, sent.request_id, "delivered")
    # The forged "failed" (final, like "delivered") would have won had it been published first.
    assert (row.provider_message_id, row.error_code, row.provider_code) == (sid, None, None)
    print(f"\npartition {home} of {tenant} is owned by {owners[home].base_url}; callback sent to {elsewhere.base_url}")
