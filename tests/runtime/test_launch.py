"""A worker told to stop exits within its bound, however stuck its shutdown is."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

from smsdispatch.runtime.launch import bounded_stop_worker


class StuckWorker:
    """Faust's Worker as the watchdog sees it: ``_schedule_shutdown`` starts a shutdown that never ends."""

    def __init__(self) -> None:
        self._signal_stop_time: float | None = None
        self.shutdowns = 0

    def _schedule_shutdown(self, sig: Any) -> None:
        if not self._signal_stop_time:
            self._signal_stop_time = time.monotonic()
            self.shutdowns += 1


def test_a_shutdown_still_running_after_the_bound_exits_the_process_with_status_1() -> None:
    exits: list[int] = []
    exited = threading.Event()

    def exit(code: int) -> None:
        exits.append(code)
        exited.set()

    worker = bounded_stop_worker(StuckWorker, 0.05, exit)()
    worker._schedule_shutdown(signal.SIGTERM)

    assert exited.wait(5), "the watchdog fired"
    assert exits == [1]
    assert worker.shutdowns == 1, "the normal shutdown was started first"


def test_a_second_signal_does_not_arm_a_second_watchdog() -> None:
    exits: list[int] = []
    worker = bounded_stop_worker(StuckWorker, 0.05, exits.append)()

    worker._schedule_shutdown(signal.SIGTERM)
    worker._schedule_shutdown(signal.SIGINT)
    time.sleep(0.3)

    assert exits == [1]
