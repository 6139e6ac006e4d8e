"""Fetching the broker's jars from Maven Central once, into a cache outside the work tree.

The cache holds ``pom.xml`` (copied from this package), ``mvn.log`` and ``libs/``. Maven copies into
``libs.partial/``, which is renamed to ``libs/`` only after a marker is written into it, so an interrupted
fetch is never mistaken for a finished one and is simply redone. Later starts never call Maven: they are
offline.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from smsdispatch.tools.localkafka._cds import forget_archives
from smsdispatch.tools.localkafka._errors import LocalKafkaError
from smsdispatch.tools.localkafka._tools import find_maven

KAFKA_VERSION = "4.1.1"
KAFKA_HOME_ENV = "SMSDISPATCH_KAFKA_HOME"

_MARKER = ".complete"
# A cold fetch is ~50 MB; allow for a slow mirror rather than failing a first run.
_MAVEN_TIMEOUT_SECONDS = 30 * 60


def packaged_text(name: str) -> str:
    """A file shipped with this package (``pom.xml``, ``log4j2.properties``)."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def kafka_home() -> Path:
    """Where the jars are cached: ``$SMSDISPATCH_KAFKA_HOME``, else ``$XDG_CACHE_HOME/smsdispatch/kafka-V``."""
    override = os.environ.get(KAFKA_HOME_ENV)
    if override:
        return Path(override).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "smsdispatch" / f"kafka-{KAFKA_VERSION}"


def jars_fingerprint() -> str:
    """Identifies what the cached jars were fetched for: a changed pom or version means a new fetch."""
    digest = hashlib.sha256(packaged_text("pom.xml").encode())
    digest.update(KAFKA_VERSION.encode())
    return digest.hexdigest()


def cached_libs(home: Path | None = None) -> Path | None:
    """The complete ``libs/`` directory in the cache, or None when it has to be fetched."""
    libs = (home or kafka_home()) / "libs"
    marker = libs / _MARKER
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == jars_fingerprint():
        return libs
    return None


def ensure_jars(home: Path | None = None, progress: Callable[[str], None] | None = None) -> Path:
    """Return the directory of the broker's jars, fetching them with Maven first if they are not cached."""
    home = home or kafka_home()
    libs = cached_libs(home)
    if libs is not None:
        return libs
    mvn = find_maven()
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LocalKafkaError(f"Cannot create the Kafka jar cache {home}: {exc.strerror}.") from exc
    # Two processes (say, two test sessions) may fetch at once: the second waits, then finds the jars.
    with _exclusive_lock(home / ".lock"):
        libs = cached_libs(home)
        if libs is not None:
            return libs
        if progress is not None:
            progress(f"Fetching the Apache Kafka {KAFKA_VERSION} jars with Maven, once, into {home}.")
        return _fetch(mvn, home)


def _fetch(mvn: Path, home: Path) -> Path:
    libs, partial, log = home / "libs", home / "libs.partial", home / "mvn.log"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(libs, ignore_errors=True)
    forget_archives(home)  # class archives of the old jars would only be ignored, with a warning each start
    pom = home / "pom.xml"
    pom.write_text(packaged_text("pom.xml"), encoding="utf-8")
    command = [
        str(mvn),
        "-q",
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={partial}",
        f"-Dkafka.version={KAFKA_VERSION}",
    ]
    with log.open("w", encoding="utf-8") as log_file:
        try:
            completed = subprocess.run(  # noqa: S603 - fixed arguments, no shell
                command,
                cwd=home,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                timeout=_MAVEN_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise LocalKafkaError(f"Maven did not finish fetching the Kafka jars in time; see {log}.") from exc
    if completed.returncode != 0:
        raise LocalKafkaError(
            f"Maven could not fetch the Kafka {KAFKA_VERSION} jars (exit code {completed.returncode}); see {log}."
        )
    if not any(partial.glob(f"kafka_2.13-{KAFKA_VERSION}.jar")):
        raise LocalKafkaError(f"Maven finished but kafka_2.13-{KAFKA_VERSION}.jar is missing; see {log}.")
    (partial / _MARKER).write_text(jars_fingerprint() + "\n", encoding="utf-8")
    os.replace(partial, libs)
    return libs


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
