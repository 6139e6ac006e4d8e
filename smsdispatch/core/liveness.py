"""Whether the worker is making progress: what ``/health`` reports as ``degraded`` and ``/live`` answers 503 for.

A worker can be up, reachable and still stuck: records held that never finish, or Kafka writes that are never
acknowledged, while nothing fails loudly (issue 22: outcomes stopped for minutes while ``/health`` said "ok").
:class:`Liveness` turns those into reasons, each one sentence:

* a pipeline that holds records of which none has finished for ``stall_seconds`` (outcomes are not being
  written while work is pending);
* a Kafka write unacknowledged for ``stall_seconds``;
* what the worker's state reports (a partition whose restore failed and is being retried);
* Kafka unreachable.

Guarantees and limits: it reads live state, so it can never be staler than the call; a worker is *stuck* (not
live) only for the first two reasons while Kafka answers, since a restart cannot bring Kafka back. Records that
wait on purpose without being held (none today) would not count; records held on purpose longer than
``stall_seconds`` (a tenant's rate far below its backlog never is: each send finishing counts) would. Choose
``stall_seconds`` above the send deadline: a send may legitimately take that long.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol


class Progressing(Protocol):
    """A pipeline, as the liveness check reads it."""

    def __len__(self) -> int: ...

    def stalled_for(self) -> float: ...


@dataclass(frozen=True)
class Verdict:
    """The reasons the worker is degraded (empty: ok), and whether a restart could help (``stuck``)."""

    reasons: tuple[str, ...]
    stuck: bool

    @property
    def status(self) -> str:
        return "degraded" if self.reasons else "ok"


class Liveness:
    def __init__(
        self,
        *,
        stall_seconds: float,
        pipelines: Mapping[str, Progressing],
        oldest_write_age: Callable[[], float],
        kafka_reachable: Callable[[], bool],
        trouble: Callable[[], list[str]] = list,
    ) -> None:
        self.stall_seconds = stall_seconds
        self._pipelines = pipelines
        self._oldest_write_age = oldest_write_age
        self._kafka_reachable = kafka_reachable
        self._trouble = trouble

    def verdict(self) -> Verdict:
        """Degraded while any reason holds; stuck (a restart would help) only for a stall while Kafka answers: a
        failing restore is retried by the worker itself."""
        stalls = [*self._stalled_pipelines(), *self._stuck_writes()]
        reachable = self._kafka_reachable()
        reasons = [*stalls, *self._trouble()]
        if not reachable:
            reasons.insert(0, "Kafka is unreachable")
        return Verdict(tuple(reasons), stuck=bool(stalls) and reachable)

    def _stalled_pipelines(self) -> list[str]:
        return [
            f"the {name} pipeline holds {len(pipeline)} records and none has finished for {idle:.0f} s"
            for name, pipeline in self._pipelines.items()
            if (idle := pipeline.stalled_for()) > self.stall_seconds
        ]

    def _stuck_writes(self) -> list[str]:
        age = self._oldest_write_age()
        if age <= self.stall_seconds:
            return []
        return [f"a Kafka write has waited {age:.0f} s for its acknowledgement"]
