"""SuppressionView: opt-outs per tenant, tombstones, local changes, memory, and loaded() when filled by hand.

The follower that feeds it from Kafka is tested in tests/runtime/test_suppression_follower.py."""

from __future__ import annotations

import asyncio
import random
import tracemalloc

import pytest

from smsdispatch.contract import SuppressionSource, suppression_change, suppression_key
from smsdispatch.core.suppressions import OptOut, SuppressionView

NUMBER = "+14155552671"
OTHER = "+442079460958"


def opted_out(tenant_id: str, number: str) -> tuple[bytes, bytes | None]:
    return suppression_change(tenant_id, number, True, SuppressionSource.INBOUND_STOP)


def opted_in(tenant_id: str, number: str) -> tuple[bytes, bytes | None]:
    return suppression_change(tenant_id, number, False)


def fed(*changes: tuple[bytes | None, bytes | None]) -> SuppressionView:
    view = SuppressionView()
    for offset, (key, value) in enumerate(changes):
        view.apply(0, offset, key, value)
    return view


def test_an_opt_out_on_the_topic_suppresses_that_number_for_that_tenant() -> None:
    view = fed(opted_out("acme", NUMBER))

    assert view.is_suppressed("acme", NUMBER)
    assert not view.is_suppressed("acme", OTHER)
    assert len(view) == 1


def test_a_tombstone_opts_the_number_back_in() -> None:
    view = fed(opted_out("acme", NUMBER), opted_in("acme", NUMBER))

    assert not view.is_suppressed("acme", NUMBER)
    assert len(view) == 0
    assert view.entries() == []


def test_one_tenants_opt_out_never_suppresses_another_tenants_same_number() -> None:
    view = fed(opted_out("acme", NUMBER), opted_out("globex", OTHER))

    assert view.is_suppressed("acme", NUMBER)
    assert not view.is_suppressed("globex", NUMBER)
    assert not view.is_suppressed("initech", NUMBER)


def test_tenant_ids_that_are_prefixes_of_each_other_stay_apart() -> None:
    view = fed(opted_out("acme", NUMBER))

    assert not view.is_suppressed("acm", NUMBER)
    assert not view.is_suppressed("acme.eu", NUMBER)


def test_the_same_opt_out_twice_counts_once_and_one_tombstone_removes_it() -> None:
    view = fed(opted_out("acme", NUMBER), opted_out("acme", NUMBER), opted_in("acme", NUMBER))

    assert len(view) == 0


def test_a_tombstone_for_a_number_never_on_the_list_changes_nothing() -> None:
    view = fed(opted_out("acme", NUMBER), opted_in("acme", OTHER), opted_in("globex", NUMBER))

    assert view.entries() == [OptOut("acme", NUMBER)]


def test_a_value_nobody_can_read_still_suppresses_since_the_key_alone_decides() -> None:
    view = fed((suppression_key("acme", NUMBER), b"not json"))

    assert view.is_suppressed("acme", NUMBER)


@pytest.mark.parametrize(
    "key", [None, b"acme", b"acme/14155552671", b"acme/+1415x", b"a b/+14155552671", b"\xff/+1", b"acme/+1/+2"]
)
def test_a_key_that_is_not_tenant_and_number_is_ignored(key: bytes | None, caplog: pytest.LogCaptureFixture) -> None:
    view = fed((key, b"{}"))

    assert len(view) == 0
    assert "not tenant_id/number" in caplog.text


def test_numbers_that_are_not_e164_are_never_suppressed() -> None:
    view = fed(opted_out("acme", NUMBER))

    for written_otherwise in ("14155552671", "+1 415 555 2671", "+14155552671\n", "+1_4155552671", "+١٤١٥٥٥٥٢٦٧١"):
        assert not view.is_suppressed("acme", written_otherwise)


def test_local_changes_apply_at_once_and_the_record_read_back_agrees() -> None:
    view = SuppressionView()

    view.suppress_locally("acme", NUMBER)
    suppressed_before_read_back = view.is_suppressed("acme", NUMBER)
    view.apply(0, 0, *opted_out("acme", NUMBER))  # the record this worker published, read back
    count_after_read_back = len(view)
    view.release_locally("acme", NUMBER)

    assert suppressed_before_read_back
    assert count_after_read_back == 1
    assert not view.is_suppressed("acme", NUMBER)


def test_a_local_change_refuses_a_number_that_is_not_e164() -> None:
    with pytest.raises(ValueError, match=r"E\.164"):
        SuppressionView().suppress_locally("acme", "14155552671")


def test_entries_are_per_tenant_or_all_sorted() -> None:
    view = fed(opted_out("globex", NUMBER), opted_out("acme", OTHER), opted_out("acme", NUMBER))

    assert view.entries("acme") == [OptOut("acme", NUMBER), OptOut("acme", OTHER)]
    assert view.entries("nobody") == []
    assert view.entries() == [OptOut("acme", NUMBER), OptOut("acme", OTHER), OptOut("globex", NUMBER)]


def test_the_view_holds_100k_opt_outs_in_under_150_bytes_each() -> None:
    generator = random.Random(7)
    changes = [
        opted_out(f"tenant-{n % 10}", f"+1{generator.randrange(2_000_000_000, 9_999_999_999)}") for n in range(100_000)
    ]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        view = fed(*changes)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    assert len(view) > 99_000  # a few random numbers repeat
    assert held / len(view) < 150, f"{held / len(view):.0f} bytes per opt-out"


@pytest.mark.asyncio
async def test_a_view_filled_by_hand_counts_as_loaded() -> None:
    await asyncio.wait_for(SuppressionView().loaded(), 1)
