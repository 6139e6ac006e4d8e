"""Finding Java (to run the broker) and Maven (to fetch its jars once)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from smsdispatch.tools.localkafka._errors import LocalKafkaError, MissingToolError

MIN_JAVA_MAJOR = 17

JAVA_HINT = "install Java 17 or newer (on Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
MAVEN_HINT = "install Maven (on Debian: apt-get install maven)"

_JAVA_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


def parse_java_major(version_output: str) -> int | None:
    """The major version in ``java -version`` output: ``"17.0.15"`` -> 17, the old ``"1.8.0_392"`` -> 8."""
    match = _JAVA_VERSION.search(version_output)
    if match is None:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2) is not None:
        return int(match.group(2))
    return major


def find_java() -> Path:
    """The ``java`` to run Kafka with (``$JAVA_HOME/bin/java``, else the one on PATH), checked to be 17+."""
    java_home = os.environ.get("JAVA_HOME")
    home_java = Path(java_home, "bin", "java") if java_home else None
    if home_java is not None and home_java.is_file():
        java = str(home_java)
    else:
        found = shutil.which("java")
        if found is None:
            raise MissingToolError(f"Java was not found, and the local Kafka broker needs it: {JAVA_HINT}.")
        java = found
    major = _java_major(java)
    if major is None or major < MIN_JAVA_MAJOR:
        found_version = "an unknown version" if major is None else f"Java {major}"
        raise MissingToolError(f"{java} is {found_version}, but Kafka 4 needs Java 17 or newer: {JAVA_HINT}.")
    return Path(java)


def find_maven() -> Path:
    """The ``mvn`` that fetches the broker's jars (needed only until they are cached)."""
    found = shutil.which("mvn")
    if found is None:
        raise MissingToolError(
            f"Maven was not found, and it is needed once to fetch the Kafka broker's jars: {MAVEN_HINT}."
        )
    return Path(found)


def _java_major(java: str) -> int | None:
    try:
        completed = subprocess.run(  # noqa: S603 - a resolved path to java, fixed arguments
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalKafkaError(f"Could not run {java} -version ({exc}): {JAVA_HINT}.") from exc
    # java prints its version on stderr; some builds use stdout.
    return parse_java_major(completed.stderr + completed.stdout)
