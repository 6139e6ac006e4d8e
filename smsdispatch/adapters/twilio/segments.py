"""Twilio's checks of a message body (the segment and encoding rules are the contract's:
:mod:`smsdispatch.contract.segments`)."""

from __future__ import annotations

from smsdispatch.adapters.sms.errors import InvalidMessage, MessageTooLong
from smsdispatch.contract import MAX_BODY_CHARS
from smsdispatch.contract.segments import Encoding, encoding_of, segment_info

__all__ = ["Encoding", "check_body", "encoding_of", "segment_info"]


def check_body(body: str) -> None:
    """Raise :class:`InvalidMessage` for a body Twilio refuses on length (21602 empty, 21617 too long)."""
    if not body:
        raise InvalidMessage("The message body is empty; Twilio requires one (21602).")
    if len(body) > MAX_BODY_CHARS:
        raise MessageTooLong(
            f"The message body has {len(body)} characters; Twilio accepts at most {MAX_BODY_CHARS} (21617)."
        )
