"""Measure how long `smsdispatch kafka start` takes: cold (empty jar cache and empty Maven repository, so
Maven downloads everything), warm on a fresh data dir (storage is formatted), and warm on an existing one.

    .venv/bin/python scripts/kafka_start_times.py [--skip-cold]

Runs the real CLI on a free port with temporary directories; touches neither ~/.m2 nor the real jar cache.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from smsdispatch.tools.testing.kafka import free_port_pair


def _kafka(action: str, port: int, data_dir: Path, env: dict[str, str]) -> float:
    command = [sys.executable, "-m", "smsdispatch", "kafka", action, "--port", str(port), "--data-dir", str(data_dir)]
    began = time.monotonic()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)  # noqa: S603
    return time.monotonic() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-cold", action="store_true", help="only measure warm starts (no download)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="kafka-start-times-"))
    env = dict(os.environ)
    if not args.skip_cold:
        env["SMSDISPATCH_KAFKA_HOME"] = str(scratch / "jar-cache")
        env["MAVEN_OPTS"] = f"{env.get('MAVEN_OPTS', '')} -Dmaven.repo.local={scratch / 'm2'}".strip()
    port = free_port_pair()
    data_dir = scratch / "data"
    try:
        first = _kafka("start", port, data_dir, env)
        stop = _kafka("stop", port, data_dir, env)
        shutil.rmtree(data_dir)
        fresh = _kafka("start", port, data_dir, env)
        _kafka("stop", port, data_dir, env)
        existing = _kafka("start", port, data_dir, env)
        _kafka("stop", port, data_dir, env)
    finally:
        subprocess.run(  # noqa: S603
            [sys.executable, "-m", "smsdispatch", "kafka", "stop", "--port", str(port), "--data-dir", str(data_dir)],
            env=env,
            check=False,
            capture_output=True,
        )
        shutil.rmtree(scratch, ignore_errors=True)
    label = "cold start (Maven fetch + format + start)" if not args.skip_cold else "first start (format + start)"
    print(f"{label:48s} {first:6.1f} s")
    print(f"{'stop':48s} {stop:6.1f} s")
    print(f"{'warm start, fresh data dir (format + start)':48s} {fresh:6.1f} s")
    print(f"{'warm start, existing data dir':48s} {existing:6.1f} s")
    print(f"(load average now: {' '.join(f'{x:.1f}' for x in os.getloadavg())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
