"""LocalKafka against a real JVM: the lifecycle runs through the CLI, as a developer would run it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from smsdispatch.cli import main
from smsdispatch.tools.localkafka import READY_TOPIC, LocalKafka, LocalKafkaError
from smsdispatch.tools.testing.kafka import TEST_BROKER_ENV, free_port_pair, free_ports


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if text in cmdline and state != "Z":
            pids.append(int(proc.name))
    return pids


@pytest.mark.kafka
@pytest.mark.slow
def test_cli_starts_a_broker_once_reports_it_and_stops_it_leaving_no_java_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port, data_dir = free_port_pair(), tmp_path / "kafka"
    where = ["--port", str(port), "--data-dir", str(data_dir)]
    try:
        assert main(["kafka", "start", *where]) == 0
        started = capsys.readouterr().out
        assert f"started on 127.0.0.1:{port}" in started
        assert f"Log: {data_dir / 'kafka.log'}" in started
        assert "Kafka Server started" in (data_dir / "kafka.log").read_text()

        assert main(["kafka", "start", *where]) == 0
        assert "already running" in capsys.readouterr().out

        assert main(["kafka", "status", *where]) == 0
        assert f"running on 127.0.0.1:{port}" in capsys.readouterr().out
        assert _processes_mentioning(str(data_dir))
    finally:
        assert main(["kafka", "stop", *where]) == 0
    assert "stopped" in capsys.readouterr().out

    assert _processes_mentioning(str(data_dir)) == []
    assert not (data_dir / "kafka.pid").exists()
    assert main(["kafka", "status", *where]) == 1
    assert "not running" in capsys.readouterr().out


@pytest.mark.kafka
@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed (apt-get install kcat)")
@pytest.mark.skipif(bool(os.environ.get(TEST_BROKER_ENV)), reason="the ready topic exists only on LocalKafka")
def test_kcat_lists_the_local_broker_and_its_ready_topic(kafka_bootstrap: str) -> None:
    listing = subprocess.run(
        ["kcat", "-b", kafka_bootstrap, "-L"], capture_output=True, text=True, timeout=60, check=True
    ).stdout

    assert f"broker 1 at {kafka_bootstrap}" in listing
    assert f'topic "{READY_TOPIC}" with 1 partitions' in listing


def test_start_refuses_a_port_another_process_listens_on(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        broker = LocalKafka(port, tmp_path / "kafka", controller_port=free_ports(1)[0])

        with pytest.raises(LocalKafkaError, match=rf"127\.0\.0\.1:{port} is already in use by another process"):
            broker.start()

    assert not (tmp_path / "kafka").exists()


def test_status_ignores_a_stale_pid_file_whose_process_is_not_this_broker(tmp_path: Path) -> None:
    broker = LocalKafka(9, tmp_path, controller_port=10)  # nothing is started: ports never bound
    broker.pid_file.write_text(f"{os.getpid()}\n")  # an alive process, but not a Kafka of this data dir

    status = broker.status()

    assert (status.running, status.answering, status.pid) == (False, False, None)
    assert broker.stop() is False
    assert not broker.pid_file.exists()
