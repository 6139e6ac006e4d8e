"""Dispatcher reconciliation: a request left "sending", or answered with an unknown outcome, is looked up in
Twilio's message list before anything is sent, and is never sent blindly a second time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from smsdispatch.adapters.twilio import ProviderUnavailable, ReconciliationUnavailable, UnknownOutcome
from smsdispatch.contract import ErrorCode, SmsDispatched, SmsFailed, topics
from smsdispatch.core.ledger import LedgerEntry, ledger_key

from .fakes import OTHER_KEYRING, T0, TO, FakePool, Harness, accepted, harness, inbound, request_json

MARKED_AT = T0 - timedelta(minutes=3)
FOUND_SID = "SM" + "f" * 32


def left_sending(h: Harness, request_id: str = "r-1", tenant_id: str = "acme") -> None:
    """What a worker that died between its "sending" mark and the outcome leaves in the ledger."""
    entry = LedgerEntry(state="sending", partition=0, at=MARKED_AT)
    h.ledger_store[ledger_key(tenant_id, request_id)] = entry.model_dump_json().encode()


def unknown_outcome(body: str = "Hello") -> UnknownOutcome:
    return UnknownOutcome(
        "Twilio answered HTTP 500; Twilio may have accepted the message.",
        to=TO,
        body=body,
        sent_after=T0,
        provider_code=20500,
        http_status=500,
        attempts=1,
    )


def only_outcome(h: Harness) -> SmsDispatched | SmsFailed:
    [emitted] = h.publisher.outcomes()
    assert emitted.key == b"acme"
    if emitted.topic == topics.DISPATCHED:
        return SmsDispatched.model_validate_json(emitted.value)
    return SmsFailed.model_validate_json(emitted.value)


@pytest.mark.asyncio
async def test_a_request_left_sending_and_found_at_twilio_is_dispatched_without_sending() -> None:
    h = harness()
    left_sending(h)
    h.sender().on_find("Hello", accepted(TO, "Hello", sid=FOUND_SID))

    await h.run([inbound(request_json())])

    outcome = only_outcome(h)
    assert isinstance(outcome, SmsDispatched)
    assert outcome.provider_message_id == FOUND_SID
    assert h.sender().sent == []
    assert h.sender().looked_up == [(TO, "Hello", MARKED_AT)]


@pytest.mark.asyncio
async def test_a_request_left_sending_and_not_found_at_twilio_is_looked_up_first_then_sent_once() -> None:
    events: list[str] = []
    h = harness(pool=FakePool(events=events))
    left_sending(h)

    await h.run([inbound(request_json())])

    assert isinstance(only_outcome(h), SmsDispatched)
    assert events == ["find Hello", "send Hello"]


@pytest.mark.asyncio
async def test_a_request_left_sending_that_twilio_cannot_confirm_is_outcome_unknown_and_not_sent() -> None:
    h = harness()
    left_sending(h)
    h.sender().on_find(
        "Hello", ReconciliationUnavailable("Test credentials cannot list messages (20008).", provider_code=20008)
    )

    await h.run([inbound(request_json())])

    outcome = only_outcome(h)
    assert isinstance(outcome, SmsFailed)
    assert outcome.error.code is ErrorCode.OUTCOME_UNKNOWN
    assert outcome.error.retryable is False
    assert "Test credentials" in outcome.error.message
    assert h.sender().sent == []


@pytest.mark.asyncio
async def test_a_request_left_sending_whose_look_up_fails_is_outcome_unknown_and_not_sent() -> None:
    h = harness()
    left_sending(h)
    h.sender().on_find("Hello", ProviderUnavailable("Could not reach Twilio (ConnectError)."))

    await h.run([inbound(request_json())])

    outcome = only_outcome(h)
    assert isinstance(outcome, SmsFailed)
    assert outcome.error.code is ErrorCode.OUTCOME_UNKNOWN
    assert h.sender().sent == []


@pytest.mark.asyncio
async def test_an_unknown_outcome_found_at_twilio_is_dispatched_after_exactly_one_send() -> None:
    h = harness()
    h.sender().on_send("Hello", unknown_outcome()).on_find("Hello", accepted(TO, "Hello", sid=FOUND_SID))

    await h.run([inbound(request_json())])

    outcome = only_outcome(h)
    assert isinstance(outcome, SmsDispatched)
    assert outcome.provider_message_id == FOUND_SID
    assert len(h.sender().sent) == 1
    assert h.sender().looked_up == [(TO, "Hello", T0)]


@pytest.mark.asyncio
async def test_an_unknown_outcome_not_found_at_twilio_is_provider_unavailable_retryable_after_one_send() -> None:
    h = harness()
    h.sender().on_send("Hello", unknown_outcome())

    await h.run([inbound(request_json())])

    outcome = only_outcome(h)
    assert isinstance(outcome, SmsFailed)
    assert outcome.error.code is ErrorCode.PROVIDER_UNAVAILABLE
    assert outcome.error.retryable is True
    assert outcome.error.provider_code == 20500
    assert outcome.attempts == 1
    assert len(h.sender().sent) == 1


@pytest.mark.asyncio
async def test_an_unknown_outcome_that_cannot_be_confirmed_is_outcome_unknown_after_one_send() -> None:
    h = harness()
    h.sender().on_send("Hello", unknown_outcome()).on_find("Hello", ReconciliationUnavailable("cannot list"))

    await h.run([inbound(request_json())])

    outcome = only_outcome(h)
    assert isinstance(outcome, SmsFailed)
    assert outcome.error.code is ErrorCode.OUTCOME_UNKNOWN
    assert outcome.error.retryable is False
    assert len(h.sender().sent) == 1


@pytest.mark.asyncio
async def test_a_reconciled_request_is_recorded_done_so_a_redelivery_is_not_looked_up_again() -> None:
    h = harness()
    left_sending(h)
    h.sender().on_find("Hello", accepted(TO, "Hello", sid=FOUND_SID))
    await h.run([inbound(request_json())])

    await h.run([inbound(request_json())])

    first, second = h.publisher.outcomes()
    assert first == second
    assert len(h.sender().looked_up) == 1
    assert h.sender().sent == []


@pytest.mark.parametrize("change", ["removed", "undecryptable"])
@pytest.mark.asyncio
async def test_a_request_left_sending_whose_tenant_can_no_longer_send_is_outcome_unknown(change: str) -> None:
    h = harness()
    left_sending(h)
    if change == "removed":
        del h.tenants.store[b"acme"]
    else:
        h.tenants.add("acme", keyring=OTHER_KEYRING)

    await h.run([inbound(request_json())])

    outcome = only_outcome(h)
    assert isinstance(outcome, SmsFailed)
    assert outcome.error.code is ErrorCode.OUTCOME_UNKNOWN
    assert outcome.error.retryable is False


@pytest.mark.asyncio
async def test_an_unreadable_ledger_entry_counts_as_sending_and_is_looked_up_not_sent() -> None:
    h = harness()
    h.ledger_store[ledger_key("acme", "r-1")] = b"{not a ledger entry"
    h.sender().on_find("Hello", None)

    await h.run([inbound(request_json())])

    assert len(h.sender().looked_up) == 1  # asked Twilio first; it had nothing, so one send followed
    assert len(h.sender().sent) == 1
    assert isinstance(only_outcome(h), SmsDispatched)


@pytest.mark.asyncio
async def test_a_look_up_never_adopts_a_message_already_dispatched_for_another_request() -> None:
    h = harness()
    first = accepted(TO, "Hello", sid=FOUND_SID)
    h.sender().on_send("Hello", first, unknown_outcome())

    await h.run([inbound(request_json("r-1"))])
    await h.run([inbound(request_json("r-2"))])

    assert h.sender().excluded == [{FOUND_SID}]


@pytest.mark.parametrize("left_behind", ["sending", "unknown outcome"])
@pytest.mark.asyncio
async def test_not_found_proves_nothing_where_twilio_may_change_the_body_so_nothing_is_sent(left_behind: str) -> None:
    h = harness()
    h.sender().exact_bodies = False  # a trial account, or a Messaging Service
    if left_behind == "sending":
        left_sending(h)
    else:
        h.sender().on_send("Hello", unknown_outcome())
    h.sender().on_find("Hello", None)

    await h.run([inbound(request_json())])

    outcome = only_outcome(h)
    assert isinstance(outcome, SmsFailed)
    assert outcome.error.code is ErrorCode.OUTCOME_UNKNOWN
    assert len(h.sender().sent) == (0 if left_behind == "sending" else 1)
