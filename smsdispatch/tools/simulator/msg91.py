"""A local MSG91: the Flow API (``POST /api/v5/flow/``, also without the slash) and ``GET /_sim/msg91/messages``.

A send carries the header ``authkey`` and a JSON body ``{"template_id" (or "flow_id"), "short_url", "sender"
(optional), "CRQID" (optional), "recipients": [{"mobiles": "919876543210", "<var>": "value", ...}]}``. It is
checked as msg91_rules.py describes; a refusal is ``{"type": "error", "message", "code"}`` on HTTP 200 (429 for
the magic 0429, which stores nothing). A send that passes stores one message per recipient, all under one request
id, and answers ``{"type": "success", "message": "<24 lowercase hex digits>"}``, except for the magic endings that
fail after accepting: 0500 answers HTTP 500 with a plain-text body (the messages are stored and marked
``accepted_then_500``), 0408 answers only after 30 s (stored first; a client times out). Every stored message is
reported later (msg91_reports.py). ``SimulatorConfig.latency_ms`` delays every answer; the Twilio-side knobs
(concurrency limit, fail rate, injected faults) do not apply here.

``GET /_sim/msg91/messages`` lists the stored messages in creation order: ``request_id``, ``account`` (the authkey's
label, never the key), ``template_id``, ``sender`` and ``crqid`` (null when absent), ``mobile``, ``variables`` (the
recipient object without ``mobiles``), ``created_at`` (RFC 3339 UTC, microseconds), ``status`` (the final status
code, a string, as the report carries it) and ``desc``, ``segments`` (of the ``msg91_body_var`` variable),
``price`` and ``price_unit`` ("INR"), ``accepted_then_500``, and ``report`` (none, pending, sent or failed).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import random
from typing import Any

from aiohttp import web

from smsdispatch.contract.segments import segment_info
from smsdispatch.tools.simulator.config import Msg91Account, SimulatorConfig
from smsdispatch.tools.simulator.formats import rfc3339_micro
from smsdispatch.tools.simulator.msg91_reports import PRICE_UNIT, Msg91Message, Reporter
from smsdispatch.tools.simulator.msg91_rules import (
    INVALID_AUTHKEY,
    INVALID_TEMPLATE,
    MAGIC_AFTER_ACCEPT,
    AfterAccept,
    FlowSend,
    Msg91Error,
    check_mobiles,
    check_options,
    final_status,
    magic_of,
    magic_refusal,
    parse_flow,
)
from smsdispatch.tools.simulator.store import monotonic_and_wall

HANG_S = 30.0  # how long the magic 0408 keeps a send waiting


class Msg91:
    """All MSG91 state of one simulator run; ``flow`` and ``sim_messages`` are route handlers."""

    def __init__(self, config: SimulatorConfig, rng: random.Random) -> None:
        self._keys = [(account.authkey.get_secret_value().encode(), account) for account in config.msg91_accounts]
        self._rng = rng
        self._latency_s = config.latency_ms / 1000
        self._delay_s = config.msg91_report_delay_s
        self._undelivered_rate = config.msg91_undelivered_rate
        self._body_var = config.msg91_body_var
        self.reporter = Reporter(
            config.msg91_report_url, config.msg91_report_shape, config.callback_retry_delay_ms / 1000
        )
        self.messages: list[Msg91Message] = []
        self._closing = asyncio.Event()
        self.hang_s = HANG_S

    def _authenticate(self, authkey: str | None) -> Msg91Account:
        """The account whose key is ``authkey`` (every key is compared, in constant time), else 207."""
        found = None
        if authkey:
            presented = authkey.encode()
            for secret, account in self._keys:
                if hmac.compare_digest(secret, presented):
                    found = account
        if found is None:
            raise Msg91Error(INVALID_AUTHKEY, "invalid authkey")
        return found

    async def flow(self, request: web.Request) -> web.StreamResponse:
        if self._latency_s:
            await asyncio.sleep(self._latency_s)
        try:
            account = self._authenticate(request.headers.get("authkey"))
            send = parse_flow(await request.read(), request.content_type)
            if send.template_id not in account.template_ids:
                raise Msg91Error(INVALID_TEMPLATE, f"invalid template id: {send.template_id} is not this account's")
            check_mobiles(send)
            sender, crqid = check_options(send)
            magic = magic_of(send)
            refusal = magic_refusal(magic)
            if refusal is not None:
                raise refusal
        except Msg91Error as refusal:
            return _json(refusal.body(), status=refusal.status)
        after: AfterAccept | None = MAGIC_AFTER_ACCEPT.get(magic) if magic is not None else None
        request_id = self._accept(account, send, sender, crqid, accepted_then_500=after == "error_500")
        if after == "error_500":
            return web.Response(status=500, text="Internal Server Error")
        if after == "hang":
            await self._hang()
        return _json({"type": "success", "message": request_id})

    def _accept(
        self, account: Msg91Account, send: FlowSend, sender: str | None, crqid: str | None, *, accepted_then_500: bool
    ) -> str:
        """Store one message per recipient under a new request id, and schedule their reports."""
        request_id = f"{self._rng.getrandbits(96):024x}"
        created_wall = monotonic_and_wall()[1]
        for recipient in send.recipients:
            undelivered = bool(self._undelivered_rate) and self._rng.random() < self._undelivered_rate
            message = Msg91Message(
                request_id=request_id,
                account=account.label,
                template_id=send.template_id,
                sender=sender,
                crqid=crqid,
                mobile=recipient.mobile,
                variables=recipient.variables,
                segments=segment_info(_text(recipient.variables.get(self._body_var)))[0],
                created_wall=created_wall,
                delivered_wall=created_wall + self._delay_s,
                status=final_status(recipient.mobile, undelivered),
                accepted_then_500=accepted_then_500,
            )
            self.messages.append(message)
            self.reporter.follow(message)
        return request_id

    async def _hang(self) -> None:
        """Wait ``hang_s``, or until the simulator shuts down."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.hang_s):
                await self._closing.wait()

    def release(self) -> None:
        """Let every hanging send answer now (the simulator is shutting down)."""
        self._closing.set()

    def listing(self) -> list[dict[str, Any]]:
        return [summary(message) for message in self.messages]

    async def sim_messages(self, request: web.Request) -> web.StreamResponse:
        return _json(self.listing())

    async def close(self) -> None:
        self.release()
        await self.reporter.close()


def summary(message: Msg91Message) -> dict[str, Any]:
    """One entry of ``GET /_sim/msg91/messages`` (see the module docstring)."""
    return {
        "request_id": message.request_id,
        "account": message.account,
        "template_id": message.template_id,
        "sender": message.sender,
        "crqid": message.crqid,
        "mobile": message.mobile,
        "variables": message.variables,
        "created_at": rfc3339_micro(message.created_wall),
        "status": str(message.status),
        "desc": message.desc,
        "segments": message.segments,
        "price": message.price,
        "price_unit": PRICE_UNIT,
        "accepted_then_500": message.accepted_then_500,
        "report": message.report,
    }


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(payload).encode(), status=status, content_type="application/json")
