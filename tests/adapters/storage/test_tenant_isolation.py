"""Rows are keyed by (tenant_id, request_id), and receipts reach only their own tenant's row with their SID.

The threat: tenant B signs (with its own Twilio token) a status callback naming tenant A's request_id and
A's SID; the worker publishes it as B's ``SmsStatus``. Nothing B sends may change A's row.
Run on SQLite and PostgreSQL alike (see conftest.BACKENDS).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from smsdispatch.adapters.storage import NO_TENANT, DispatchLog, unreadable_request_id
from smsdispatch.contract import ErrorCode

from .factories import T0, dispatched, failed, receipt

pytestmark = pytest.mark.asyncio

MINUTE = timedelta(minutes=1)


async def test_two_tenants_with_the_same_request_id_get_two_independent_rows(dispatch_log: DispatchLog) -> None:
    await dispatch_log.record(
        [
            dispatched("req-1", provider_message_id="SMacme"),
            dispatched("req-1", tenant_id="globex", provider_message_id="SMglobex", segments=2),
        ]
    )
    await dispatch_log.record(
        [
            receipt("delivered", 5, sid="SMacme"),
            receipt("undelivered", 6, sid="SMglobex", tenant_id="globex", provider_code=30003),
        ]
    )

    acme, globex = await dispatch_log.get("req-1", "acme"), await dispatch_log.get("req-1", tenant_id="globex")

    assert acme is not None
    assert globex is not None
    assert (acme.tenant_id, acme.provider_message_id, acme.status, acme.provider_code, acme.segments) == (
        "acme",
        "SMacme",
        "delivered",
        None,
        1,
    )
    assert (globex.tenant_id, globex.provider_message_id, globex.status, globex.provider_code, globex.segments) == (
        "globex",
        "SMglobex",
        "undelivered",
        30003,
        2,
    )
    assert (await dispatch_log.summary()).total == 2
    assert (await dispatch_log.summary(tenant_id="acme")).by_status == {"delivered": 1}


async def test_get_and_find_by_sid_are_exact_with_a_tenant_and_return_the_latest_row_without(
    dispatch_log: DispatchLog,
) -> None:
    await dispatch_log.record(
        [
            dispatched("req-1", provider_message_id="SMshared", dispatched_at=T0),
            dispatched("req-1", tenant_id="globex", provider_message_id="SMshared", dispatched_at=T0 + MINUTE),
        ]
    )

    latest = await dispatch_log.get("req-1")
    acme = await dispatch_log.get("req-1", tenant_id="acme")

    assert latest is not None
    assert acme is not None
    assert (latest.tenant_id, acme.tenant_id) == ("globex", "acme")
    assert await dispatch_log.find_by_provider_message_id("SMshared") == latest
    assert await dispatch_log.find_by_provider_message_id("SMshared", tenant_id="acme") == acme
    assert await dispatch_log.get("req-1", tenant_id="initech") is None
    assert await dispatch_log.find_by_provider_message_id("SMshared", tenant_id="initech") is None


async def test_another_tenants_receipt_with_our_request_id_and_sid_leaves_our_row_unchanged(
    dispatch_log: DispatchLog,
) -> None:
    await dispatch_log.record([dispatched(), receipt("sent", 3)])
    before = await dispatch_log.get("req-1", tenant_id="acme")

    forged = receipt("failed", 9, sid="SMreq-1", tenant_id="globex", provider_code=30008)
    await dispatch_log.record([forged])
    await dispatch_log.record([forged, receipt("undelivered", 10, sid="SMreq-1", tenant_id="globex")])

    after = await dispatch_log.get("req-1", tenant_id="acme")
    assert before is not None
    assert after == before  # every column, so status, tenant_id and the error fields too
    assert (after.status, after.tenant_id, after.error_code, after.provider_code) == ("sent", "acme", None, None)
    # The forged receipt lands only on a row of its own tenant, where it can harm nobody else.
    own = await dispatch_log.get("req-1", tenant_id="globex")
    assert own is not None
    assert (own.tenant_id, own.status) == ("globex", "failed")


async def test_another_tenants_receipt_arriving_first_does_not_take_over_our_request(
    dispatch_log: DispatchLog,
) -> None:
    await dispatch_log.record([receipt("failed", 0, sid="SMreq-1", tenant_id="globex", provider_code=30008)])

    await dispatch_log.record([dispatched(), receipt("delivered", 5)])

    row = await dispatch_log.get("req-1", tenant_id="acme")
    assert row is not None
    assert (row.tenant_id, row.status, row.provider_code, row.error_code) == ("acme", "delivered", None, None)
    assert row.to_number == "+14155552671"


async def test_another_tenants_sid_only_receipt_never_reaches_our_row_and_ours_still_lands(
    dispatch_log: DispatchLog,
) -> None:
    await dispatch_log.record([dispatched()])
    before = await dispatch_log.get("req-1", tenant_id="acme")

    await dispatch_log.record([receipt("failed", 5, request_id=None, tenant_id="globex", provider_code=30008)])

    assert await dispatch_log.get("req-1", tenant_id="acme") == before
    assert await dispatch_log.apply_pending_receipts() == 0  # the sweep does not apply it either
    assert await dispatch_log.get("req-1", tenant_id="acme") == before

    await dispatch_log.record([receipt("failed", 5, request_id=None, provider_code=30008)])  # our identical one

    row = await dispatch_log.get("req-1", tenant_id="acme")
    assert row is not None
    assert (row.tenant_id, row.status, row.provider_code, row.updated_at) == (
        "acme",
        "failed",
        30008,
        T0 + timedelta(seconds=5),
    )
    # Only globex's receipt is still waiting (for a globex row with that SID, which never comes).
    assert (await dispatch_log.summary(tenant_id="globex")).pending_receipts == 1
    assert (await dispatch_log.summary(tenant_id="acme")).pending_receipts == 0


async def test_another_tenants_parked_receipt_does_not_stop_ours_from_parking_and_landing(
    dispatch_log: DispatchLog,
) -> None:
    # Both overtake acme's sms.dispatched; globex's is parked first with the same SID and status.
    await dispatch_log.record([receipt("undelivered", 5, request_id=None, tenant_id="globex", provider_code=1)])
    await dispatch_log.record([receipt("undelivered", 5, request_id=None, provider_code=30003)])
    assert (await dispatch_log.summary()).pending_receipts == 2

    await dispatch_log.record([dispatched()])

    row = await dispatch_log.get("req-1", tenant_id="acme")
    assert row is not None
    assert (row.tenant_id, row.status, row.provider_code) == ("acme", "undelivered", 30003)
    assert (await dispatch_log.summary()).pending_receipts == 1


async def test_a_receipt_for_a_different_sid_than_the_rows_changes_nothing(dispatch_log: DispatchLog) -> None:
    await dispatch_log.record([dispatched(), receipt("sent", 3)])
    before = await dispatch_log.get("req-1", tenant_id="acme")

    await dispatch_log.record([receipt("failed", 9, sid="SMsomething-else", provider_code=30008)])
    await dispatch_log.record([dispatched(provider_message_id="SMsomething-else", segments=4)])

    assert await dispatch_log.get("req-1", tenant_id="acme") == before
    # The row's own SID still applies: the rule blocks only other messages.
    await dispatch_log.record([receipt("delivered", 10, sid="SMreq-1")])
    row = await dispatch_log.get("req-1", tenant_id="acme")
    assert row is not None
    assert (row.status, row.provider_message_id, row.segments) == ("delivered", "SMreq-1", 1)


async def test_a_receipt_for_another_message_that_overtook_the_dispatched_outcome_is_overruled_by_it(
    dispatch_log: DispatchLog,
) -> None:
    # It names our request, but another message (a report MSG91 or a forger addressed with our request's id).
    await dispatch_log.record([receipt("failed", 2, sid="SMsomeone-else", provider_code=30008)])

    await dispatch_log.record([dispatched()])
    await dispatch_log.record([receipt("delivered", 10)])

    row = await dispatch_log.get("req-1", tenant_id="acme")
    assert row is not None
    assert (row.provider_message_id, row.status, row.provider_code) == ("SMreq-1", "delivered", None)
    assert (row.segments, row.to_number) == (1, "+14155552671")


async def test_a_receipt_for_our_own_message_that_overtook_the_dispatched_outcome_is_kept(
    dispatch_log: DispatchLog,
) -> None:
    await dispatch_log.record([receipt("delivered", 2)])

    await dispatch_log.record([dispatched()])

    row = await dispatch_log.get("req-1", tenant_id="acme")
    assert row is not None
    assert (row.provider_message_id, row.status, row.segments) == ("SMreq-1", "delivered", 1)


async def test_a_receipt_fills_in_the_sid_of_a_row_that_had_none(dispatch_log: DispatchLog) -> None:
    await dispatch_log.record([failed(code=ErrorCode.OUTCOME_UNKNOWN)])  # a failure names no SID

    await dispatch_log.record([receipt("failed", 9, sid="SMlate", provider_code=30008)])

    row = await dispatch_log.get("req-1", tenant_id="acme")
    assert row is not None
    assert (row.provider_message_id, row.status, row.error_code) == ("SMlate", "failed", "outcome_unknown")


async def test_an_unreadable_failure_is_stored_under_the_empty_tenant(dispatch_log: DispatchLog) -> None:
    garbage = failed(None, ErrorCode.INVALID_REQUEST, tenant_id=None, raw="{not json")

    await dispatch_log.record([garbage, garbage])

    key = unreadable_request_id(garbage)
    row = await dispatch_log.get(key, tenant_id=NO_TENANT)
    assert NO_TENANT == ""
    assert row is not None
    assert (row.request_id, row.tenant_id, row.status, row.error_code) == (key, "", "failed", "invalid_request")
    assert await dispatch_log.get(key) == row
    assert [found.request_id for found in await dispatch_log.recent(10, tenant_id="")] == [key]
    assert (await dispatch_log.summary(tenant_id="")).total == 1
