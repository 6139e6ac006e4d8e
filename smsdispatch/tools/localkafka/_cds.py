"""Class-data sharing (AppCDS) for the broker's JVM: it halves start-up on a busy 2-core machine.

The first broker run dumps the classes it loaded into ``kafka-classes.jsa.dump`` as it exits; the next start
checks that dump with a trial JVM and only then promotes it to ``kafka-classes.jsa``, which every later JVM
maps. The check matters: a dump is written while its JVM exits, so one found later may be cut short (the JVM
was killed) or still being written, and the JVM *crashes* on a truncated archive rather than ignoring it.
A valid archive that no longer fits (another JDK, other jars) is ignored by the JVM on its own.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ARCHIVE_NAME = "kafka-classes.jsa"
_PENDING_SUFFIX = ".dump"


def class_data_options(java: Path, libs: Path, cache: Path, *, dump: bool) -> list[str]:
    """The JVM options that map the archive in ``cache``, or (when ``dump``) that create it at exit."""
    archive = cache / ARCHIVE_NAME
    pending = cache / (ARCHIVE_NAME + _PENDING_SUFFIX)
    if not archive.is_file() and pending.is_file():
        _promote_if_valid(java, libs, pending, archive)
    if archive.is_file():
        return [f"-XX:SharedArchiveFile={archive}"]
    return [f"-XX:ArchiveClassesAtExit={pending}"] if dump else []


def forget_archives(cache: Path) -> None:
    """Drop the archives of ``cache``: called when its jars are fetched anew."""
    for name in (ARCHIVE_NAME, ARCHIVE_NAME + _PENDING_SUFFIX):
        (cache / name).unlink(missing_ok=True)


def _promote_if_valid(java: Path, libs: Path, pending: Path, archive: Path) -> None:
    trial = [str(java), "-Xshare:on", f"-XX:SharedArchiveFile={pending}", "-XX:ErrorFile=/dev/null"]
    trial += ["-cp", f"{libs}/*", "-version"]
    try:
        completed = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            trial, cwd=pending.parent, capture_output=True, timeout=60, check=False
        )
        valid = completed.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        valid = False
    try:
        if valid:
            os.replace(pending, archive)
        else:
            pending.unlink(missing_ok=True)
    except OSError:
        pass  # another start promoted or removed it first; either way the next check sees the outcome
