from __future__ import annotations

import asyncpg
import pytest

from smsdispatch.tools.testing.postgres import (
    ExternalPostgres,
    PostgresNotRestartable,
    PostgresServer,
    postgres_for_tests,
)

EXTERNAL_URL = "postgresql+asyncpg://app:s3cret-pw@db.internal:5432/tests"


def test_server_named_by_env_is_used_as_is_and_cannot_be_stopped() -> None:
    with postgres_for_tests({"SMSDISPATCH_TEST_DATABASE_URL": EXTERNAL_URL}) as server:
        assert server.url == EXTERNAL_URL
        assert server.restartable is False
        with pytest.raises(PostgresNotRestartable, match="does not own: it cannot be stopped"):
            server.stop()
        with pytest.raises(PostgresNotRestartable, match="cannot be started"):
            server.start()


def test_external_server_hands_the_reason_to_the_given_refusal() -> None:
    reasons: list[str] = []

    def refuse(reason: str) -> None:
        reasons.append(reason)
        raise RuntimeError("refused")

    server = ExternalPostgres(EXTERNAL_URL, refuse)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="refused"):
        server.stop()

    assert reasons == ["SMSDISPATCH_TEST_DATABASE_URL names a server this test run does not own: it cannot be stopped"]


def test_external_server_repr_never_shows_the_password() -> None:
    assert "s3cret-pw" not in repr(ExternalPostgres(EXTERNAL_URL))


async def _current_database(url: str) -> str:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=10)
    try:
        return str(await connection.fetchval("SELECT current_database()"))
    finally:
        await connection.close()


@pytest.mark.postgres
@pytest.mark.asyncio
async def test_session_server_can_be_stopped_and_started_again_on_the_same_url(
    postgres_server: PostgresServer,
) -> None:
    assert await _current_database(postgres_server.url) == "smsdispatch_test"

    postgres_server.stop()  # skips when the server comes from SMSDISPATCH_TEST_DATABASE_URL
    try:
        with pytest.raises(ConnectionRefusedError):
            await _current_database(postgres_server.url)
    finally:
        postgres_server.start()

    assert await _current_database(postgres_server.url) == "smsdispatch_test"
