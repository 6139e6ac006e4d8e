"""A local Twilio (REST API v2010 messaging) and MSG91 (Flow API) on 127.0.0.1, for tests, benchmarks and the demo.

It speaks what docs/reference/twilio.md describes — form bodies, Basic auth (account token or API key), 201 with
Twilio's message JSON, Twilio's error JSON, test credentials with the magic numbers, message lifecycles with
signed status callbacks — and adds knobs real Twilio lacks: latency, a concurrency limit, random or injected
failures, and ``GET /_sim/messages``.

Queues, validity and recipients:

- ``ValidityPeriod`` on create (whole seconds 1-36000, default 36000; anything else is 400/21624). A live message
  still ``queued``/``accepted`` when it runs out ends ``failed`` with error_code 30001, in fetch, list,
  ``/_sim/messages`` and its signed status callback.
- ``SimulatorConfig.sender_mps`` (CLI ``--sender-mps N``): each sender releases queued messages (queued -> sent)
  at most N segments per second, so messages can stay queued; default None, unlimited (the old lifecycle). A
  number whose queue already holds 10 hours refuses creates with 21611.
- ``GET /_sim/messages`` entries also carry ``validity_period`` (seconds) and ``created_at`` (RFC 3339 UTC with
  microseconds).
- ``POST /_sim/inbound`` ``{"account_sid", "from" (the recipient), "to" (the account's sender or MG… service),
  "body", "url" (optional)}`` plays the recipient: STOP/STOPALL/UNSUBSCRIBE/CANCEL/END/QUIT/OPTOUT/REVOKE opt
  out of the account's messages (live creates to them get 400/21610), START/YES/UNSTOP opt back in; then Twilio's
  signed incoming-message webhook (with ``OptOutType`` STOP/START/HELP for keywords) is POSTed to ``url``. It
  answers ``{"delivered": bool, "status": int | null, "opted_out": bool}`` once the webhook was tried.
  In-process: ``await sim.reply_from_recipient(account_sid, recipient, to, body, url)``.

MSG91 (msg91.py): ``SimulatorConfig.msg91_accounts`` (:class:`Msg91Account`: authkey and Flow template ids)
answer ``POST /api/v5/flow/`` as MSG91 does (errors on HTTP 200 with ``type: error``; magic mobile endings for
each failure), and each accepted message gets a JSON delivery report POSTed to ``msg91_report_url``. ``GET
/_sim/msg91/messages`` (in-process: ``sim.msg91_messages()``) lists them, never with an authkey.

    config = SimulatorConfig(accounts=[SimAccount(sid=..., token=..., senders=["+15005550006"])])
    async with running_simulator(config) as sim:
        ...  # point a client at sim.base_url
"""

from smsdispatch.tools.simulator.app import build_app
from smsdispatch.tools.simulator.config import (
    Msg91Account,
    SimAccount,
    SimulatorConfig,
    random_account_sid,
    random_api_key_sid,
    random_sid,
    random_token,
)
from smsdispatch.tools.simulator.faults import FAULT_MODES, FaultMode
from smsdispatch.tools.simulator.server import RunningSimulator, running_simulator, serve_forever

__all__ = [
    "FAULT_MODES",
    "FaultMode",
    "Msg91Account",
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
