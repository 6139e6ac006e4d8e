"""A bug while handling one record becomes that record's outcome; the partition behind it keeps moving."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.errors import MessageSizeTooLargeError

from smsdispatch.contract import ErrorCode, SmsFailed, topics
from smsdispatch.core.dispatch_model import Routed
from smsdispatch.core.pipeline import Work

from .fakes import RecordingPublisher, harness, inbound, request_json


class ExplodingTenants:
    """A tenant directory with a bug: every look-up raises."""

    def lookup(self, tenant_id: str) -> Any:
        raise KeyError(f"bug looking up {tenant_id}")


@pytest.mark.asyncio
async def test_a_request_whose_handling_raises_gets_outcome_unknown_and_the_next_record_is_dispatched() -> None:
    h = harness()
    working = h.dispatcher._tenants
    h.dispatcher._tenants = ExplodingTenants()  # type: ignore[assignment]
    await h.run([inbound(request_json("r-bug"), partition=0)])
    h.dispatcher._tenants = working

    await h.run([inbound(request_json("r-next"), partition=0)])

    first, second = h.publisher.outcomes()
    failed = SmsFailed.model_validate_json(first.value)
    assert (first.topic, failed.request_id, failed.error.code) == (topics.FAILED, "r-bug", ErrorCode.OUTCOME_UNKNOWN)
    assert "internal error while handling it (KeyError)" in failed.error.message
    assert (second.topic, second.json()["request_id"]) == (topics.DISPATCHED, "r-next")
    assert [record.offset for record in h.acked] == sorted(record.offset for record in h.acked)
    assert len(h.acked) == 2, "both records were acked"


@pytest.mark.asyncio
async def test_a_redelivered_request_that_hit_a_bug_repeats_its_outcome_instead_of_trying_again() -> None:
    h = harness()
    working = h.dispatcher._tenants
    h.dispatcher._tenants = ExplodingTenants()  # type: ignore[assignment]
    record = inbound(request_json("r-bug"))
    await h.run([record])
    h.dispatcher._tenants = working

    await h.run([inbound(request_json("r-bug"))])  # the same request again, at a later offset

    first, again = h.publisher.outcomes()
    assert again.value == first.value
    assert h.pool.all_sent() == [], "nothing was sent for a request whose state was unknown"


@pytest.mark.asyncio
async def test_an_invalid_record_whose_answer_raises_still_gets_one_invalid_request_outcome(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = harness()
    calls = 0

    async def answer_once(routed: Routed, work: Work[Any]) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("bug in the failure path")

    monkeypatch.setattr(h.dispatcher, "_answer_once", answer_once)

    await h.run([inbound(b'{"request_id": "r-broken", "tenant_id": "acme"}')])

    [emitted] = h.publisher.outcomes()
    failed = SmsFailed.model_validate_json(emitted.value)
    assert (failed.request_id, failed.error.code) == ("r-broken", ErrorCode.INVALID_REQUEST)
    assert failed.error.message.endswith("internal error while handling it (ValueError)")
    assert calls == 1


class RefusesLargeOutcomes(RecordingPublisher):
    """Kafka refusing an outcome as too large (not an outage: retrying cannot help), once."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    async def __call__(self, topic: str, key: bytes, value: bytes, partition: int | None = None) -> None:
        if topic == topics.FAILED and not self.refused:
            self.refused += 1
            raise MessageSizeTooLargeError()
        await super().__call__(topic, key, value, partition)


@pytest.mark.asyncio
async def test_an_outcome_kafka_refuses_as_too_large_is_replaced_by_a_small_one_instead_of_retried_forever() -> None:
    publisher = RefusesLargeOutcomes()
    h = harness(publisher=publisher)

    await h.run([inbound(b'{"request_id": "r-big", "tenant_id": "acme", "to": "123"}')])

    [emitted] = h.publisher.outcomes()
    failed = SmsFailed.model_validate_json(emitted.value)
    assert (failed.request_id, failed.error.code) == ("r-big", ErrorCode.INVALID_REQUEST)
    assert "internal error while handling it (MessageSizeTooLargeError)" in failed.error.message
    assert publisher.refused == 1
