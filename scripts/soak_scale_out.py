"""Run the join/leave/SIGTERM/SIGKILL scenario of tests/integration/test_scale_out.py again and again, each run on a
fresh broker, and print what each run counted: requests without an SMS, SMS sent twice, outcomes answered twice,
requests without a row in the dispatch log, and offset gaps (records a worker's consumer did not deliver, which
the continuity guard had to read again) per worker. Not part of CI.

    .venv/bin/python scripts/soak_scale_out.py --runs 20

Each run is one pytest process (so one fresh session broker) running that test; about a minute each.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

MODULE = "tests/integration/test_scale_out.py"
TEST = f"{MODULE}::test_workers_joining_leaving_and_killed_lose_nothing_and_send_nothing_twice"
ROOT = Path(__file__).resolve().parent.parent

SMS = re.compile(r"SMS: (\d+) requests never sent, (\d+) sent twice")
OUTCOMES = re.compile(r"(\d+) outcome records for (\d+) requests; (\d+) duplicated")
GAPS = re.compile(r"offset gaps filled, by worker: (\{.*\})")
LOGGED = re.compile(r"dispatch log: (\d+) requests without a row")


def run_once() -> tuple[bool, str, float]:
    began = time.monotonic()
    done = subprocess.run(  # noqa: S603 - our own interpreter and test
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", TEST],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    return done.returncode == 0, done.stdout + done.stderr, time.monotonic() - began


def summary(output: str) -> str:
    sms, outcomes, gaps, logged = (
        SMS.search(output),
        OUTCOMES.search(output),
        GAPS.search(output),
        LOGGED.search(output),
    )
    parts = []
    if sms:
        parts.append(f"never sent {sms[1]}, sent twice {sms[2]}")
    if outcomes:
        parts.append(f"{outcomes[1]} outcome records for {outcomes[2]} requests, {outcomes[3]} answered twice")
    if logged:
        parts.append(f"{logged[1]} without a dispatch-log row")
    if gaps:
        parts.append(f"gaps by worker {gaps[1]}")
    return "; ".join(parts) or "no counts printed (the test failed before them)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    failed = 0
    for number in range(1, args.runs + 1):
        passed, output, seconds = run_once()
        failed += not passed
        print(f"run {number:2d}: {'passed' if passed else 'FAILED'} in {seconds:.0f} s: {summary(output)}", flush=True)
        if not passed:
            print("    " + "\n    ".join(output.strip().splitlines()[-15:]), flush=True)
    print(f"{args.runs - failed} of {args.runs} runs passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
