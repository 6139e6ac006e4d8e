"""replay(): re-publishing failures and requests as new requests, against the real broker (no worker needed).

Each test writes its own tenant's SmsRequested / SmsFailed records (as producers and the worker would) and
checks what replay() published on sms.requested for that tenant.
"""

from __future__ import annotations

import pytest

from smsdispatch.client import (
    NotReplayable,
    ReplayProgress,
    ReplaySelection,
    check_replay_id,
    derive_request_id,
    new_replay_id,
    replay,
)
from smsdispatch.contract import ErrorCode, topics
from tests.client.conftest import Produce
from tests.client.records import failed, now_ms, requested, requests_of

HOUR_MS = 3600 * 1000


def test_derived_request_id_depends_only_on_the_replay_id_and_the_original() -> None:
    derived = derive_request_id("incident-7", "acme", "order-1")
    assert derived == derive_request_id("incident-7", "acme", "order-1")
    assert derived.startswith("rp-incident-7-")
    others = {
        derive_request_id("incident-8", "acme", "order-1"),
        derive_request_id("incident-7", "globex", "order-1"),
        derive_request_id("incident-7", "acme", "order-2"),
    }
    assert derived not in others
    assert len(others) == 3


def test_derived_request_id_fits_the_contract_for_the_longest_ids() -> None:
    assert len(derive_request_id("x" * 40, "t" * 64, "r" * 128)) <= 128


def test_new_replay_ids_are_valid_and_differ() -> None:
    first, second = new_replay_id(), new_replay_id()
    assert check_replay_id(first) == first
    assert first != second


@pytest.mark.parametrize("bad", ["", "has space", "x" * 41, "slash/no", "ünï"])
def test_check_replay_id_refuses_ids_that_would_make_odd_request_ids(bad: str) -> None:
    with pytest.raises(ValueError, match="replay id"):
        check_replay_id(bad)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"topic": "sms.dispatched"}, "must be sms.failed or sms.requested"),
        ({"topic": topics.REQUESTED, "error_codes": frozenset({ErrorCode.RATE_LIMITED})}, "only filter sms.failed"),
        ({"topic": topics.FAILED, "since_ms": 10, "from_offset": 0}, "not both"),
        ({"topic": topics.FAILED, "since_ms": 10, "until_ms": 5}, "starts after it ends"),
        ({"topic": topics.FAILED, "from_offset": 7, "to_offset": 3}, "starts after it ends"),
        ({"topic": topics.FAILED, "from_offset": -1}, "negative"),
    ],
)
def test_selection_refuses_contradictory_filters(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReplaySelection(**fields)  # type: ignore[arg-type]


async def seed_failures(tenant: str, publish_records: Produce) -> None:
    """Four requests of ``tenant``; r1 and r2 failed as provider_unavailable, r3 as rate_limited; r4 went out."""
    await publish_records(
        [
            (topics.REQUESTED, tenant, requested(tenant, f"r{i}", f"body {i}", metadata={"n": str(i)}), None)
            for i in range(1, 5)
        ]
        + [
            (topics.FAILED, tenant, failed(tenant, "r1", ErrorCode.PROVIDER_UNAVAILABLE), None),
            (topics.FAILED, tenant, failed(tenant, "r2", ErrorCode.PROVIDER_UNAVAILABLE), None),
            (topics.FAILED, tenant, failed(tenant, "r3", ErrorCode.RATE_LIMITED), None),
        ]
    )


@pytest.mark.asyncio
async def test_failures_of_a_tenant_and_error_code_are_resent_with_derived_ids_and_resend_of(
    broker: str, tenant: str, publish_records: Produce
) -> None:
    started = now_ms() - 1000
    await seed_failures(tenant, publish_records)
    await publish_records([(topics.FAILED, f"{tenant}x", failed(f"{tenant}x", "r1"), None)])  # another tenant

    selection = ReplaySelection(
        topics.FAILED, since_ms=started, tenant=tenant, error_codes=frozenset({ErrorCode.PROVIDER_UNAVAILABLE})
    )
    report = await replay(broker, selection, replay_id="first")

    assert (report.matched, len(report.resends), report.already_replayed) == (2, 2, 0)
    resent = [doc for _, doc in await requests_of(broker, tenant, started) if doc.get("resend_of")]
    assert resent == [
        {
            "request_id": derive_request_id("first", tenant, f"r{i}"),
            "tenant_id": tenant,
            "to": "+14155552671",
            "body": f"body {i}",
            "metadata": {"n": str(i)},
            "resend_of": f"r{i}",
        }
        for i in (1, 2)
    ]


@pytest.mark.asyncio
async def test_the_same_replay_id_again_resends_nothing_new(broker: str, tenant: str, publish_records: Produce) -> None:
    started = now_ms() - 1000
    await seed_failures(tenant, publish_records)
    selection = ReplaySelection(topics.FAILED, since_ms=started, tenant=tenant)
    assert len((await replay(broker, selection, replay_id="twice")).resends) == 3
    # Meanwhile a re-send failed again: the same replay id must not re-send its own re-send.
    own = derive_request_id("twice", tenant, "r1")
    await publish_records([(topics.FAILED, tenant, failed(tenant, own, resend_of="r1"), None)])

    again = await replay(broker, selection, replay_id="twice")

    assert (len(again.resends), again.already_replayed, again.own_resends_skipped) == (0, 3, 1)
    assert len(await requests_of(broker, tenant, started)) == 4 + 3


@pytest.mark.asyncio
async def test_a_dry_run_reports_the_resends_and_publishes_nothing(
    broker: str, tenant: str, publish_records: Produce
) -> None:
    started = now_ms() - 1000
    await seed_failures(tenant, publish_records)

    report = await replay(broker, ReplaySelection(topics.FAILED, since_ms=started, tenant=tenant), dry_run=True)

    assert sorted(request.resend_of or "" for request in report.resends) == ["r1", "r2", "r3"]
    assert len(await requests_of(broker, tenant, started)) == 4


@pytest.mark.asyncio
async def test_failures_without_a_usable_original_are_counted_as_not_replayable(
    broker: str, tenant: str, publish_records: Produce
) -> None:
    started = now_ms() - 1000
    invalid_original = b'{"request_id": "bad-to", "tenant_id": "%s", "to": "12", "body": "x"}' % tenant.encode()
    await publish_records(
        [
            (topics.REQUESTED, tenant, invalid_original, None),
            (topics.REQUESTED, tenant, requested(tenant, "good"), None),
            (topics.FAILED, tenant, failed(tenant, "bad-to", ErrorCode.INVALID_REQUEST), None),
            (topics.FAILED, tenant, failed(tenant, None, ErrorCode.INVALID_REQUEST, raw="{"), None),
            (topics.FAILED, tenant, failed(tenant, "never-requested"), None),
            (topics.FAILED, tenant, b"not an SmsFailed", None),
            (topics.FAILED, tenant, failed(tenant, "good"), None),
            (topics.FAILED, tenant, failed(tenant, "good"), None),  # reported twice: replayed once
        ]
    )

    report = await replay(broker, ReplaySelection(topics.FAILED, since_ms=started, tenant=tenant))

    assert [request.resend_of for request in report.resends] == ["good"]
    assert report.not_replayable == {
        NotReplayable.ORIGINAL_INVALID: 1,
        NotReplayable.NO_REQUEST_ID: 1,
        NotReplayable.ORIGINAL_NOT_FOUND: 1,
        NotReplayable.UNREADABLE: 1,
    }
    assert report.matched == 5


@pytest.mark.asyncio
async def test_requests_are_replayed_by_time_window(broker: str, tenant: str, publish_records: Produce) -> None:
    now = now_ms()
    await publish_records(
        [
            (topics.REQUESTED, tenant, requested(tenant, "three-hours-ago"), now - 3 * HOUR_MS),
            (topics.REQUESTED, tenant, requested(tenant, "two-hours-ago"), now - 2 * HOUR_MS),
            (topics.REQUESTED, tenant, requested(tenant, "one-hour-ago"), now - HOUR_MS),
        ]
    )
    selection = ReplaySelection(
        topics.REQUESTED, since_ms=now - 150 * 60_000, until_ms=now - 90 * 60_000, tenant=tenant
    )

    report = await replay(broker, selection, replay_id="window")
    again = await replay(broker, selection, replay_id="window")

    assert [request.resend_of for request in report.resends] == ["two-hours-ago"]
    assert (len(again.resends), again.already_replayed) == (0, 1)
    resent = [doc for _, doc in await requests_of(broker, tenant, now - 4 * HOUR_MS) if doc.get("resend_of")]
    assert [doc["request_id"] for doc in resent] == [derive_request_id("window", tenant, "two-hours-ago")]


@pytest.mark.asyncio
async def test_an_open_window_over_requests_never_replays_the_replays_of_the_same_id(
    broker: str, tenant: str, publish_records: Produce
) -> None:
    started = now_ms() - 1000
    await publish_records([(topics.REQUESTED, tenant, requested(tenant, f"r{i}"), None) for i in range(3)])
    selection = ReplaySelection(topics.REQUESTED, since_ms=started, tenant=tenant)

    first = await replay(broker, selection, replay_id="open")
    second = await replay(broker, selection, replay_id="open")

    assert len(first.resends) == 3
    assert (len(second.resends), second.already_replayed, second.own_resends_skipped) == (0, 3, 3)


@pytest.mark.asyncio
async def test_requests_are_replayed_by_offset_range_in_a_partition(
    broker: str, tenant: str, publish_records: Produce
) -> None:
    written = await publish_records([(topics.REQUESTED, tenant, requested(tenant, f"r{i}"), None) for i in range(3)])
    partition, middle = written[1].partition, written[1].offset
    selection = ReplaySelection(
        topics.REQUESTED, from_offset=middle, to_offset=middle, partitions=frozenset({partition}), tenant=tenant
    )

    report = await replay(broker, selection, replay_id="offsets")
    again = await replay(broker, selection, replay_id="offsets")

    assert [request.resend_of for request in report.resends] == ["r1"]
    assert (len(again.resends), again.already_replayed) == (0, 1)


@pytest.mark.asyncio
async def test_progress_reports_each_stage_finishing(broker: str, tenant: str, publish_records: Produce) -> None:
    started = now_ms() - 1000
    await seed_failures(tenant, publish_records)
    seen: list[ReplayProgress] = []

    await replay(broker, ReplaySelection(topics.FAILED, since_ms=started, tenant=tenant), progress=seen.append)

    finished = {(p.stage, p.done) for p in seen if p.finished}
    assert {stage for stage, _ in finished} == {"reading sms.failed", "reading sms.requested", "publishing"}
    assert ("publishing", 3) in finished
