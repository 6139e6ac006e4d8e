"""Dispatcher through the pipeline: one outcome per record, on the right topic and key, and never a second send."""

from __future__ import annotations

import json

import pytest

from smsdispatch.adapters.twilio import MessageRejected
from smsdispatch.contract import ErrorCode, SmsDispatched, SmsFailed, topics
from smsdispatch.core.dispatch_model import DispatcherOptions
from smsdispatch.core.ledger import ledger_key

from .fakes import OTHER_KEYRING, TO, Emitted, Tenants, accepted, harness, inbound, request_json


def by_request_id(outcomes: list[Emitted]) -> dict[str | None, Emitted]:
    keyed = {emitted.json()["request_id"]: emitted for emitted in outcomes}
    assert len(keyed) == len(outcomes), "one outcome per request"
    return keyed


@pytest.mark.asyncio
async def test_a_mixed_batch_gets_exactly_one_outcome_per_record_on_the_right_topic_and_key() -> None:
    h = harness()
    h.tenants.add("pending", verified=False)
    h.tenants.add("locked", keyring=OTHER_KEYRING)
    h.sender("acme").on_send(
        "rejected", MessageRejected("Twilio refused the request: invalid To (21211)", provider_code=21211)
    )
    records = [
        inbound(request_json("r-ok")),
        inbound(request_json("r-rejected", body="rejected")),
        inbound(request_json("r-ghost", tenant_id="ghost"), key=b"ghost"),
        inbound(request_json("r-pending", tenant_id="pending"), key=b"pending"),
        inbound(request_json("r-locked", tenant_id="locked"), key=b"locked"),
        inbound(request_json("r-bad-to", to="12345")),
        inbound(b"\xff not utf-8", key=None),
    ]

    await h.run(records)

    outcomes = h.publisher.outcomes()
    assert len(outcomes) == len(records)
    by_id = by_request_id(outcomes)
    expected = {
        "r-ok": (topics.DISPATCHED, b"acme", None),
        "r-rejected": (topics.FAILED, b"acme", ErrorCode.PROVIDER_REJECTED),
        "r-ghost": (topics.FAILED, b"ghost", ErrorCode.UNKNOWN_TENANT),
        "r-pending": (topics.FAILED, b"pending", ErrorCode.TENANT_NOT_VERIFIED),
        "r-locked": (topics.FAILED, b"locked", ErrorCode.TENANT_NOT_VERIFIED),
        "r-bad-to": (topics.FAILED, b"acme", ErrorCode.INVALID_REQUEST),
        None: (topics.FAILED, b"", ErrorCode.INVALID_REQUEST),  # unreadable: no tenant, so an empty key
    }
    for request_id, (topic, key, code) in expected.items():
        emitted = by_id[request_id]
        assert (emitted.topic, emitted.key) == (topic, key), request_id
        if code is not None:
            assert SmsFailed.model_validate_json(emitted.value).error.code is code
    assert SmsFailed.model_validate_json(by_id["r-rejected"].value).error.provider_code == 21211
    assert [message.body for message in h.pool.all_sent()] == ["Hello", "rejected"]


@pytest.mark.asyncio
async def test_a_dispatched_outcome_carries_the_request_and_twilios_answer() -> None:
    h = harness()
    h.sender().on_send("Hello", accepted(TO, "Hello", sid="SM" + "b" * 32))

    await h.run([inbound(request_json(metadata={"campaign": "spring"}, resend_of="r-0"))])

    [emitted] = h.publisher.outcomes()
    outcome = SmsDispatched.model_validate_json(emitted.value)
    assert outcome.provider_message_id == "SM" + "b" * 32
    assert (outcome.request_id, outcome.tenant_id, outcome.to, outcome.status) == ("r-1", "acme", TO, "queued")
    assert (outcome.segments, outcome.encoding, outcome.attempts) == (1, "GSM-7", 1)
    assert outcome.metadata == {"campaign": "spring"}
    assert outcome.resend_of == "r-0"


@pytest.mark.asyncio
async def test_a_request_published_twice_at_once_is_sent_once_and_each_record_gets_an_identical_outcome() -> None:
    h = harness()
    value = request_json("r-twice")

    await h.run([inbound(value), inbound(value)])

    assert len(h.sender().sent) == 1
    first, second = h.publisher.outcomes()
    assert first == second
    assert first.topic == topics.DISPATCHED
    assert first.key == b"acme"


@pytest.mark.asyncio
async def test_a_record_redelivered_after_its_outcome_was_published_is_not_answered_again() -> None:
    h = harness()
    record = inbound(request_json("r-redelivered"))
    await h.run([record])

    await h.run([record])  # the same partition and offset: a rebalance or a commit that never landed

    assert len(h.publisher.outcomes()) == 1
    assert len(h.sender().sent) == 1


@pytest.mark.asyncio
async def test_a_record_redelivered_between_recording_and_publishing_its_outcome_gets_it_published() -> None:
    h = harness()
    record = inbound(request_json("r-cut"))
    await h.run([record])
    [published] = h.publisher.outcomes()
    # As if the worker died after "done" was recorded and before the outcome was published.
    key = ledger_key("acme", "r-cut")
    entry = h.ledger.get(key)
    assert entry is not None
    h.ledger_store[key] = entry.model_copy(update={"emitted_through": None}).model_dump_json().encode()

    await h.run([record])

    assert h.publisher.outcomes() == [published, published]
    assert len(h.sender().sent) == 1


@pytest.mark.asyncio
async def test_an_unreadable_or_forwarded_record_redelivered_is_answered_or_forwarded_only_once() -> None:
    h = harness(options=DispatcherOptions(partition_for=lambda _tenant: 3))
    garbage = inbound(b"not json", partition=0)
    stray = inbound(request_json("r-stray"), partition=0)
    await h.run([garbage, stray])

    await h.run([garbage, stray])

    assert len(h.publisher.outcomes()) == 1
    assert len(h.publisher.on(topics.REQUESTED)) == 1


@pytest.mark.asyncio
async def test_a_request_id_seen_in_a_later_batch_is_not_sent_and_its_outcome_is_re_emitted_byte_identical() -> None:
    h = harness()
    record = inbound(request_json("r-again"))
    await h.run([record])
    [original] = h.publisher.outcomes()

    await h.run([inbound(request_json("r-again", body="a different body"), partition=0)])

    assert len(h.sender().sent) == 1
    assert h.publisher.outcomes() == [original, original]


@pytest.mark.asyncio
async def test_a_recorded_failure_is_re_emitted_even_after_the_tenant_became_able_to_send() -> None:
    h = harness()
    value = request_json("r-early", tenant_id="late")
    await h.run([inbound(value, key=b"late")])
    h.tenants.add("late")

    await h.run([inbound(value, key=b"late")])

    first, second = h.publisher.outcomes()
    assert first == second
    assert SmsFailed.model_validate_json(first.value).error.code is ErrorCode.UNKNOWN_TENANT
    assert h.pool.all_sent() == []


@pytest.mark.asyncio
async def test_the_same_request_id_for_two_tenants_is_two_requests() -> None:
    h = harness()
    h.tenants.add("globex")

    await h.run([inbound(request_json("r-1")), inbound(request_json("r-1", tenant_id="globex"), key=b"globex")])

    assert len(h.sender("acme").sent) == 1
    assert len(h.sender("globex").sent) == 1
    assert sorted(emitted.key for emitted in h.publisher.on(topics.DISPATCHED)) == [b"acme", b"globex"]


@pytest.mark.parametrize(
    ("tenant_id", "prepare", "code", "retryable"),
    [
        ("ghost", "nothing", ErrorCode.UNKNOWN_TENANT, False),
        ("pending", "unverified", ErrorCode.TENANT_NOT_VERIFIED, False),
        ("locked", "undecryptable", ErrorCode.TENANT_NOT_VERIFIED, True),
    ],
)
@pytest.mark.asyncio
async def test_a_tenant_that_cannot_send_gets_its_code_and_nothing_is_sent(
    tenant_id: str, prepare: str, code: ErrorCode, retryable: bool
) -> None:
    h = harness()
    if prepare == "unverified":
        h.tenants.add(tenant_id, verified=False)
    elif prepare == "undecryptable":
        h.tenants.add(tenant_id, keyring=OTHER_KEYRING)

    await h.run([inbound(request_json(tenant_id=tenant_id), key=tenant_id.encode())])

    [emitted] = h.publisher.outcomes()
    failed = SmsFailed.model_validate_json(emitted.value)
    assert (emitted.topic, emitted.key) == (topics.FAILED, tenant_id.encode())
    assert (failed.error.code, failed.error.retryable) == (code, retryable)
    assert (failed.attempts, failed.provider) == (0, None)
    assert h.pool.all_sent() == []
    assert tenant_id in failed.error.message


@pytest.mark.asyncio
async def test_an_unexpected_error_in_a_sender_is_outcome_unknown_and_the_batch_still_completes() -> None:
    h = harness()
    h.sender().on_send("explode", RuntimeError("a bug in the sender"))

    await h.run([inbound(request_json("r-bug", body="explode")), inbound(request_json("r-ok"))])

    by_id = by_request_id(h.publisher.outcomes())
    failed = SmsFailed.model_validate_json(by_id["r-bug"].value)
    assert failed.error.code is ErrorCode.OUTCOME_UNKNOWN
    assert failed.error.retryable is False
    assert by_id["r-ok"].topic == topics.DISPATCHED
    entry = h.ledger.get(ledger_key("acme", "r-bug"))
    assert entry is not None
    assert entry.state == "done"


@pytest.mark.parametrize(
    ("key", "partition"),
    [
        pytest.param(None, 5, id="unkeyed-on-the-home-partition"),
        pytest.param(b"acme", 2, id="keyed-on-the-wrong-partition"),
        pytest.param(b"someone-else", 5, id="keyed-by-something-else"),
    ],
)
@pytest.mark.asyncio
async def test_a_record_not_on_its_tenants_partition_is_forwarded_there_without_outcome_or_send(
    key: bytes | None, partition: int
) -> None:
    h = harness(options=DispatcherOptions(partition_for=lambda tenant_id: 5))
    value = request_json("r-moved")

    await h.run([inbound(value, key=key, partition=partition)])

    [sent] = h.publisher.sent
    assert (sent.topic, sent.key, sent.partition) == (topics.REQUESTED, b"acme", 5)
    assert carries_the_request(sent, value)
    assert h.pool.all_sent() == []
    assert h.ledger.get(ledger_key("acme", "r-moved")) is None


@pytest.mark.asyncio
async def test_a_forwarded_record_is_dispatched_once_it_arrives_on_its_partition() -> None:
    h = harness(options=DispatcherOptions(partition_for=lambda tenant_id: 5))
    await h.run([inbound(request_json("r-moved"), key=None, partition=1)])
    [forwarded] = h.publisher.sent

    assert forwarded.partition is not None
    await h.run([inbound(forwarded.value, key=forwarded.key, partition=forwarded.partition)])

    [emitted] = h.publisher.outcomes()
    assert emitted.topic == topics.DISPATCHED
    assert len(h.sender().sent) == 1


@pytest.mark.asyncio
async def test_without_a_partition_rule_an_unkeyed_record_is_rekeyed_by_its_tenant() -> None:
    h = harness()
    value = request_json("r-unkeyed")

    await h.run([inbound(value, key=None, partition=3)])

    [sent] = h.publisher.sent
    assert (sent.topic, sent.key, sent.partition) == (topics.REQUESTED, b"acme", None)
    assert carries_the_request(sent, value)


def carries_the_request(forwarded: Emitted, original: bytes) -> bool:
    """A forward carries the request re-serialised: every field of the original, and its record time."""
    document = forwarded.json()
    return document.items() >= json.loads(original).items() and "requested_at" in document


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "metadata",
    [{"note": "nul\u0000inside"}, {"big": "x" * 20_000}, {"k": "\ud800"}],
    ids=["nul", "over-16384-chars", "lone-surrogate"],
)
async def test_a_request_whose_metadata_breaks_the_rules_fails_alone_and_the_next_one_is_sent(
    metadata: dict[str, str],
) -> None:
    h = harness()
    pill = request_json("r-pill", metadata=metadata)

    await h.run([inbound(pill), inbound(request_json("r-next"))])

    by_id = by_request_id(h.publisher.outcomes())
    failure = SmsFailed.model_validate_json(by_id["r-pill"].value)
    assert failure.error.code is ErrorCode.INVALID_REQUEST
    assert failure.metadata == {}
    assert by_id["r-next"].topic == topics.DISPATCHED


@pytest.mark.asyncio
async def test_a_valid_request_of_megabytes_published_unkeyed_is_forwarded_small() -> None:
    h = harness(options=DispatcherOptions(partition_for=lambda tenant_id: 5))
    huge = request_json("r-huge", padding="p" * 3_000_000)

    await h.run([inbound(huge, key=None, partition=1)])

    [sent] = h.publisher.sent
    assert len(sent.value) < 1_000
    assert sent.json()["request_id"] == "r-huge"


@pytest.mark.asyncio
async def test_an_invalid_record_is_not_forwarded_even_when_unkeyed() -> None:
    h = harness(options=DispatcherOptions(partition_for=lambda tenant_id: 5))

    await h.run([inbound(b"[]", key=None, partition=1)])

    [emitted] = h.publisher.sent
    assert emitted.topic == topics.FAILED
    assert json.loads(emitted.value)["error"]["code"] == "invalid_request"


@pytest.mark.asyncio
async def test_a_record_whose_bytes_could_never_be_published_still_gets_its_outcome() -> None:
    h = harness()
    # A lone surrogate escaped in JSON: readable by json.loads, unwritable as UTF-8.
    value = b'{"request_id": "\\ud800", "tenant_id": "acme", "to": "+14155552671", "body": "x"}'

    await h.run([inbound(value)])

    [emitted] = h.publisher.outcomes()
    assert (emitted.topic, emitted.key) == (topics.FAILED, b"acme")


@pytest.mark.asyncio
async def test_a_request_whose_tenant_is_still_on_its_way_waits_for_the_tenant_stream() -> None:
    tenants = Tenants()  # "acme" is not in the table yet: its record is still being read from sms.tenants
    asked: list[set[str]] = []

    async def tenants_caught_up(tenant_ids: set[str]) -> None:
        asked.append(tenant_ids)
        tenants.add("acme")  # the tenant agent applies the record while the dispatcher waits

    h = harness(tenants=tenants, options=DispatcherOptions(tenants_caught_up=tenants_caught_up))

    await h.run([inbound(request_json())])

    assert asked == [{"acme"}]
    [emitted] = h.publisher.outcomes()
    assert emitted.topic == topics.DISPATCHED


@pytest.mark.asyncio
async def test_known_tenants_do_not_wait_for_the_tenant_stream() -> None:
    asked: list[set[str]] = []

    async def tenants_caught_up(tenant_ids: set[str]) -> None:
        asked.append(tenant_ids)

    h = harness(options=DispatcherOptions(tenants_caught_up=tenants_caught_up))

    await h.run([inbound(request_json())])

    assert asked == []
