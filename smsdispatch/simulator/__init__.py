"""A local Twilio: REST API v2010 messaging on 127.0.0.1, for tests, benchmarks and the demo.

It speaks what docs/reference/twilio.md describes — form bodies, Basic auth (account token or API key), 201 with
Twilio's message JSON, Twilio's error JSON, test credentials with the magic numbers, message lifecycles with
signed status callbacks — and adds knobs real Twilio lacks: latency, a concurrency limit, random or injected
failures, and ``GET /_sim/messages``.

    config = SimulatorConfig(accounts=[SimAccount(sid=..., token=..., senders=["+15005550006"])])
    async with running_simulator(config) as sim:
        ...  # point a client at sim.base_url
"""

from smsdispatch.simulator.app import build_app
from smsdispatch.simulator.config import (
    SimAccount,
    SimulatorConfig,
    random_account_sid,
    random_api_key_sid,
    random_sid,
    random_token,
)
from smsdispatch.simulator.faults import FAULT_MODES, FaultMode
from smsdispatch.simulator.server import RunningSimulator, running_simulator, serve_forever

__all__ = [
    "FAULT_MODES",
    "FaultMode",
    "RunningSimulator",
    "SimAccount",
    "SimulatorConfig",
    "build_app",
    "random_account_sid",
    "random_api_key_sid",
    "random_sid",
    "random_token",
    "running_simulator",
    "serve_forever",
]
