"""Small process and port helpers for the broker's JVM (Linux ``/proc`` when there is one)."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on ``host:port`` (so the broker can bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def is_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        # The state letter follows the parenthesised command name.
        state = stat.read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def command_line(pid: int) -> list[str] | None:
    """The argv of ``pid``, or None where ``/proc`` cannot tell."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def runs_with_argument(pid: int, argument: str) -> bool:
    """True when ``pid`` is alive and has ``argument`` in its argv, which guards against a recycled pid.
    Without ``/proc`` (macOS) an alive pid is taken at its word."""
    if not is_alive(pid):
        return False
    argv = command_line(pid)
    return argv is None or argument in argv


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def parent_death_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` making the child get SIGTERM when its parent dies (Linux only), so a test session
    killed hard leaves no JVM behind. libc is loaded here, before the fork, not in the child."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def set_parent_death_signal() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return set_parent_death_signal


# The shell starts the command in the background, prints its pid and exits at once: the command is then an
# orphan adopted by init, a true daemon that is nobody's child (no zombie, no Popen left to reap).
_DETACH_SCRIPT = 'log=$1; shift; "$@" </dev/null >>"$log" 2>&1 & echo $!'


def spawn_detached(argv: list[str], log_file: Path, cwd: Path) -> int:
    """Start ``argv`` in a new session with stdout and stderr appended to ``log_file``; return its pid."""
    launcher = subprocess.run(  # noqa: S603 - fixed script, the command is passed as arguments
        ["/bin/sh", "-c", _DETACH_SCRIPT, "sh", str(log_file), *argv],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        start_new_session=True,  # Ctrl-C in the terminal that ran `kafka start` must not reach the broker
        timeout=30,
        check=False,
    )
    pid = launcher.stdout.strip()
    if launcher.returncode != 0 or not pid.isdigit():
        raise OSError(f"could not launch {argv[0]} in the background: {launcher.stderr.strip() or pid}")
    return int(pid)
