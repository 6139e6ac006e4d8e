"""Publish SMS requests, subscribe to their outcomes, and replay them, from Python.

Publishing (``broker`` defaults to ``kafka://127.0.0.1:9092``; the library reads no environment variable, so
pass ``Settings().broker`` to follow SMSDISPATCH_BROKER)::

    async with SmsClient() as client:
        request = await client.send("acme", "+14155552671", "Your code is 123456")   # -> SmsRequested
        await client.send("acme", "+14155552671", "Hi", request_id="order-42", metadata={"order": "42"})

``send`` validates first: a request that breaks a docs/contract.md rule raises ``pydantic.ValidationError`` and
nothing is published. Publishing the same ``request_id`` twice sends one SMS (the worker is idempotent), so
retrying a ``send`` whose outcome you did not see is safe. ``publish``/``publish_many`` take ready-made
``SmsRequested`` models.

Subscribing: ``outcomes()`` is an async iterator of typed ``SmsDispatched | SmsFailed``, from now on (or
``from_beginning=True``, or ``start_ms=`` a Unix time in ms), optionally one tenant's; set ``stop`` to end it::

    async with SmsClient() as client:
        async for outcome in client.outcomes(tenant="acme"):
            if isinstance(outcome, SmsFailed):
                print(outcome.request_id, outcome.error.code, outcome.error.message)

        outcomes = await client.wait_for([request.request_id], timeout=30)   # {request_id: outcome}

``wait_for`` also finds outcomes written before it was called (from ``since_ms``, default a minute ago) and
raises ``TimeoutError`` when some request has no outcome in time.

Replaying (what ``smsdispatch replay`` does)::

    selection = ReplaySelection(topics.FAILED, since_ms=..., tenant="acme",
                                error_codes=frozenset({ErrorCode.PROVIDER_UNAVAILABLE}))
    report = await replay(broker_url, selection, replay_id="incident-42", dry_run=True)
    report.resends, report.already_replayed, report.not_replayable

Opt-outs (what ``smsdispatch suppressions`` does): ``publish_suppression(broker_url, "acme", "+14155552671",
opted_out=True)`` records one (``False`` opts the number back in), ``current_suppressions(broker_url,
tenant="acme")`` lists them; create the topics first (``smsdispatch.runtime.topics.ensure_topics``).

Lower level: ``read_topic`` reads a topic up to its current end (by time or offset), ``tail_topic`` follows it.
Producers in other languages publish the same JSON (schemas/ holds its JSON Schema) to ``sms.requested``,
keyed by tenant_id.
"""

from smsdispatch.client._client import SmsClient, new_request_id, parse_outcome
from smsdispatch.client._reading import TopicRecord, json_object, read_topic, tail_topic
from smsdispatch.client._replay import (
    REPLAYABLE_TOPICS,
    NotReplayable,
    ReplayProgress,
    ReplayReport,
    ReplaySelection,
    check_replay_id,
    derive_request_id,
    new_replay_id,
    replay,
)
from smsdispatch.client._suppressions import (
    Suppression,
    SuppressionChange,
    current_suppressions,
    publish_suppression,
    publish_suppression_changes,
)
from smsdispatch.client._tenants import latest_tenant_records, publish_tenant, publish_tenants

__all__ = [
    "REPLAYABLE_TOPICS",
    "NotReplayable",
    "ReplayProgress",
    "ReplayReport",
    "ReplaySelection",
    "SmsClient",
    "Suppression",
    "SuppressionChange",
    "TopicRecord",
    "check_replay_id",
    "current_suppressions",
    "derive_request_id",
    "json_object",
    "latest_tenant_records",
    "new_replay_id",
    "new_request_id",
    "parse_outcome",
    "publish_suppression",
    "publish_suppression_changes",
    "publish_tenant",
    "publish_tenants",
    "read_topic",
    "replay",
    "tail_topic",
]
