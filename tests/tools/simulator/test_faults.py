"""Injected and random create failures: what the client sees, and whether the message was accepted."""

from __future__ import annotations

from collections import Counter
from typing import Any

import aiohttp
import pytest

from smsdispatch.tools.simulator import RunningSimulator, running_simulator

from .conftest import LIVE_AUTH, RECIPIENT, SENDER, basic, make_config, messages_url

FORM = {"To": RECIPIENT, "From": SENDER, "Body": "hello"}


async def create(
    http: aiohttp.ClientSession, simulator: RunningSimulator, headers: dict[str, str] = LIVE_AUTH
) -> tuple[int, Any]:
    async with http.post(messages_url(simulator.base_url), data=FORM, headers=headers) as response:
        return response.status, await response.json()


async def inject(http: aiohttp.ClientSession, simulator: RunningSimulator, payload: Any) -> tuple[int, Any]:
    async with http.post(f"{simulator.base_url}/_sim/faults", json=payload) as response:
        return response.status, await response.json()


@pytest.mark.parametrize(
    ("mode", "status", "code", "accepted"),
    [
        ("rate_limit", 429, 20429, 0),
        ("error_500_before_accept", 500, 20500, 0),
        ("error_500_after_accept", 500, 20500, 1),
    ],
)
@pytest.mark.asyncio
async def test_injected_fault_answers_the_next_create(
    simulator: RunningSimulator, http: aiohttp.ClientSession, mode: str, status: int, code: int, accepted: int
) -> None:
    await inject(http, simulator, {"mode": mode, "count": 1})

    got_status, body = await create(http, simulator)

    assert (got_status, body["code"], body["status"]) == (status, code, status)
    assert len(simulator.accepted_messages()) == accepted


@pytest.mark.asyncio
async def test_drop_after_accept_cuts_the_connection_but_keeps_the_message(
    simulator: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    simulator.inject_faults("drop_after_accept", 1)

    with pytest.raises(aiohttp.ClientError):
        await create(http, simulator)

    assert [m["body"] for m in simulator.accepted_messages()] == ["hello"]


@pytest.mark.asyncio
async def test_fault_count_covers_exactly_that_many_creates(
    simulator: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    simulator.inject_faults("rate_limit", 2)

    statuses = [(await create(http, simulator))[0] for _ in range(3)]

    assert statuses == [429, 429, 201]


@pytest.mark.asyncio
async def test_deleting_faults_clears_pending_ones(simulator: RunningSimulator, http: aiohttp.ClientSession) -> None:
    await inject(http, simulator, {"mode": "error_500_before_accept", "count": 5})

    async with http.delete(f"{simulator.base_url}/_sim/faults") as response:
        cleared = await response.json()

    assert cleared == {"pending": 0}
    assert (await create(http, simulator))[0] == 201


@pytest.mark.asyncio
async def test_a_refused_login_does_not_consume_an_injected_fault(
    simulator: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    simulator.inject_faults("rate_limit", 1)

    unauthorised, _ = await create(http, simulator, headers=basic("AC" + "9" * 32, "nope"))
    faulted, _ = await create(http, simulator)

    assert (unauthorised, faulted) == (401, 429)


@pytest.mark.parametrize(
    "payload",
    [{"mode": "explode", "count": 1}, {"mode": "rate_limit", "count": 0}, {"mode": "rate_limit", "count": "2"}, [1]],
)
@pytest.mark.asyncio
async def test_fault_endpoint_rejects_bad_requests(
    simulator: RunningSimulator, http: aiohttp.ClientSession, payload: Any
) -> None:
    status, body = await inject(http, simulator, payload)

    assert status == 400
    assert "mode" in body["error"]


def test_inject_faults_rejects_an_unknown_mode() -> None:
    from smsdispatch.tools.simulator.app import Simulator
    from smsdispatch.tools.simulator.server import RunningSimulator as Handle

    handle = Handle(Simulator(make_config()), "127.0.0.1", 1)

    with pytest.raises(ValueError, match="unknown fault mode"):
        handle.inject_faults("explode", 1)


@pytest.mark.asyncio
async def test_fail_rate_one_fails_every_create_with_all_three_kinds(http: aiohttp.ClientSession) -> None:
    outcomes: Counter[str] = Counter()
    async with running_simulator(make_config(fail_rate=1.0, seed=3)) as simulator:
        for _ in range(30):
            try:
                status, _ = await create(http, simulator)
                outcomes[str(status)] += 1
            except aiohttp.ClientError:
                outcomes["dropped"] += 1
        accepted = len(simulator.accepted_messages())

    assert set(outcomes) == {"500", "dropped"}
    assert 0 < accepted < 30  # after-accept failures stored their message, before-accept ones did not
    assert accepted >= outcomes["dropped"]


@pytest.mark.asyncio
async def test_same_seed_gives_the_same_failures_and_sids(http: aiohttp.ClientSession) -> None:
    async def run() -> list[Any]:
        seen: list[Any] = []
        async with running_simulator(make_config(fail_rate=0.5, seed=11)) as simulator:
            for _ in range(10):
                try:
                    status, body = await create(http, simulator)
                    seen.append(body.get("sid", status))
                except aiohttp.ClientError:
                    seen.append("dropped")
        return seen

    assert await run() == await run()
