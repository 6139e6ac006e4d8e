"""``smsdispatch simulator``: flag parsing, one-sentence errors, no secrets in --help, and a real start/stop.

(The verb's module is smsdispatch/cli/simulator.py; its tests live here with the rest of the simulator's.)
"""

from __future__ import annotations

import argparse
import base64
import json
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from smsdispatch.cli import main
from smsdispatch.cli.simulator import add_arguments, build_config

from .conftest import LIVE_SID, LIVE_TOKEN, MAIN_KEY, MAIN_KEY_SECRET, SENDER, SERVICE, TEST_SID, TEST_TOKEN


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_flags_build_the_config() -> None:
    config = build_config(
        parse(
            *("--account", f"{LIVE_SID}:{LIVE_TOKEN}:{SENDER},{SERVICE}:trial,suspended"),
            *("--api-key", f"{LIVE_SID}:{MAIN_KEY}:{MAIN_KEY_SECRET}:standard"),
            *("--test-account", f"{TEST_SID}:{TEST_TOKEN}"),
            *("--latency-ms", "5", "--concurrency-limit", "3", "--fail-rate", "0.1"),
            *("--undelivered-rate", "0.2", "--status-delay-ms", "50", "--seed", "9"),
            *("--sender-mps", "1.5"),
        )
    )

    account = config.accounts[0]
    assert (account.sid, account.senders, account.account_type, account.status) == (
        LIVE_SID,
        [SENDER, SERVICE],
        "Trial",
        "suspended",
    )
    assert account.token.get_secret_value() == LIVE_TOKEN
    assert account.api_keys[MAIN_KEY].get_secret_value() == MAIN_KEY_SECRET
    assert account.standard_api_keys == {MAIN_KEY}
    assert config.test_accounts[0].sid == TEST_SID
    assert (config.latency_ms, config.concurrency_limit, config.fail_rate) == (5, 3, 0.1)
    assert (config.undelivered_rate, config.status_delay_ms, config.seed) == (0.2, 50, 9)
    assert config.sender_mps == 1.5


def test_senders_are_unlimited_without_sender_mps() -> None:
    assert build_config(parse("--account", f"{LIVE_SID}:{LIVE_TOKEN}")).sender_mps is None


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ([], "at least one --account"),
        (["--account", "ACnope"], "SID:TOKEN"),
        (["--account", "AC123:tok"], "accounts.0.sid"),
        (["--account", f"{LIVE_SID}:tok:{SENDER}:frozen"], "state 'frozen'"),
        (["--account", f"{LIVE_SID}:tok", "--account", f"{LIVE_SID}:tok2"], "twice"),
        (["--test-account", f"{TEST_SID}"], "--test-account"),
        (["--account", f"{LIVE_SID}:tok", "--api-key", f"{TEST_SID}:{MAIN_KEY}:s"], "no --account defines"),
        (["--account", f"{LIVE_SID}:tok", "--api-key", f"{LIVE_SID}:{MAIN_KEY}"], "--api-key"),
        (["--account", f"{LIVE_SID}:tok", "--fail-rate", "lots"], "--fail-rate must be a number"),
        (["--account", f"{LIVE_SID}:tok", "--fail-rate", "1.5"], "fail_rate"),
        (["--account", f"{LIVE_SID}:tok", "--concurrency-limit", "1.5"], "--concurrency-limit must be an integer"),
        (["--account", f"{LIVE_SID}:tok", "--port", "70000"], "--port"),
        (["--account", f"{LIVE_SID}:tok", "--sender-mps", "fast"], "--sender-mps must be a number"),
        (["--account", f"{LIVE_SID}:tok", "--sender-mps", "0"], "sender_mps"),
    ],
)
def test_bad_flags_exit_2_with_one_sentence_and_no_secret(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    code = main(["simulator", *argv])

    err = capsys.readouterr().err
    assert code == 2
    assert fragment in err
    assert err.count("\n") == 1
    assert err.startswith("smsdispatch simulator: ")
    assert "tok" not in err.replace("TOKEN", "")


def test_help_shows_no_secret_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["simulator", "--help"])

    shown = capsys.readouterr().out
    assert exited.value.code == 0
    assert "--account SID:TOKEN[:FROM,...[:STATE]]" in shown
    assert "--test-account" in shown
    assert "default: 8099" in shown
    assert "default: 127.0.0.1" in shown
    assert "--sender-mps N" in shown
    assert "ValidityPeriod" in shown
    assert "/_sim/inbound" in shown
    assert LIVE_TOKEN not in shown


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_simulator_verb_serves_until_sigterm_then_exits_0() -> None:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smsdispatch",
            "simulator",
            "--port",
            str(port),
            "--account",
            f"{LIVE_SID}:{LIVE_TOKEN}:{SENDER}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/2010-04-01/Accounts/{LIVE_SID}.json",
            headers={"Authorization": "Basic " + base64.b64encode(f"{LIVE_SID}:{LIVE_TOKEN}".encode()).decode()},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (http://127.0.0.1 only)
            account = json.load(response)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)

    assert banner.strip() == f"Twilio simulator listening on http://127.0.0.1:{port}"
    assert account["sid"] == LIVE_SID
    assert process.returncode == 0
    assert "Traceback" not in stderr


def test_port_in_use_is_one_sentence_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        code = main(["simulator", "--port", str(port), "--account", f"{LIVE_SID}:{LIVE_TOKEN}"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"smsdispatch simulator: Cannot listen on 127.0.0.1:{port}")
    assert err.count("\n") == 1
