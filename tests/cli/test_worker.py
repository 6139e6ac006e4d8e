"""A data dir has one worker. (A worker told to stop exits within its bound: tests/runtime/test_launch.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from smsdispatch.cli._common import CliError
from smsdispatch.cli.worker import lock_data_dir


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
