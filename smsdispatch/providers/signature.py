"""Twilio's ``X-Twilio-Signature``: how Twilio signs the callbacks it POSTs, and how a receiver checks them.

The signature is base64(HMAC-SHA1(key=auth token, message=full URL exactly as called + every POST parameter
name and value, names in sorted order)). The simulator signs with :func:`compute_signature`; the status
receiver checks with :func:`is_valid_signature`, which compares in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping

SIGNATURE_HEADER = "X-Twilio-Signature"


Params = Mapping[str, str] | Iterable[tuple[str, str]]


def compute_signature(auth_token: str, url: str, params: Params) -> str:
    """Return the signature Twilio sends for a POST of ``params`` to ``url``, signed with ``auth_token``."""
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    message = url + "".join(name + value for name, value in sorted(pairs, key=lambda pair: pair[0]))
    digest = hmac.new(auth_token.encode(), message.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def is_valid_signature(auth_token: str, url: str, params: Params, signature: str) -> bool:
    """True when ``signature`` is what Twilio would send for this request; compared in constant time."""
    expected = compute_signature(auth_token, url, params)
    return hmac.compare_digest(expected.encode(), signature.encode())
