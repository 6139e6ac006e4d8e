"""The aiohttp application: Twilio's REST API v2010 routes, MSG91's Flow API (msg91.py) and the ``/_sim`` test
endpoints.

Every ``/2010-04-01`` request goes through the same gate, in this order: the per-account concurrency limit
(429/20429 beyond it), the configured latency, Basic auth (401/20003), the path's account (see accounts.py),
test-credential and account-state restrictions (403/20008, 403/20403), then the route itself. Faults apply to
creates only, after authentication: rate_limit and 500-before-accept refuse before anything is stored;
500-after-accept and drop-after-accept store the message (it lives on and calls back) and then fail.
A valid live create is then refused 400/21610 when the recipient opted out (inbound.py), and 400/21611 when a
number's queue already holds 10 hours of messages at ``sender_mps`` (queueing.py).
Anything else under the server (other resources, other methods) is Twilio's 404/20404 JSON.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from smsdispatch.contract.segments import segment_info
from smsdispatch.tools.simulator.accounts import AccountBook, Principal
from smsdispatch.tools.simulator.config import SimulatorConfig
from smsdispatch.tools.simulator.errors import TwilioError
from smsdispatch.tools.simulator.faults import FAULT_MODES, FaultPlan, parse_fault_mode
from smsdispatch.tools.simulator.formats import account_resource, message_resource, sim_message_summary
from smsdispatch.tools.simulator.inbound import Inbound
from smsdispatch.tools.simulator.lifecycle import Lifecycle
from smsdispatch.tools.simulator.listing import list_messages
from smsdispatch.tools.simulator.msg91 import Msg91
from smsdispatch.tools.simulator.queueing import SENDER_QUEUE_LIMIT_S
from smsdispatch.tools.simulator.store import Message, MessageStore, monotonic_and_wall
from smsdispatch.tools.simulator.validation import validate_live, validate_test

_JSON = "application/json"
_PREFIX = "/2010-04-01/Accounts"

Handler = Callable[[web.Request, Principal, str], Awaitable[web.StreamResponse]]
RouteHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Simulator:
    """All state of one simulator run; its bound methods are the route handlers."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.book = AccountBook(config)
        self.store = MessageStore()
        self.faults = FaultPlan(config.fail_rate, self.rng)
        tokens = {a.sid: a.token for a in [*config.accounts, *config.test_accounts]}
        self.lifecycle = Lifecycle(config, self.rng, tokens)
        self.inbound = Inbound(self.book, self.rng)
        self.msg91 = Msg91(config, self.rng)
        self._latency_s = config.latency_ms / 1000
        self._limit = config.concurrency_limit
        self._in_flight: dict[str, int] = {}
        _, self.started_wall = monotonic_and_wall()
        # A Messaging Service sends from one of the account's numbers once it has queued the message.
        self._pool_numbers = {
            a.sid: next((s for s in a.senders if not s.startswith("MG")), None) for a in config.accounts
        }

    # -- the gate every API request passes ------------------------------------------------------------

    def api(self, handler: Handler, *, test_credentials_allowed: bool = False) -> RouteHandler:
        async def gated(request: web.Request) -> web.StreamResponse:
            account_sid = request.match_info["account_sid"]
            limit = self._limit
            if limit is not None:
                in_flight = self._in_flight.get(account_sid, 0)
                if in_flight >= limit:
                    if self._latency_s:
                        await asyncio.sleep(self._latency_s)
                    return _error(TwilioError(20429))
                self._in_flight[account_sid] = in_flight + 1
            try:
                if self._latency_s:
                    await asyncio.sleep(self._latency_s)
                principal = self._authorize(request, account_sid, test_credentials_allowed)
                return await handler(request, principal, account_sid)
            except TwilioError as refusal:
                return _error(refusal)
            finally:
                if limit is not None:
                    self._in_flight[account_sid] -= 1

        return gated

    def _authorize(self, request: web.Request, account_sid: str, test_credentials_allowed: bool) -> Principal:
        principal = self.book.authenticate(request.headers.get("Authorization"))
        if principal is None:
            raise TwilioError(20003)
        if principal.account.sid != account_sid:
            if principal.api_key_sid is not None:
                raise TwilioError(20003)
            raise TwilioError(20404, path=request.path)
        if principal.is_test and not test_credentials_allowed:
            raise TwilioError(20008)
        return principal

    # -- Twilio routes ----------------------------------------------------------------------------------

    async def create_message(self, request: web.Request, principal: Principal, account_sid: str) -> web.StreamResponse:
        account = principal.account
        if account.status != "active":
            raise TwilioError(20403, account=account_sid, state=account.status)
        fault = self.faults.next_create_fault(account_sid)
        if fault == "rate_limit":
            raise TwilioError(20429)
        if fault == "error_500_before_accept":
            raise TwilioError(20500)
        form = await request.post()
        fields = {name: value for name, value in form.items() if isinstance(value, str)}
        if principal.is_test:
            draft = validate_test(fields)
        else:
            draft = validate_live(fields, account, self._pool_numbers.get(account_sid))
        now_mono, now_wall = monotonic_and_wall()
        segments = segment_info(draft.body)[0]
        queue = (account_sid, draft.from_number or draft.requested_sender)
        if not principal.is_test:
            if self.inbound.is_opted_out(account_sid, draft.to):
                raise TwilioError(21610)
            # A number refuses what it could not send within 10 hours; a service accepts it and fails it later.
            if draft.service_sid is None and self.lifecycle.queues.backlog(queue, now_mono) > SENDER_QUEUE_LIMIT_S:
                raise TwilioError(21611)
        steps, error_code = self.lifecycle.plan(
            now_mono,
            via_service=draft.service_sid is not None,
            is_test=principal.is_test,
            queue=queue,
            segments=segments,
            validity_s=draft.validity_period,
        )
        message = Message(
            sid=f"SM{self.rng.getrandbits(128):032x}",
            account_sid=account_sid,
            requested_sender=draft.requested_sender,
            from_number=draft.from_number,
            to=draft.to,
            body=draft.body,
            service_sid=draft.service_sid,
            segments=segments,
            created_mono=now_mono,
            created_wall=now_wall,
            steps=steps,
            error_code=error_code,
            status_callback=None if principal.is_test else draft.status_callback,
            is_test=principal.is_test,
            validity_period=draft.validity_period,
        )
        self.store.add(message)
        self.lifecycle.follow(message)
        if fault == "error_500_after_accept":
            raise TwilioError(20500)
        if fault == "drop_after_accept":
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)  # never reaches the client: the connection is gone
        return _json(message_resource(message, now_mono, as_created=True), status=201)

    async def fetch_message(self, request: web.Request, principal: Principal, account_sid: str) -> web.StreamResponse:
        self._require_active(principal)
        message = self.store.get(account_sid, request.match_info["message_sid"])
        if message is None:
            raise TwilioError(20404, path=request.path)
        return _json(message_resource(message, monotonic_and_wall()[0]))

    async def list_messages(self, request: web.Request, principal: Principal, account_sid: str) -> web.StreamResponse:
        self._require_active(principal)
        return _json(list_messages(self.store, account_sid, request.path, request.query))

    async def fetch_account(self, request: web.Request, principal: Principal, account_sid: str) -> web.StreamResponse:
        if principal.is_standard_key:
            raise TwilioError(20003)  # Standard API keys cannot use the /Accounts resource
        return _json(account_resource(principal.account, self.started_wall))

    @staticmethod
    def _require_active(principal: Principal) -> None:
        if principal.account.status != "active":
            raise TwilioError(20403, account=principal.account.sid, state=principal.account.status)

    async def not_found(self, request: web.Request) -> web.StreamResponse:
        return _error(TwilioError(20404, path=request.path))

    # -- /_sim test endpoints -----------------------------------------------------------------------------

    def accepted_messages(self) -> list[dict[str, Any]]:
        now_mono = monotonic_and_wall()[0]
        return [sim_message_summary(message, now_mono) for message in self.store]

    async def sim_messages(self, request: web.Request) -> web.StreamResponse:
        return _json(self.accepted_messages())

    async def reply_from_recipient(
        self, account_sid: str, recipient: str, to: str, body: str, url: str | None
    ) -> dict[str, Any]:
        """A recipient's reply (see inbound.py): ``{delivered, status, opted_out}``; ValueError for bad input."""
        return await self.inbound.receive(self.inbound.check(account_sid, recipient, to, body, url))

    async def sim_inbound(self, request: web.Request) -> web.StreamResponse:
        try:
            payload = json.loads(await request.read())
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return _json({"error": "expected a JSON object {account_sid, from, to, body, url}"}, status=400)
        try:
            reply = self.inbound.check(
                payload.get("account_sid"),
                payload.get("from"),
                payload.get("to"),
                payload.get("body", ""),
                payload.get("url"),
            )
        except ValueError as exc:
            return _json({"error": str(exc)}, status=400)
        return _json(await self.inbound.receive(reply))

    async def sim_inject_faults(self, request: web.Request) -> web.StreamResponse:
        try:
            payload = json.loads(await request.read())
        except ValueError:
            payload = None
        mode = parse_fault_mode(payload.get("mode")) if isinstance(payload, dict) else None
        if isinstance(payload, dict) and mode == "rate_limit" and "account_sid" in payload:
            # A 429 storm on one account for a while: {"mode": "rate_limit", "account_sid": "AC…", "seconds": 30}
            seconds, account_sid = payload.get("seconds"), payload.get("account_sid")
            if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds <= 0:
                return _json({"error": "seconds must be a positive number"}, status=400)
            if not isinstance(account_sid, str):
                return _json({"error": "account_sid must be a string"}, status=400)
            self.faults.storm(account_sid, float(seconds))
            return _json({"pending": self.faults.pending})
        count = payload.get("count", 1) if isinstance(payload, dict) else None
        if mode is None or not isinstance(count, int) or isinstance(count, bool) or count < 1:
            reason = f'expected {{"mode": one of {list(FAULT_MODES)}, "count": a positive integer}}'
            return _json({"error": reason}, status=400)
        self.faults.inject(mode, count)
        return _json({"pending": self.faults.pending})

    async def sim_clear_faults(self, request: web.Request) -> web.StreamResponse:
        self.faults.clear()
        return _json({"pending": 0})


SIMULATOR_KEY = web.AppKey("simulator", Simulator)


def build_app(config: SimulatorConfig) -> web.Application:
    """The simulator as an aiohttp application (serve it with ``web.run_app`` or :func:`running_simulator`)."""
    sim = Simulator(config)
    app = web.Application()
    app[SIMULATOR_KEY] = sim
    add = app.router.add_route
    add("POST", f"{_PREFIX}/{{account_sid}}/Messages.json", sim.api(sim.create_message, test_credentials_allowed=True))
    add("GET", f"{_PREFIX}/{{account_sid}}/Messages.json", sim.api(sim.list_messages))
    add("GET", f"{_PREFIX}/{{account_sid}}/Messages/{{message_sid}}.json", sim.api(sim.fetch_message))
    add("GET", f"{_PREFIX}/{{account_sid}}.json", sim.api(sim.fetch_account))
    add("GET", "/_sim/messages", sim.sim_messages)
    add("POST", "/_sim/faults", sim.sim_inject_faults)
    add("DELETE", "/_sim/faults", sim.sim_clear_faults)
    add("POST", "/_sim/inbound", sim.sim_inbound)
    add("POST", "/api/v5/flow/", sim.msg91.flow)
    add("POST", "/api/v5/flow", sim.msg91.flow)
    add("GET", "/_sim/msg91/messages", sim.msg91.sim_messages)
    add("*", "/{tail:.*}", sim.not_found)

    async def release_hanging_sends(_app: web.Application) -> None:
        sim.msg91.release()  # before the server waits for its handlers to finish

    async def close_lifecycle(_app: web.Application) -> None:
        await sim.lifecycle.close()
        await sim.inbound.close()
        await sim.msg91.close()

    app.on_shutdown.append(release_hanging_sends)
    app.on_cleanup.append(close_lifecycle)
    return app


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(payload).encode(), status=status, content_type=_JSON)


def _error(refusal: TwilioError) -> web.Response:
    return web.Response(body=refusal.body(), status=refusal.status, content_type=_JSON)
