"""Twilio's answers, through the real provider and SenderPool (over httpx.MockTransport), become the
docs/contract.md outcome codes with Twilio's numeric code in provider_code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio

from smsdispatch.adapters.twilio import RetryPolicy, TwilioHttp
from smsdispatch.contract import ErrorCode, SmsDispatched, SmsFailed, topics
from smsdispatch.core.dispatch import Dispatcher
from smsdispatch.core.ledger import Ledger
from smsdispatch.core.senders import SenderPool
from smsdispatch.tools.testing.ledger import InMemoryChangelog
from smsdispatch.tools.testing.twilio_fakes import FakeTwilio, twilio_error

from .fakes import RecordingPublisher, Tenants, inbound, request_json, run_records

MAX_ATTEMPTS = 3


async def no_wait(_seconds: float) -> None:
    return None


@dataclass
class Stack:
    dispatcher: Dispatcher
    publisher: RecordingPublisher
    twilio: FakeTwilio

    async def outcome_of(self, body: str = "Hello") -> SmsDispatched | SmsFailed:
        await run_records(self.dispatcher, [inbound(request_json(body=body))])
        [emitted] = self.publisher.outcomes()
        if emitted.topic == topics.DISPATCHED:
            return SmsDispatched.model_validate_json(emitted.value)
        return SmsFailed.model_validate_json(emitted.value)


@pytest_asyncio.fixture
async def stack() -> AsyncIterator[Stack]:
    twilio = FakeTwilio()
    tenants = Tenants()
    tenants.add("acme")
    publisher = RecordingPublisher()
    retry = RetryPolicy(max_attempts=MAX_ATTEMPTS, sleep=no_wait, jitter=lambda: 0.0)
    async with TwilioHttp("https://api.twilio.test", transport=twilio.transport) as http:
        dispatcher = Dispatcher(
            tenants=tenants.directory(),
            ledger=Ledger({}, InMemoryChangelog()),
            publish=publisher,
            senders=SenderPool(http, retry=retry),
        )
        yield Stack(dispatcher, publisher, twilio)


@pytest.mark.parametrize(
    ("answers", "code", "provider_code", "retryable", "attempts"),
    [
        pytest.param(
            [twilio_error(400, 21211, "The 'To' number is not a valid phone number.")],
            ErrorCode.PROVIDER_REJECTED,
            21211,
            False,
            1,
            id="21211-invalid-to",
        ),
        pytest.param(
            [twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")],
            ErrorCode.PROVIDER_REJECTED,
            21610,
            False,
            1,
            id="21610-unsubscribed",
        ),
        pytest.param(
            [twilio_error(401, 20003, "Authenticate")],
            ErrorCode.PROVIDER_AUTH_FAILED,
            20003,
            False,
            1,
            id="20003-bad-credentials",
        ),
        pytest.param(
            [twilio_error(429, 20429, "Too Many Requests")] * MAX_ATTEMPTS,
            ErrorCode.RATE_LIMITED,
            20429,
            True,
            MAX_ATTEMPTS,
            id="429-until-retries-run-out",
        ),
        pytest.param(
            [httpx.ConnectError("connection refused")] * MAX_ATTEMPTS,
            ErrorCode.PROVIDER_UNAVAILABLE,
            None,
            True,
            MAX_ATTEMPTS,
            id="unreachable",
        ),
    ],
)
@pytest.mark.asyncio
async def test_a_twilio_error_becomes_its_contract_code_with_twilios_code(
    stack: Stack,
    answers: list[httpx.Response | Exception],
    code: ErrorCode,
    provider_code: int | None,
    retryable: bool,
    attempts: int,
) -> None:
    stack.twilio.then(*answers)

    outcome = await stack.outcome_of()

    assert isinstance(outcome, SmsFailed)
    assert (outcome.error.code, outcome.error.provider_code, outcome.error.retryable) == (
        code,
        provider_code,
        retryable,
    )
    assert outcome.attempts == attempts
    assert outcome.provider == "twilio"


@pytest.mark.asyncio
async def test_429s_that_stop_before_retries_run_out_end_dispatched_with_the_attempts_counted(stack: Stack) -> None:
    stack.twilio.then(*[twilio_error(429, 20429, "Too Many Requests")] * (MAX_ATTEMPTS - 1))

    outcome = await stack.outcome_of()

    assert isinstance(outcome, SmsDispatched)
    assert outcome.attempts == MAX_ATTEMPTS
    assert len(stack.twilio.messages) == 1


@pytest.mark.asyncio
async def test_a_create_accepted_then_answered_500_is_one_sms_reported_dispatched(stack: Stack) -> None:
    stack.twilio.then(stack.twilio.accepted_then(twilio_error(500, 20500, "Internal Server Error")))

    outcome = await stack.outcome_of()

    assert isinstance(outcome, SmsDispatched)
    assert [message["sid"] for message in stack.twilio.messages] == [outcome.provider_message_id]
    assert len(stack.twilio.creates()) == 1


@pytest.mark.asyncio
async def test_a_create_lost_before_acceptance_is_provider_unavailable_after_one_create(stack: Stack) -> None:
    stack.twilio.then(twilio_error(500, 20500, "Internal Server Error"))

    outcome = await stack.outcome_of()

    assert isinstance(outcome, SmsFailed)
    assert (outcome.error.code, outcome.error.retryable) == (ErrorCode.PROVIDER_UNAVAILABLE, True)
    assert stack.twilio.messages == []
    assert len(stack.twilio.creates()) == 1


@pytest.mark.asyncio
async def test_a_500_with_test_credentials_that_cannot_list_is_outcome_unknown(stack: Stack) -> None:
    stack.twilio.then(
        twilio_error(500, 20500, "Internal Server Error"),
        twilio_error(403, 20008, "Resource not accessible with Test Account Credentials"),
    )

    outcome = await stack.outcome_of()

    assert isinstance(outcome, SmsFailed)
    assert (outcome.error.code, outcome.error.retryable) == (ErrorCode.OUTCOME_UNKNOWN, False)
    assert len(stack.twilio.creates()) == 1
