"""A PostgreSQL server for a test session: the one ``SMSDISPATCH_TEST_DATABASE_URL`` names, or a private one.

The private server is a throw-away cluster made with the machine's own ``initdb`` and ``pg_ctl`` (Debian:
the highest ``/usr/lib/postgresql/<N>/bin``), on a free 127.0.0.1 port, trust login, one empty database.
PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` OS user. Tests may ``stop()`` and
``start()`` it to stage an outage; a server named by the environment cannot be, and says why::

    with postgres_for_tests() as server:
        server.url          # postgresql+asyncpg://postgres@127.0.0.1:PORT/smsdispatch_test
        if server.restartable:
            server.stop(); server.start()
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn, Protocol

from smsdispatch.tools.testing.containers import postgres_container, use_containers
from smsdispatch.tools.testing.kafka import free_ports

TEST_DATABASE_URL_ENV = "SMSDISPATCH_TEST_DATABASE_URL"
DATABASE_NAME = "smsdispatch_test"
_SUPERUSER = "postgres"
_COMMAND_TIMEOUT = 120
# Trust login on 127.0.0.1 only; --no-sync because the cluster is thrown away after the run.
_INITDB_OPTIONS = ("-U", _SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be made for the tests; the message says what to install or set."""


class PostgresNotRestartable(RuntimeError):
    """``stop()``/``start()`` on a server this test run does not own."""


class PostgresServer(Protocol):
    """What the ``postgres_server`` fixture gives a test."""

    @property
    def url(self) -> str: ...

    @property
    def restartable(self) -> bool: ...

    def stop(self) -> None: ...

    def start(self) -> None: ...


class ExternalPostgres:
    """A server named by ``SMSDISPATCH_TEST_DATABASE_URL``: used as is, never stopped.

    ``stop()``/``start()`` call ``refuse(reason)``, which raises PostgresNotRestartable unless the caller
    passes something else (the test suite passes ``pytest.skip``, so an outage test skips with the reason).
    """

    restartable = False

    def __init__(self, url: str, refuse: Callable[[str], NoReturn] | None = None) -> None:
        self.url = url
        self._refuse = refuse or _raise_not_restartable

    def __repr__(self) -> str:
        return "ExternalPostgres(from $SMSDISPATCH_TEST_DATABASE_URL)"  # the URL may hold a password

    def stop(self) -> None:
        self._refuse(f"{TEST_DATABASE_URL_ENV} names a server this test run does not own: it cannot be stopped")

    def start(self) -> None:
        self._refuse(f"{TEST_DATABASE_URL_ENV} names a server this test run does not own: it cannot be started")


def _raise_not_restartable(reason: str) -> NoReturn:
    raise PostgresNotRestartable(reason + ".")


def find_bin_dir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: Debian's highest version, else the one on PATH."""
    debian = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    numbered = [d for d in debian if d.parent.name.isdigit()]
    if numbered:
        return max(numbered, key=lambda d: int(d.parent.name))
    on_path = shutil.which("initdb")
    if on_path is not None:
        return Path(on_path).resolve().parent
    raise PostgresUnavailable(
        "PostgreSQL's server programs (initdb, pg_ctl) were not found: install PostgreSQL "
        f"(on Debian: apt-get install postgresql) or set {TEST_DATABASE_URL_ENV}."
    )


class PrivatePostgres:
    """A PostgreSQL cluster in ``base_dir`` that this process created and may stop and start."""

    restartable = True

    def __init__(self, base_dir: Path, port: int, bin_dir: Path | None = None) -> None:
        self.base_dir = base_dir
        self.port = port
        self.bin_dir = bin_dir or find_bin_dir()
        self.run_as = _SUPERUSER if os.geteuid() == 0 else None

    def __repr__(self) -> str:
        return f"PrivatePostgres(port={self.port}, base_dir={str(self.base_dir)!r})"

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{_SUPERUSER}@127.0.0.1:{self.port}/{DATABASE_NAME}"

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "postgres.log"

    def create(self) -> None:
        """initdb, configure, start, and create the empty test database."""
        if self.run_as is not None:
            try:
                account = pwd.getpwnam(self.run_as)
            except KeyError:
                raise PostgresUnavailable(
                    "PostgreSQL refuses to run as root and there is no 'postgres' user to run it as: "
                    f"install PostgreSQL (apt-get install postgresql) or set {TEST_DATABASE_URL_ENV}."
                ) from None
            os.chown(self.base_dir, account.pw_uid, account.pw_gid)
        self._run_server_tool("initdb", "-D", str(self.data_dir), *_INITDB_OPTIONS)
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(
                f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.base_dir}'\n"
                # A throw-away test cluster: durability only slows the tests down.
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            )
        self.start()
        createdb = [str(self.bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", _SUPERUSER]
        self._run("createdb", [*createdb, DATABASE_NAME])

    def start(self) -> None:
        self._run_server_tool("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60", "start")

    def stop(self) -> None:
        # "fast" rolls back open transactions and closes connections, as a crash or failover would.
        self._run_server_tool("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", "stop")

    def is_running(self) -> bool:
        status = subprocess.run(  # noqa: S603 - a resolved server tool, fixed arguments
            self._as_owner(self.bin_dir / "pg_ctl", "-D", str(self.data_dir), "status"),
            cwd=self.base_dir,
            capture_output=True,
            check=False,
            timeout=_COMMAND_TIMEOUT,
        )
        return status.returncode == 0

    def _run_server_tool(self, tool: str, *args: str) -> None:
        self._run(tool, self._as_owner(self.bin_dir / tool, *args))

    def _as_owner(self, program: Path, *args: str) -> list[str]:
        prefix = [] if self.run_as is None else ["runuser", "-u", self.run_as, "--"]
        return [*prefix, str(program), *args]

    def _run(self, name: str, argv: list[str]) -> None:
        # cwd: the postgres user may not be allowed into the caller's directory (say, /root).
        completed = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            argv, cwd=self.base_dir, capture_output=True, text=True, check=False, timeout=_COMMAND_TIMEOUT
        )
        if completed.returncode != 0:
            output = (completed.stderr or completed.stdout).strip().splitlines()
            detail = _mask_passwords(output[-1]) if output else "no output"
            raise PostgresUnavailable(f"{name} failed (exit code {completed.returncode}): {detail}")


def _mask_passwords(text: str) -> str:
    return re.sub(r"(://[^:/@\s]+:)[^@\s]+@", r"\1***@", text)


@contextmanager
def postgres_for_tests(
    env: Mapping[str, str] | None = None, not_restartable: Callable[[str], NoReturn] | None = None
) -> Iterator[PostgresServer]:
    """Yield a PostgreSQL server for the ``with`` block; a private one is removed afterwards.

    ``not_restartable(reason)`` is what ``stop()``/``start()`` of an external server call (default: raise).
    """
    external = (os.environ if env is None else env).get(TEST_DATABASE_URL_ENV, "").strip()
    if external:
        yield ExternalPostgres(external, not_restartable)
        return
    if use_containers(env):
        with postgres_container() as url:
            # A container's server is not ours to stop and start: outage tests skip, as with an external one.
            yield ExternalPostgres(url, not_restartable)
        return
    base_dir = Path(tempfile.mkdtemp(prefix="smsdispatch-test-postgres-"))
    server = PrivatePostgres(base_dir, free_ports(1)[0])
    try:
        server.create()
        yield server
    finally:
        if server.is_running():
            server.stop()
        shutil.rmtree(base_dir, ignore_errors=True)
