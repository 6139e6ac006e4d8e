"""The retry-until-taken loop: outages are waited out, verdicts on the write are raised for an outcome."""

from __future__ import annotations

import logging

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, MessageSizeTooLargeError, RecordTooLargeError

from smsdispatch.adapters.storage import StorageError, StorageUnavailable
from smsdispatch.core.persist import ThrottledWarning, until_taken, worth_retrying


class Failing:
    def __init__(self, error: Exception, times: int) -> None:
        self.error, self.left, self.calls = error, times, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.left:
            self.left -= 1
            raise self.error
        return "taken"


async def no_sleep(_seconds: float) -> None:
    return None


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "error",
    [KafkaTimeoutError(), KafkaConnectionError("refused"), OSError("reset"), RuntimeError("a driver's own error")],
)
async def test_an_outage_is_retried_until_the_write_is_taken(error: Exception) -> None:
    write = Failing(error, times=3)

    result = await until_taken(write, ThrottledWarning(logging.getLogger("t")), "a write", sleep=no_sleep)

    assert (result, write.calls) == ("taken", 4)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "error", [MessageSizeTooLargeError(), RecordTooLargeError(), TypeError("bug"), ValueError("bug")]
)
async def test_an_error_retrying_cannot_cure_is_raised_at_once(error: Exception) -> None:
    write = Failing(error, times=100)

    with pytest.raises(type(error)):
        await until_taken(write, ThrottledWarning(logging.getLogger("t")), "a write", sleep=no_sleep)
    assert write.calls == 1


def test_kafkas_own_flag_decides_except_for_a_timed_out_send() -> None:
    assert worth_retrying(KafkaConnectionError()) is True
    assert worth_retrying(MessageSizeTooLargeError()) is False
    assert worth_retrying(KafkaTimeoutError()) is True, "flagged permanent by aiokafka, but it is what an outage is"


def test_the_storage_layers_retryable_flag_decides_too() -> None:
    assert worth_retrying(StorageUnavailable("the database is down")) is True
    assert worth_retrying(StorageError("the database refuses this row")) is False


@pytest.mark.asyncio
async def test_an_incurable_error_can_be_given_more_tries_before_it_is_raised() -> None:
    write = Failing(StorageError("refused"), times=100)
    failures: list[BaseException] = []

    with pytest.raises(StorageError):
        await until_taken(
            write, ThrottledWarning(logging.getLogger("t")), "a write", sleep=no_sleep, refusals=3,
            on_failure=failures.append,
        )  # fmt: skip

    assert (write.calls, len(failures)) == (3, 3)
