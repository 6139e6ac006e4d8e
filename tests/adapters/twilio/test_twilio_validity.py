"""Expiry at the provider: Twilio's ValidityPeriod carries the seconds left, and nothing is sent once stale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smsdispatch.adapters.twilio import (
    Expired,
    OutgoingSms,
    PermanentError,
    RetryPolicy,
    TwilioHttp,
    TwilioProvider,
    validity_period,
)
from smsdispatch.contract import ErrorCode
from smsdispatch.tools.testing.twilio_fakes import FakeTwilio, twilio_error
from tests.accounts import token_config

from .conftest import TO_NUMBER

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("left", "expected"),
    [
        (timedelta(minutes=5), 300),
        (timedelta(seconds=90.9), 90),
        (timedelta(seconds=0.4), 1),
        (timedelta(days=2), 36000),
    ],
)
def test_validity_period_is_the_whole_seconds_left_within_twilios_bounds(left: timedelta, expected: int) -> None:
    assert validity_period(NOW + left, NOW) == expected


@pytest.mark.parametrize("past", [timedelta(0), timedelta(seconds=3)])
def test_a_message_past_its_expiry_is_expired(past: timedelta) -> None:
    with pytest.raises(Expired) as caught:
        validity_period(NOW - past, NOW)
    assert caught.value.error_code is ErrorCode.EXPIRED
    assert caught.value.retryable is False


@pytest.mark.asyncio
async def test_a_create_carries_validity_period_only_when_the_message_expires(
    provider: TwilioProvider, fake: FakeTwilio
) -> None:
    expires = datetime.now(UTC) + timedelta(minutes=10)

    await provider.send(OutgoingSms(to=TO_NUMBER, body="Hello", expires_at=expires))
    await provider.send(OutgoingSms(to=TO_NUMBER, body="Hello again"))

    timed, untimed = fake.creates()
    assert 598 <= int(timed["ValidityPeriod"]) <= 600
    assert "ValidityPeriod" not in untimed


@pytest.mark.asyncio
async def test_a_message_that_expires_during_429_retries_is_not_sent_again(fake: FakeTwilio, http: TwilioHttp) -> None:
    # Real sleeps (0.2s, then 0.4s, jitter pinned): the wall clock the expiry is read from really moves.
    provider = TwilioProvider(token_config(), http, RetryPolicy(base_delay=0.2, jitter=lambda: 1.0))
    fake.then(*(twilio_error(429, 20429, "Too Many Requests") for _ in range(5)))
    expires = datetime.now(UTC) + timedelta(seconds=0.5)

    with pytest.raises(Expired) as caught:
        await provider.send(OutgoingSms(to=TO_NUMBER, body="Hello", expires_at=expires))

    assert len(fake.creates()) == 2, "two 429s (nothing processed), then stale before the third attempt"
    assert caught.value.attempts == 3
    assert len(fake.messages) == 0


def test_expired_is_never_retried_and_reports_its_own_code() -> None:
    assert issubclass(Expired, PermanentError)
    assert Expired("stale").error_code is ErrorCode.EXPIRED
