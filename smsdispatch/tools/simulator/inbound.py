"""Playing the recipient: a reply to one of an account's senders, its opt-out keywords, and Twilio's webhook.

Twilio handles the standard opt-out keywords itself (twilio.com/docs/messaging/tutorials/advanced-opt-out): after
STOP (STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, OPTOUT, REVOKE) it refuses creates to that recipient with 400/21610
until START (YES, UNSTOP); HELP (INFO) changes nothing. The body must be the keyword alone (trimmed, any case).
Twilio scopes an opt-out by sender or Messaging Service; the simulator keeps it per account, which is the same
thing for an account with one sender and is what a tenant's suppression list models.

The reply is then POSTed to the given URL as Twilio's incoming-message webhook: form-encoded ``MessageSid``,
``SmsSid``, ``SmsMessageSid``, ``AccountSid``, ``MessagingServiceSid`` (when the reply went to a service), ``From``,
``To``, ``Body``, ``NumMedia``, ``NumSegments``, ``ApiVersion`` and ``OptOutType`` (STOP, START or HELP, only for a
keyword), signed with ``X-Twilio-Signature`` and the account's auth token exactly like status callbacks. One
attempt: the caller awaits it and sees the receiver's HTTP status.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from pydantic import SecretStr

from smsdispatch.adapters.twilio.signature import SIGNATURE_HEADER, compute_signature
from smsdispatch.contract.segments import segment_info
from smsdispatch.tools.simulator.accounts import AccountBook
from smsdispatch.tools.simulator.formats import API_VERSION
from smsdispatch.tools.simulator.validation import is_e164

logger = logging.getLogger(__name__)

_WEBHOOK_BUDGET_S = 15.0  # Twilio's default budget for a webhook answer

OPT_OUT_KEYWORDS: dict[str, str] = {
    **dict.fromkeys(("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"), "STOP"),
    **dict.fromkeys(("START", "YES", "UNSTOP"), "START"),
    **dict.fromkeys(("HELP", "INFO"), "HELP"),
}


def opt_out_type(body: str) -> str | None:
    """``STOP``, ``START`` or ``HELP`` when ``body`` is one of Twilio's keywords, else None."""
    return OPT_OUT_KEYWORDS.get(body.strip().upper())


@dataclass(frozen=True, slots=True)
class Reply:
    """A checked inbound message: ``to`` is what the recipient texted (a number, or a service SID)."""

    account_sid: str
    token: SecretStr
    sender: str  # the recipient, replying
    to_number: str  # the number Twilio reports as To: ``to`` itself, or a number of the account for a service
    service_sid: str | None
    body: str
    url: str | None


class Inbound:
    """Opt-out state per (account, recipient) and the delivery of incoming-message webhooks."""

    def __init__(self, book: AccountBook, rng: random.Random) -> None:
        self._book = book
        self._rng = rng
        self._opted_out: set[tuple[str, str]] = set()
        self._session: aiohttp.ClientSession | None = None

    def is_opted_out(self, account_sid: str, recipient: str) -> bool:
        return (account_sid, recipient) in self._opted_out

    def check(self, account_sid: object, sender: object, to: object, body: object, url: object) -> Reply:
        """The reply, or ValueError saying (in one sentence) which field is wrong."""
        principal = self._book.account(account_sid) if isinstance(account_sid, str) else None
        if principal is None or principal.is_test:
            raise ValueError("account_sid must be a live account of this simulator")
        account = principal.account
        if not isinstance(sender, str) or not is_e164(sender):
            raise ValueError("from must be the recipient's E.164 number")
        if not isinstance(to, str) or to not in account.senders:
            raise ValueError("to must be one of the account's senders (a number or a Messaging Service SID)")
        if not isinstance(body, str):
            raise ValueError("body must be a string")
        if url is not None and (not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https")):
            raise ValueError("url must be an http(s) URL, or absent to skip the webhook")
        service = to if to.startswith("MG") else None
        # A reply reaches a service through one of its numbers: report the account's first number, as create does.
        pool = next((s for s in account.senders if not s.startswith("MG")), to)
        return Reply(account.sid, account.token, sender, pool if service else to, service, body, url)

    async def receive(self, reply: Reply) -> dict[str, Any]:
        """Apply the reply's keyword, then POST the webhook: ``{delivered, status, opted_out}``."""
        keyword = opt_out_type(reply.body)
        pair = (reply.account_sid, reply.sender)
        # The opt-out takes effect before the webhook goes out: a receiver reacting to it already sees 21610.
        if keyword == "STOP":
            self._opted_out.add(pair)
        elif keyword == "START":
            self._opted_out.discard(pair)
        status = None if reply.url is None else await self._post(reply, self._params(reply, keyword))
        return {
            "delivered": status is not None and 200 <= status < 300,
            "status": status,
            "opted_out": pair in self._opted_out,
        }

    def _params(self, reply: Reply, keyword: str | None) -> dict[str, str]:
        sid = f"SM{self._rng.getrandbits(128):032x}"
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "SmsMessageSid": sid,
            "AccountSid": reply.account_sid,
            "From": reply.sender,
            "To": reply.to_number,
            "Body": reply.body,
            "NumMedia": "0",
            "NumSegments": str(max(segment_info(reply.body)[0], 1)),  # an empty body still took one
            "ApiVersion": API_VERSION,
        }
        if reply.service_sid is not None:
            params["MessagingServiceSid"] = reply.service_sid
        if keyword is not None:
            params["OptOutType"] = keyword
        return params

    async def _post(self, reply: Reply, params: dict[str, str]) -> int | None:
        url = reply.url
        assert url is not None  # receive() posts only when a URL was given
        headers = {
            SIGNATURE_HEADER: compute_signature(reply.token.get_secret_value(), url, params),
            "User-Agent": "TwilioProxy/1.1",
        }
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=_WEBHOOK_BUDGET_S))
        try:
            async with self._session.post(url, data=params, headers=headers) as response:
                await response.read()  # a TwiML answer would be an auto-reply; the simulator sends none
                return response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            logger.info("incoming-message webhook to %s failed: %s", url, type(exc).__name__)
            return None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
