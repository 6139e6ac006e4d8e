"""The pure parts of the upsert rules: status ranks, unreadable-record keys, column values per outcome."""

from __future__ import annotations

from smsdispatch.adapters.storage import FINAL_STATUSES, status_rank, unreadable_request_id
from smsdispatch.adapters.storage.rows import UNREADABLE_PREFIX, row_values

from .factories import T0, dispatched, failed, receipt


def test_twilio_lifecycle_ranks_strictly_increase_up_to_the_final_states() -> None:
    lifecycle = ["accepted", "queued", "sending", "sent"]
    ranks = [status_rank(status) for status in lifecycle]

    assert ranks == sorted(set(ranks))
    assert {status_rank(final) for final in FINAL_STATUSES} == {max(ranks) + 1}


def test_unknown_statuses_rank_below_every_known_one() -> None:
    assert status_rank("read") == status_rank("partially_delivered") == 0 < status_rank("accepted")


def test_unreadable_key_depends_on_the_input_not_on_when_it_failed() -> None:
    first = failed(None, raw="garbage", failed_at=T0)
    again = failed(None, raw="garbage")
    without_raw = failed(None, raw=None, tenant_id=None)

    assert unreadable_request_id(first) == unreadable_request_id(again)
    assert unreadable_request_id(first).startswith(UNREADABLE_PREFIX)
    assert unreadable_request_id(without_raw) == unreadable_request_id(failed(None, raw=None, tenant_id=None))
    assert unreadable_request_id(without_raw) != unreadable_request_id(first)


def test_each_outcome_sets_updated_at_from_its_own_timestamp() -> None:
    assert row_values(dispatched())["updated_at"] == dispatched().dispatched_at
    assert row_values(failed())["updated_at"] == failed().failed_at
    assert row_values(receipt("sent", 7))["updated_at"] == receipt("sent", 7).received_at


def test_receipt_values_leave_the_request_fields_unknown() -> None:
    values = row_values(receipt("delivered", 3))

    assert values["status"] == "delivered"
    assert "segments" not in values
    assert "to_number" not in values
