"""Playing an SMS recipient against the simulator from a test, over HTTP (works for a simulator in any process).

::

    answer = await reply_from_recipient(sim.base_url, account_sid, "+14155550123", "+14155550100", "STOP",
                                        url="http://127.0.0.1:8000/twilio/inbound/acme")
    assert answer["opted_out"] and answer["delivered"]

In the simulator's own process, ``RunningSimulator.reply_from_recipient`` does the same without HTTP.
"""

from __future__ import annotations

from typing import Any

import httpx


async def reply_from_recipient(
    sim_base_url: str,
    account_sid: str,
    recipient: str,
    sender: str,
    body: str,
    url: str | None = None,
) -> dict[str, Any]:
    """``recipient`` texts ``body`` to ``sender`` (a number or MG… service of ``account_sid``): ``/_sim/inbound``.

    STOP-family keywords opt the recipient out of the account (creates get 400/21610), START-family ones opt back
    in; Twilio's signed incoming-message webhook goes to ``url`` when given, and this returns once it was tried:
    ``{"delivered": bool, "status": int | None, "opted_out": bool}``. A refused request raises ValueError.
    """
    payload = {"account_sid": account_sid, "from": recipient, "to": sender, "body": body, "url": url}
    # The simulator answers after the webhook was tried, which it bounds at 15 s: 30 s leaves room for both.
    async with httpx.AsyncClient(timeout=30.0) as client:
        response = await client.post(f"{sim_base_url.rstrip('/')}/_sim/inbound", json=payload)
    answer: dict[str, Any] = response.json()
    if response.status_code != 200:
        raise ValueError(f"the simulator refused the reply: {answer.get('error', response.text)}")
    return answer
