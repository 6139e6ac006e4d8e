"""An accepted MSG91 message, and the delivery report that tells of it.

A message's outcome is decided when it is accepted (msg91_rules.py): its final status is reported once,
``SimulatorConfig.msg91_report_delay_s`` later, to ``msg91_report_url`` when one is configured. Reports are JSON
(``Content-Type: application/json``), one per message, and not signed: MSG91 does not sign them, so the receiver
protects itself with a token in the URL's path. A report that fails (connection error, timeout, 5xx) is retried
once after ``callback_retry_delay_ms``, as Twilio's callbacks are (lifecycle.py). The URL is a secret: it is never
logged.

Shapes (``msg91_report_shape``):

- ``v3``, flat: ``{date, number, senderId, requestId, CRQID, status, desc, credit, currency}``, every value a
  string; ``date`` is the delivery moment as ``YYYY-MM-DD HH:MM:SS`` in India Standard Time (UTC+05:30, no zone
  given: the simulator's choice, MSG91's zone is unconfirmed), ``senderId`` and ``CRQID`` are ``""`` when absent.
- ``new`` ("Webhook (New)"): ``{requestId, requestedAt, status, deliveryTime, telNum, CRQID, failureReason,
  smsLength, credit}``; ``requestedAt`` and ``deliveryTime`` are epoch milliseconds, ``smsLength`` the segments,
  ``failureReason`` the description of a failure and ``""`` for a delivered message.

Prices: 0.25 INR a segment (``credit`` "0.50" for two), charged whatever the outcome.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal

import aiohttp
from pydantic import SecretStr

from smsdispatch.tools.simulator.config import Msg91ReportShape
from smsdispatch.tools.simulator.msg91_rules import DELIVERED, STATUS_DESCRIPTIONS

logger = logging.getLogger(__name__)

PRICE_PER_SEGMENT = Decimal("0.25")
PRICE_UNIT = "INR"
_IST = timezone(timedelta(hours=5, minutes=30))
_REPORT_BUDGET_S = 15.0

ReportState = Literal["none", "pending", "sent", "failed"]


@dataclass(slots=True)
class Msg91Message:
    request_id: str  # MSG91's request id: 24 lowercase hex digits, shared by the recipients of one send
    account: str  # the account's label, never its authkey
    template_id: str
    sender: str | None
    crqid: str | None
    mobile: str
    variables: dict[str, Any]
    segments: int
    created_wall: float
    delivered_wall: float  # when the final status is reached (and reported)
    status: int
    accepted_then_500: bool = False
    report: ReportState = "none"

    @property
    def price(self) -> str:
        return str(PRICE_PER_SEGMENT * self.segments)

    @property
    def desc(self) -> str:
        return STATUS_DESCRIPTIONS.get(self.status, "Failed")


def report_payload(message: Msg91Message, shape: Msg91ReportShape) -> dict[str, Any]:
    """The delivery report of ``message`` in ``shape``."""
    if shape == "new":
        return {
            "requestId": message.request_id,
            "requestedAt": int(message.created_wall * 1000),
            "status": str(message.status),
            "deliveryTime": int(message.delivered_wall * 1000),
            "telNum": message.mobile,
            "CRQID": message.crqid or "",
            "failureReason": "" if message.status == DELIVERED else message.desc,
            "smsLength": message.segments,
            "credit": message.price,
        }
    return {
        "date": datetime.fromtimestamp(message.delivered_wall, UTC).astimezone(_IST).strftime("%Y-%m-%d %H:%M:%S"),
        "number": message.mobile,
        "senderId": message.sender or "",
        "requestId": message.request_id,
        "CRQID": message.crqid or "",
        "status": str(message.status),
        "desc": message.desc,
        "credit": message.price,
        "currency": PRICE_UNIT,
    }


class Reporter:
    """Posts each message's report on a timer; does nothing without a report URL."""

    def __init__(self, url: SecretStr | None, shape: Msg91ReportShape, retry_delay_s: float) -> None:
        self._url = url
        self._shape = shape
        self._retry_delay_s = retry_delay_s
        self._session: aiohttp.ClientSession | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.reports_delivered = 0
        self.reports_failed = 0

    def follow(self, message: Msg91Message) -> None:
        """Schedule the report of ``message`` for its ``delivered_wall`` (none without a report URL)."""
        if self._url is None:
            return
        message.report = "pending"
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            assert handle is not None
            self._timers.discard(handle)
            task = loop.create_task(self._deliver(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        handle = loop.call_later(max(message.delivered_wall - time.time(), 0.0), fire)
        self._timers.add(handle)

    async def _deliver(self, message: Msg91Message) -> None:
        assert self._url is not None  # follow() schedules only with a URL
        payload = report_payload(message, self._shape)
        for attempt in (1, 2):
            if await self._post(self._url.get_secret_value(), payload):
                message.report = "sent"
                self.reports_delivered += 1
                return
            if attempt == 1:
                await asyncio.sleep(self._retry_delay_s)
        message.report = "failed"
        self.reports_failed += 1
        logger.info("MSG91 report for request %s failed twice; giving up", message.request_id)

    async def _post(self, url: str, payload: dict[str, Any]) -> bool:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=_REPORT_BUDGET_S))
        try:
            async with self._session.post(url, json=payload) as response:
                await response.read()
                return response.status < 500
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # the exception's text may quote the URL, whose path is the receiver's secret token
            logger.debug("MSG91 report attempt failed: %s", type(exc).__name__)
            return False

    @property
    def pending(self) -> int:
        """Reports scheduled or in flight."""
        return len(self._timers) + len(self._tasks)

    async def close(self) -> None:
        """Stop: drop scheduled reports, cancel those in flight, close the HTTP session."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
