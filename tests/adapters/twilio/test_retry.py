"""RetryPolicy: full-jitter exponential backoff, bounded by attempts and by elapsed time."""

from __future__ import annotations

import pytest

from smsdispatch.adapters.twilio import MessageRejected, ProviderUnavailable, RateLimited, RetryPolicy

from .conftest import FakeClock


def test_backoff_doubles_from_the_base_delay_up_to_the_max_delay() -> None:
    policy = RetryPolicy(base_delay=0.2, max_delay=1.0, jitter=lambda: 1.0)

    assert [policy.backoff(n) for n in range(1, 6)] == pytest.approx([0.2, 0.4, 0.8, 1.0, 1.0])


def test_backoff_is_full_jitter_a_uniform_share_of_the_ceiling() -> None:
    policy = RetryPolicy(base_delay=0.2, max_delay=5.0, jitter=lambda: 0.25)

    assert policy.backoff(3) == pytest.approx(0.2)


def test_retry_after_replaces_the_computed_delay() -> None:
    assert RetryPolicy(jitter=lambda: 1.0).backoff(1, retry_after=7.0) == 7.0


@pytest.mark.parametrize(
    "settings", [{"max_attempts": 0}, {"base_delay": -1.0}, {"max_delay": -1.0}, {"max_elapsed": -1.0}]
)
def test_nonsense_settings_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        RetryPolicy(**settings)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_run_retries_a_retryable_error_and_returns_the_first_success() -> None:
    clock = FakeClock()
    policy = RetryPolicy(sleep=clock.sleep, clock=clock, jitter=lambda: 0.5)
    calls: list[int] = []

    async def attempt(number: int) -> str:
        calls.append(number)
        if number < 3:
            raise ProviderUnavailable("refused")
        return "sent"

    assert await policy.run(attempt) == "sent"
    assert calls == [1, 2, 3]
    assert clock.sleeps == pytest.approx([0.1, 0.2])


@pytest.mark.asyncio
async def test_run_never_retries_an_error_that_is_not_retryable() -> None:
    clock = FakeClock()
    policy = RetryPolicy(sleep=clock.sleep, clock=clock)

    async def attempt(number: int) -> str:
        raise MessageRejected("21211", provider_code=21211)

    with pytest.raises(MessageRejected) as caught:
        await policy.run(attempt)

    assert caught.value.attempts == 1
    assert clock.sleeps == []


@pytest.mark.asyncio
async def test_run_gives_up_after_max_attempts_and_says_how_many_were_made() -> None:
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=3, sleep=clock.sleep, clock=clock)

    async def attempt(number: int) -> str:
        raise RateLimited("429")

    with pytest.raises(RateLimited) as caught:
        await policy.run(attempt)

    assert caught.value.attempts == 3
    assert len(clock.sleeps) == 2


@pytest.mark.asyncio
async def test_run_counts_time_spent_inside_attempts_against_the_elapsed_budget() -> None:
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=10, max_elapsed=10.0, sleep=clock.sleep, clock=clock, jitter=lambda: 0.0)

    async def slow_attempt(number: int) -> str:
        clock.now += 4.0  # each attempt takes 4 s before failing
        raise ProviderUnavailable("connect timeout")

    with pytest.raises(ProviderUnavailable) as caught:
        await policy.run(slow_attempt)

    assert caught.value.attempts == 3
