"""The dispatch log's upsert rules, proven on SQLite and PostgreSQL alike (see conftest.BACKENDS)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from smsdispatch.adapters.storage import DispatchLog, StorageUnavailable, unreadable_request_id
from smsdispatch.adapters.storage.engine import create_engine, parse_database_url
from smsdispatch.adapters.storage.rows import parked_receipt_values
from smsdispatch.adapters.storage.upserts import apply_batch, park_statement
from smsdispatch.contract import ErrorCode, SmsDispatched, SmsFailed, SmsStatus

from .factories import T0, dispatched, failed, receipt

pytestmark = pytest.mark.asyncio


async def test_dispatched_outcome_creates_a_row_with_its_fields(dispatch_log: DispatchLog) -> None:
    await dispatch_log.record([dispatched(resend_of="req-0")])

    row = await dispatch_log.get("req-1")

    assert row is not None
    assert (row.tenant_id, row.provider, row.provider_message_id, row.to_number) == (
        "acme",
        "twilio",
        "SMreq-1",
        "+14155552671",
    )
    assert (row.status, row.segments, row.attempts, row.resend_of, row.encoding) == ("queued", 1, 1, "req-0", "GSM-7")
    assert row.error_code is None
    assert row.requested_at == T0
    assert row.updated_at == row.dispatched_at == T0 + timedelta(seconds=1)
    assert row.metadata == {"campaign": "spring"}


async def test_failed_outcome_records_error_code_and_provider_code(dispatch_log: DispatchLog) -> None:
    await dispatch_log.record([failed()])

    row = await dispatch_log.get("req-1")

    assert row is not None
    assert (row.status, row.error_code, row.provider_code) == ("failed", "provider_rejected", 21211)
    assert row.error_message == "The 'To' number is not a valid phone number."
    assert row.updated_at == T0 + timedelta(seconds=1)


async def test_get_unknown_request_returns_none(dispatch_log: DispatchLog) -> None:
    assert await dispatch_log.get("never-sent") is None


async def test_duplicates_within_one_batch_leave_one_row(dispatch_log: DispatchLog) -> None:
    await dispatch_log.record([dispatched(), dispatched(), receipt("sent", 5), dispatched()])

    summary = await dispatch_log.summary()

    assert summary.total == 1
    assert summary.by_status == {"sent": 1}


async def test_replaying_a_batch_changes_nothing(dispatch_log: DispatchLog) -> None:
    batch: list[SmsDispatched | SmsFailed | SmsStatus] = [
        dispatched("a"),
        failed("b"),
        receipt("delivered", 9, request_id="a", sid="SMa"),
    ]
    await dispatch_log.record(batch)
    first = [await dispatch_log.get(request_id) for request_id in ("a", "b")]

    await dispatch_log.record(batch)
    await dispatch_log.record(list(reversed(batch)))

    assert [await dispatch_log.get(request_id) for request_id in ("a", "b")] == first
    assert (await dispatch_log.summary()).total == 2


@pytest.mark.parametrize("final", ["delivered", "undelivered", "failed", "canceled"])
async def test_final_state_is_never_left(dispatch_log: DispatchLog, final: str) -> None:
    await dispatch_log.record([dispatched(), receipt(final, 10)])

    for later in ["queued", "sending", "sent", "delivered", "undelivered", "failed", "accepted"]:
        await dispatch_log.record([receipt(later, 20)])
        await dispatch_log.record([receipt(later, 30, request_id=None)])
    await dispatch_log.record([dispatched(), failed()])

    row = await dispatch_log.get("req-1")
    assert row is not None
    assert row.status == final


async def test_receipts_in_any_order_end_at_the_furthest_status(dispatch_log: DispatchLog) -> None:
    events = [("sending", 2), ("sent", 3), ("delivered", 4)]
    orders = list(itertools.permutations(events))
    for n, order in enumerate(orders):
        request_id = f"perm-{n}"
        await dispatch_log.record([dispatched(request_id)])
        for status, seconds in order:
            await dispatch_log.record([receipt(status, seconds, request_id=request_id, sid=f"SM{request_id}")])

    summary = await dispatch_log.summary()
    assert summary.by_status == {"delivered": len(orders)}


async def test_late_sent_after_delivered_is_ignored_but_queued_to_sent_advances(dispatch_log: DispatchLog) -> None:
    await dispatch_log.record([dispatched(), receipt("sent", 3)])
    row = await dispatch_log.get("req-1")
    assert row is not None
    assert row.status == "sent"

    await dispatch_log.record([receipt("delivered", 5), receipt("sent", 4), receipt("sending", 2)])

    row = await dispatch_log.get("req-1")
    assert row is not None
    assert row.status == "delivered"


async def test_dispatched_after_receipt_fills_fields_without_regressing_status(dispatch_log: DispatchLog) -> None:
    await dispatch_log.record([receipt("delivered", 10)])
    early = await dispatch_log.get("req-1")
    assert early is not None
    assert (early.status, early.segments, early.to_number) == ("delivered", None, None)

    await dispatch_log.record([dispatched(segments=3, attempts=2)])

    row = await dispatch_log.get("req-1")
    assert row is not None
    assert (row.status, row.segments, row.attempts, row.to_number) == ("delivered", 3, 2, "+14155552671")
    assert row.provider_message_id == "SMreq-1"
    assert row.updated_at == T0 + timedelta(seconds=10)


async def test_receipt_by_provider_message_id_only_updates_the_matching_row(dispatch_log: DispatchLog) -> None:
    await dispatch_log.record([dispatched("a"), dispatched("b")])

    await dispatch_log.record([receipt("undelivered", 8, request_id=None, sid="SMa", provider_code=30003)])

    row_a, row_b = await dispatch_log.get("a"), await dispatch_log.get("b")
    assert row_a is not None
    assert row_b is not None
    assert (row_a.status, row_a.provider_code, row_a.updated_at) == ("undelivered", 30003, T0 + timedelta(seconds=8))
    assert row_b.status == "queued"
    assert await dispatch_log.find_by_provider_message_id("SMa") == row_a


async def test_receipt_for_unknown_sid_waits_until_its_outcome_arrives(dispatch_log: DispatchLog) -> None:
    await dispatch_log.record([receipt("sent", 3, request_id=None), receipt("delivered", 6, request_id=None)])
    await dispatch_log.record([receipt("delivered", 6, request_id=None)])  # Twilio's callback retry
    waiting = await dispatch_log.summary()
    assert (waiting.total, waiting.pending_receipts) == (0, 2)

    await dispatch_log.record([dispatched()])

    row = await dispatch_log.get("req-1")
    assert row is not None
    assert (row.status, row.updated_at) == ("delivered", T0 + timedelta(seconds=6))
    assert (await dispatch_log.summary()).pending_receipts == 0


async def test_parked_receipts_apply_in_the_order_they_were_received(dispatch_log: DispatchLog) -> None:
    await dispatch_log.record([receipt("undelivered", 6, request_id=None, provider_code=30003)])
    await dispatch_log.record([receipt("failed", 5, request_id=None, provider_code=30008)])

    await dispatch_log.record([dispatched()])

    row = await dispatch_log.get("req-1")
    assert row is not None
    assert (row.status, row.provider_code, row.updated_at) == ("failed", 30008, T0 + timedelta(seconds=6))


async def test_sweep_applies_a_receipt_parked_after_its_row_was_written(database_url: str) -> None:
    log = await DispatchLog.open(database_url)
    try:
        await log.record([dispatched()])
        # What a concurrent writer's receipt looks like when it committed just after our drain looked.
        engine = create_engine(parse_database_url(database_url))
        async with engine.begin() as connection:
            await connection.execute(park_statement(log.dialect), [parked_receipt_values(receipt("delivered", 9))])
        await engine.dispose()

        assert await log.apply_pending_receipts() == 1
        assert await log.apply_pending_receipts() == 0

        row = await log.get("req-1")
        summary = await log.summary()
    finally:
        await log.close()
    assert row is not None
    assert (row.status, summary.pending_receipts) == ("delivered", 0)


async def test_purge_forgets_parked_receipts_received_before_a_time(dispatch_log: DispatchLog) -> None:
    await dispatch_log.record(
        [receipt("sent", 3, request_id=None, sid="SMold"), receipt("sent", 100, request_id=None, sid="SMnew")]
    )

    assert await dispatch_log.purge_pending_receipts(T0 + timedelta(seconds=50)) == 1
    assert (await dispatch_log.summary()).pending_receipts == 1
    with pytest.raises(ValueError, match="timezone-aware"):
        await dispatch_log.purge_pending_receipts(datetime(2025, 1, 1))


async def test_stale_receipt_does_not_replace_the_error_of_a_final_state(dispatch_log: DispatchLog) -> None:
    await dispatch_log.record([dispatched(), receipt("undelivered", 5, provider_code=30003)])

    await dispatch_log.record([receipt("failed", 6, provider_code=30008), receipt("sent", 7)])

    row = await dispatch_log.get("req-1")
    assert row is not None
    assert (row.status, row.provider_code) == ("undelivered", 30003)


async def test_failed_outcome_after_a_receipt_fills_in_its_error_code(dispatch_log: DispatchLog) -> None:
    await dispatch_log.record([receipt("failed", 5, provider_code=30008)])

    await dispatch_log.record([failed(code=ErrorCode.OUTCOME_UNKNOWN)])

    row = await dispatch_log.get("req-1")
    assert row is not None
    assert (row.status, row.error_code, row.provider_code) == ("failed", "outcome_unknown", 30008)


async def test_updated_at_is_the_latest_outcome_time_seen(dispatch_log: DispatchLog) -> None:
    await dispatch_log.record([dispatched(), receipt("sent", 30), receipt("sending", 20)])

    row = await dispatch_log.get("req-1")
    assert row is not None
    assert row.updated_at == T0 + timedelta(seconds=30)


async def test_unreadable_failure_is_kept_once_under_a_key_derived_from_raw(dispatch_log: DispatchLog) -> None:
    garbage = failed(None, ErrorCode.INVALID_REQUEST, tenant_id=None, raw="{not json", requested_at=None)
    redelivered = failed(None, ErrorCode.INVALID_REQUEST, tenant_id=None, raw="{not json", failed_at=T0)
    other = failed(None, ErrorCode.INVALID_REQUEST, tenant_id=None, raw="\x00\x01")

    await dispatch_log.record([garbage, redelivered, other])

    assert unreadable_request_id(garbage) == unreadable_request_id(redelivered) != unreadable_request_id(other)
    row = await dispatch_log.get(unreadable_request_id(garbage))
    assert row is not None
    assert (row.status, row.error_code, row.tenant_id) == ("failed", "invalid_request", "")
    assert (await dispatch_log.summary()).by_error_code == {"invalid_request": 2}


async def test_summary_counts_rows_by_status_and_error_code(dispatch_log: DispatchLog) -> None:
    await dispatch_log.record(
        [
            dispatched("a"),
            dispatched("b"),
            receipt("delivered", 5, request_id="b", sid="SMb"),
            dispatched("c", tenant_id="globex"),
            failed("d"),
            failed("e", ErrorCode.UNKNOWN_TENANT, tenant_id="nobody"),
            failed("f", ErrorCode.PROVIDER_REJECTED, tenant_id="globex"),
        ]
    )

    everything = await dispatch_log.summary()
    globex = await dispatch_log.summary(tenant_id="globex")

    assert everything.total == 6
    assert everything.by_status == {"delivered": 1, "failed": 3, "queued": 2}
    assert everything.by_error_code == {"provider_rejected": 2, "unknown_tenant": 1}
    assert (globex.total, globex.by_status, globex.by_error_code) == (
        2,
        {"failed": 1, "queued": 1},
        {"provider_rejected": 1},
    )


async def test_recent_lists_newest_first_and_filters_by_tenant(dispatch_log: DispatchLog) -> None:
    await dispatch_log.record(
        [
            dispatched("old", dispatched_at=T0),
            dispatched("new", dispatched_at=T0 + timedelta(minutes=5)),
            dispatched("other", tenant_id="globex", dispatched_at=T0 + timedelta(minutes=9)),
        ]
    )

    assert [row.request_id for row in await dispatch_log.recent(2)] == ["other", "new"]
    assert [row.request_id for row in await dispatch_log.recent(10, tenant_id="acme")] == ["new", "old"]
    with pytest.raises(ValueError, match="limit"):
        await dispatch_log.recent(0)


async def test_timestamps_with_any_offset_read_back_as_the_same_instant_in_utc(dispatch_log: DispatchLog) -> None:
    paris = timezone(timedelta(hours=2))
    await dispatch_log.record([dispatched(dispatched_at=datetime(2025, 3, 1, 14, 0, tzinfo=paris))])

    row = await dispatch_log.get("req-1")

    assert row is not None
    assert row.dispatched_at == datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert row.updated_at.tzinfo is not None
    assert row.updated_at.utcoffset() == timedelta(0)


async def test_failed_batch_commits_nothing(dispatch_log: DispatchLog, monkeypatch: pytest.MonkeyPatch) -> None:
    async def write_half_then_lose_connection(connection: Any, outcomes: Any) -> None:
        await apply_batch(connection, outcomes[:1])
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr("smsdispatch.adapters.storage.dispatch_log.apply_batch", write_half_then_lose_connection)

    with pytest.raises(StorageUnavailable) as raised:
        await dispatch_log.record([dispatched("a"), dispatched("b")])

    assert raised.value.retryable is True
    assert await dispatch_log.get("a") is None


async def test_recording_something_else_is_refused_before_writing(dispatch_log: DispatchLog) -> None:
    with pytest.raises(TypeError, match="str"):
        await dispatch_log.record([dispatched("a"), "not an outcome"])  # type: ignore[list-item]

    assert await dispatch_log.get("a") is None


async def test_concurrent_writers_keep_one_row_per_request_at_the_final_status(database_url: str) -> None:
    logs = [await DispatchLog.open(database_url) for _ in range(3)]
    batches: list[list[SmsDispatched | SmsFailed | SmsStatus]] = []
    for request_id, tenant_id in [("r1", "acme"), ("r2", "acme"), ("r3", "globex")]:
        sid = f"SM{request_id}"
        batches += [
            [dispatched(request_id, tenant_id=tenant_id)],
            [receipt("sending", 2, request_id=request_id, sid=sid, tenant_id=tenant_id)],
            [receipt("delivered", 4, request_id=None, sid=sid, tenant_id=tenant_id)],
            [
                receipt("sent", 3, request_id=None, sid=sid, tenant_id=tenant_id),
                dispatched(request_id, tenant_id=tenant_id),
            ],
        ]
    try:
        results = await asyncio.gather(
            *(logs[n % 3].record(batch) for n, batch in enumerate(batches * 3)), return_exceptions=True
        )
        rows = [await logs[0].get(request_id) for request_id in ("r1", "r2", "r3")]
        summary = await logs[0].summary()
    finally:
        for log in logs:
            await log.close()
    assert [result for result in results if result is not None] == []
    assert [(row.status, row.segments) for row in rows if row is not None] == [("delivered", 1)] * 3
    assert (summary.total, summary.pending_receipts) == (3, 0)
