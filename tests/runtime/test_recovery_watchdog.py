"""The recovery watchdog: a table recovery that reads nothing for the stall period asks the group for a rebalance,
one that makes progress (or waits for Kafka) is left alone."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from smsdispatch.runtime.recovery_watchdog import RecoveryWatchdog


@dataclass
class FakeRecovery:
    in_recovery: bool = True
    remaining: dict[str, int] = field(default_factory=dict)

    def active_remaining(self) -> Mapping[str, int]:
        return self.remaining


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    recovery: FakeRecovery
    clock: Clock
    watchdog: RecoveryWatchdog
    rejoins: list[float]
    reachable: list[bool]

    def look_every_second_for(self, seconds: int) -> list[bool]:
        answers = []
        for _ in range(seconds):
            self.clock.now += 1
            answers.append(self.watchdog.check())
        return answers


@pytest.fixture
def harness() -> Harness:
    recovery, clock, rejoins, reachable = FakeRecovery(), Clock(), [], [True]
    watchdog = RecoveryWatchdog(
        lambda: recovery,
        rejoin=lambda: rejoins.append(clock.now),
        reachable=lambda: reachable[0],
        describe=lambda tp: f"{tp} looks stuck",
        stall_seconds=15.0,
        clock=clock,
    )
    return Harness(recovery, clock, watchdog, rejoins, reachable)


def test_a_recovery_that_reads_nothing_for_the_stall_period_asks_the_group_to_rebalance(harness: Harness) -> None:
    harness.recovery.remaining = {"tenants-changelog-5": 4, "tenants-changelog-4": 2, "ledger-changelog-4": 0}

    answers = harness.look_every_second_for(16)

    assert harness.rejoins == [1016.0]  # 15 s after the first look that saw the count
    assert answers.count(True) == 1
    assert answers[-1] is True
    assert harness.watchdog.rejoins == 1


def test_a_stall_that_lasts_asks_again_after_twice_the_wait_each_time_and_logs_the_partitions_left(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.recovery.remaining = {"tenants-changelog-5": 4, "ledger-changelog-4": 0}

    with caplog.at_level(logging.WARNING, logger="smsdispatch.recovery"):
        harness.look_every_second_for(106)

    assert harness.rejoins == [1016.0, 1046.0, 1106.0]  # 15, then 30, then 60 s without progress
    assert len(caplog.records) == 3
    message = caplog.records[0].getMessage()
    assert "4 records left" in message
    assert "tenants-changelog-5 looks stuck, 4 left" in message
    assert "ledger-changelog-4" not in message, "a partition already restored is not reported"


def test_a_recovery_that_makes_progress_however_slowly_is_left_alone(harness: Harness) -> None:
    harness.recovery.remaining = {"ledger-changelog-1": 100}
    for _ in range(10):
        harness.look_every_second_for(14)
        harness.recovery.remaining = {"ledger-changelog-1": harness.recovery.remaining["ledger-changelog-1"] - 1}

    assert harness.rejoins == []


def test_a_new_recovery_with_more_to_read_starts_the_stall_period_again(harness: Harness) -> None:
    harness.recovery.remaining = {"tenants-changelog-5": 4}
    harness.look_every_second_for(10)
    harness.recovery.remaining = {"tenants-changelog-5": 4, "ledger-changelog-2": 50}  # another rebalance came
    harness.look_every_second_for(10)

    assert harness.rejoins == []
    harness.look_every_second_for(6)
    assert harness.rejoins == [1026.0]


def test_no_rebalance_is_asked_while_kafka_does_not_answer_and_a_whole_period_follows_its_return(
    harness: Harness,
) -> None:
    harness.recovery.remaining = {"tenants-changelog-5": 4}
    harness.reachable[0] = False
    harness.look_every_second_for(40)
    assert harness.rejoins == []

    harness.reachable[0] = True
    harness.look_every_second_for(15)

    assert harness.rejoins == [1046.0]  # the stall period after the look at 1031 that found Kafka away


def test_nothing_is_asked_when_recovery_is_over_or_has_nothing_left(harness: Harness) -> None:
    harness.recovery.remaining = {"tenants-changelog-5": 0}
    harness.look_every_second_for(30)
    harness.recovery.in_recovery = False
    harness.recovery.remaining = {"tenants-changelog-5": 4}  # stale figures once recovery has ended
    harness.look_every_second_for(30)

    assert harness.rejoins == []


@pytest.mark.asyncio
async def test_the_service_watches_from_its_start_and_survives_a_failing_look() -> None:
    recovery = FakeRecovery(remaining={"tenants-changelog-5": 4})
    asked = asyncio.Event()
    looks = 0

    def flaky_recovery() -> FakeRecovery:
        nonlocal looks
        looks += 1
        if looks == 2:
            raise RuntimeError("surprise")
        return recovery

    watchdog = RecoveryWatchdog(
        flaky_recovery, rejoin=asked.set, reachable=lambda: True, stall_seconds=0.05, interval=0.01
    )
    await watchdog.start()
    try:
        await asyncio.wait_for(asked.wait(), timeout=5)
    finally:
        await watchdog.stop()

    assert looks > 2
    assert watchdog.rejoins >= 1


def test_the_wait_between_asks_stops_growing_at_its_maximum_and_starts_over_once_records_are_read(
    harness: Harness,
) -> None:
    harness.recovery.remaining = {"tenants-changelog-5": 4}
    harness.look_every_second_for(1 + 15 + 30 + 60 + 120 + 240 + 300 + 300)  # the first look sees the count
    gaps = [later - earlier for earlier, later in zip(harness.rejoins, harness.rejoins[1:], strict=False)]
    assert gaps == [30, 60, 120, 240, 300, 300]

    harness.recovery.remaining = {"tenants-changelog-5": 3}  # a record was read
    asked = len(harness.rejoins)
    harness.look_every_second_for(15)
    assert len(harness.rejoins) == asked, "the look that saw the new count starts the wait"
    harness.look_every_second_for(1)
    assert len(harness.rejoins) == asked + 1, "after progress, a new stall is noticed after 15 s again"
