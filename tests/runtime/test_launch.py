"""The worker process around Faust's Worker: a stop exits within its bound, however stuck the shutdown is, what
survived startup is frozen out of the garbage collector's passes, and its loops are uvloop's."""

from __future__ import annotations

import asyncio
import gc
import signal
import threading
import time
from typing import Any

import pytest

from smsdispatch.runtime.launch import bounded_stop_worker, use_uvloop


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


class StartingWorker(StuckWorker):
    """Faust's Worker as far as startup goes: ``on_startup_finished`` runs once the app is fully started."""

    def __init__(self) -> None:
        super().__init__()
        self.started = False

    async def on_startup_finished(self) -> None:
        self.started = True


def test_what_is_alive_once_the_worker_has_started_is_kept_out_of_later_collections() -> None:
    long_lived = [object() for _ in range(1000)]
    worker = bounded_stop_worker(StartingWorker, 5.0)()
    gc.unfreeze()
    try:
        asyncio.run(worker.on_startup_finished())

        assert worker.started
        assert gc.get_freeze_count() >= len(long_lived)
    finally:
        gc.unfreeze()


def test_loops_made_after_use_uvloop_are_uvloops_when_it_is_installed() -> None:
    uvloop = pytest.importorskip("uvloop", reason="uvloop has no build for this platform")
    try:
        assert use_uvloop() is True
        loop = asyncio.new_event_loop()  # as Faust's worker and its consumer thread make theirs
        try:
            assert isinstance(loop, uvloop.Loop)
        finally:
            loop.close()
    finally:
        asyncio.set_event_loop_policy(None)
