"""Shared pieces of the provider tests: a tenant, a fake clock, and a provider wired to a FakeTwilio."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from smsdispatch.adapters.twilio import RetryPolicy, TwilioHttp, TwilioProvider
from smsdispatch.tools.testing.twilio_fakes import FakeTwilio
from tests.accounts import (
    TO,
    token_config,
)

TO_NUMBER = TO
BASE_URL = "https://api.twilio.test"


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps: retries without waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def fast_policy(clock: FakeClock, *, max_attempts: int = 6, max_elapsed: float = 30.0) -> RetryPolicy:
    """The default policy, on a fake clock, with jitter pinned to its maximum so delays are predictable."""
    return RetryPolicy(
        max_attempts=max_attempts, max_elapsed=max_elapsed, sleep=clock.sleep, clock=clock, jitter=lambda: 1.0
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake() -> FakeTwilio:
    return FakeTwilio()


@pytest_asyncio.fixture
async def http(fake: FakeTwilio) -> AsyncIterator[TwilioHttp]:
    async with TwilioHttp(BASE_URL, transport=fake.transport) as client:
        yield client


@pytest.fixture
def provider(http: TwilioHttp, clock: FakeClock) -> TwilioProvider:
    return TwilioProvider(token_config(), http, fast_policy(clock))
