"""Which failures of a create TwilioProvider retries (docs/reference/twilio.md, "What is safe to retry")."""

from __future__ import annotations

import httpx
import pytest

from smsdispatch.adapters.twilio import (
    OutgoingSms,
    ProviderUnavailable,
    RateLimited,
    TwilioHttp,
    TwilioProvider,
    UnknownOutcome,
)
from smsdispatch.contract import ErrorCode
from smsdispatch.tools.testing.twilio_fakes import FakeTwilio, twilio_error
from tests.accounts import token_config

from .conftest import TO_NUMBER, FakeClock, fast_policy

HELLO = OutgoingSms(to=TO_NUMBER, body="Hello")


def too_many_requests(retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else None
    return twilio_error(429, 20429, "Too Many Requests", headers=headers)


@pytest.mark.asyncio
async def test_429_is_retried_then_succeeds(provider: TwilioProvider, fake: FakeTwilio, clock: FakeClock) -> None:
    fake.then(too_many_requests(), too_many_requests())

    result = await provider.send(HELLO)

    assert result.attempts == 3
    assert len(fake.creates()) == 3
    assert len(fake.messages) == 1
    # Full jitter pinned at its maximum: base 0.2 doubling.
    assert clock.sleeps == [0.2, 0.4]


@pytest.mark.asyncio
async def test_429_until_attempts_run_out_raises_rate_limited(
    http: TwilioHttp, fake: FakeTwilio, clock: FakeClock
) -> None:
    provider = TwilioProvider(token_config(), http, fast_policy(clock, max_attempts=4))
    fake.then(*(too_many_requests() for _ in range(10)))

    with pytest.raises(RateLimited) as caught:
        await provider.send(HELLO)

    assert len(fake.creates()) == 4
    assert caught.value.attempts == 4
    assert caught.value.error_code is ErrorCode.RATE_LIMITED
    assert (caught.value.retryable, caught.value.provider_code, caught.value.http_status) == (True, 20429, 429)


@pytest.mark.asyncio
async def test_retry_after_header_sets_the_delay(provider: TwilioProvider, fake: FakeTwilio, clock: FakeClock) -> None:
    fake.then(too_many_requests(retry_after="3"))

    await provider.send(HELLO)

    assert clock.sleeps == [3.0]


@pytest.mark.asyncio
async def test_retry_after_beyond_the_elapsed_budget_gives_up_without_waiting(
    provider: TwilioProvider, fake: FakeTwilio, clock: FakeClock
) -> None:
    fake.then(too_many_requests(retry_after="120"))

    with pytest.raises(RateLimited) as caught:
        await provider.send(HELLO)

    assert clock.sleeps == []
    assert caught.value.retry_after == 120.0
    assert caught.value.attempts == 1


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("All connection attempts failed"),
        httpx.ConnectTimeout("timed out connecting"),
        httpx.PoolTimeout("no connection free in the pool"),
    ],
)
async def test_connection_failure_before_sending_is_retried_then_succeeds(
    provider: TwilioProvider, fake: FakeTwilio, failure: Exception
) -> None:
    fake.then(failure)

    result = await provider.send(HELLO)

    assert result.attempts == 2
    assert len(fake.messages) == 1


@pytest.mark.asyncio
async def test_connect_errors_until_attempts_run_out_raise_provider_unavailable(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    fake.then(*(httpx.ConnectError("All connection attempts failed") for _ in range(10)))

    with pytest.raises(ProviderUnavailable) as caught:
        await provider.send(HELLO)

    assert len(fake.requests) == 6
    assert (caught.value.attempts, caught.value.retryable) == (6, True)
    assert caught.value.error_code is ErrorCode.PROVIDER_UNAVAILABLE


@pytest.mark.asyncio
@pytest.mark.parametrize(("status", "code"), [(500, 20500), (502, None), (503, 20503)])
async def test_5xx_is_never_retried_and_raises_unknown_outcome(
    provider: TwilioProvider, fake: FakeTwilio, clock: FakeClock, status: int, code: int | None
) -> None:
    answer = twilio_error(status, code, "Service Unavailable") if code else httpx.Response(status, text="Bad gateway")
    fake.then(answer)

    with pytest.raises(UnknownOutcome) as caught:
        await provider.send(HELLO)

    assert len(fake.creates()) == 1
    assert clock.sleeps == []
    assert (caught.value.http_status, caught.value.provider_code, caught.value.retryable) == (status, code, False)


@pytest.mark.asyncio
async def test_read_timeout_is_never_retried_and_raises_unknown_outcome(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    fake.then(httpx.ReadTimeout("timed out reading the response"))

    with pytest.raises(UnknownOutcome) as caught:
        await provider.send(HELLO)

    assert len(fake.creates()) == 1
    assert caught.value.error_code is ErrorCode.OUTCOME_UNKNOWN


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "failure",
    [
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("Connection reset by peer"),
        httpx.WriteError("Broken pipe"),
    ],
)
async def test_connection_dropped_after_sending_is_never_retried(
    provider: TwilioProvider, fake: FakeTwilio, failure: Exception
) -> None:
    fake.then(failure)

    with pytest.raises(UnknownOutcome):
        await provider.send(HELLO)

    assert len(fake.creates()) == 1


@pytest.mark.asyncio
async def test_elapsed_time_bound_stops_retries_before_the_attempt_limit(
    http: TwilioHttp, fake: FakeTwilio, clock: FakeClock
) -> None:
    # Delays 0.2, 0.4, 0.8, 1.6 (pinned jitter): after 4 attempts 1.4 s have passed and the next wait of
    # 1.6 s would end at 3.0 s, past the 2.5 s budget.
    provider = TwilioProvider(token_config(), http, fast_policy(clock, max_attempts=50, max_elapsed=2.5))
    fake.then(*(too_many_requests() for _ in range(50)))

    with pytest.raises(RateLimited) as caught:
        await provider.send(HELLO)

    assert clock.sleeps == pytest.approx([0.2, 0.4, 0.8])
    assert caught.value.attempts == 4
    assert len(fake.creates()) == 4


@pytest.mark.asyncio
async def test_429_after_a_connect_error_is_still_retried(provider: TwilioProvider, fake: FakeTwilio) -> None:
    fake.then(httpx.ConnectError("refused"), too_many_requests())

    result = await provider.send(HELLO)

    assert result.attempts == 3
