"""A worker told to stop exits within its bound, however stuck its shutdown is; a data dir has one worker."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from smsdispatch.cli._common import CliError
from smsdispatch.cli.worker import bounded_stop_worker, lock_data_dir


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


def test_a_second_worker_on_the_same_data_dir_is_refused_with_one_sentence_naming_the_first(tmp_path: Path) -> None:
    first = lock_data_dir(tmp_path)
    try:
        with pytest.raises(CliError) as refused:
            lock_data_dir(tmp_path)
    finally:
        first.close()

    message = str(refused.value)
    assert message.startswith(f"--data-dir {tmp_path} is in use by another worker (pid {os.getpid()})")
    assert message.endswith("give each worker its own --data-dir.")


def test_the_data_dir_is_free_again_once_its_worker_is_gone(tmp_path: Path) -> None:
    lock_data_dir(tmp_path).close()

    lock_data_dir(tmp_path).close()
