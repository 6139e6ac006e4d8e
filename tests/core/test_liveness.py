"""The worker's liveness verdict: records held without progress, Kafka writes unacknowledged, Kafka away."""

from __future__ import annotations

from dataclasses import dataclass

from smsdispatch.core.liveness import Liveness


@dataclass
class Held:
    records: int
    idle: float

    def __len__(self) -> int:
        return self.records

    def stalled_for(self) -> float:
        return self.idle


def liveness(
    *, dispatcher: Held, logsink: Held | None = None, write_age: float = 0.0, reachable: bool = True
) -> Liveness:
    return Liveness(
        stall_seconds=120,
        pipelines={"dispatcher": dispatcher, "logsink": logsink or Held(0, 0.0)},
        oldest_write_age=lambda: write_age,
        kafka_reachable=lambda: reachable,
    )


def test_a_worker_making_progress_is_ok_and_live() -> None:
    verdict = liveness(dispatcher=Held(32, 119.0), write_age=119.0).verdict()

    assert (verdict.status, verdict.reasons, verdict.stuck) == ("ok", (), False)


def test_records_held_without_one_finishing_past_the_stall_time_are_a_stuck_worker() -> None:
    verdict = liveness(dispatcher=Held(32, 121.4)).verdict()

    assert verdict.status == "degraded"
    assert verdict.reasons == ("the dispatcher pipeline holds 32 records and none has finished for 121 s",)
    assert verdict.stuck


def test_a_kafka_write_unacknowledged_past_the_stall_time_is_a_stuck_worker() -> None:
    verdict = liveness(dispatcher=Held(0, 0.0), write_age=300.0).verdict()

    assert verdict.reasons == ("a Kafka write has waited 300 s for its acknowledgement",)
    assert verdict.stuck


def test_with_kafka_away_the_worker_is_degraded_but_not_stuck_since_a_restart_cannot_help() -> None:
    verdict = liveness(dispatcher=Held(5, 200.0), logsink=Held(3, 200.0), write_age=200.0, reachable=False).verdict()

    assert verdict.status == "degraded"
    assert verdict.reasons[0] == "Kafka is unreachable"
    assert len(verdict.reasons) == 4
    assert not verdict.stuck
