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
from urllib.parse import urlsplit, urlunsplit

SIGNATURE_HEADER = "X-Twilio-Signature"


Params = Mapping[str, str] | Iterable[tuple[str, str]]


def compute_signature(auth_token: str, url: str, params: Params) -> str:
    """Return the signature Twilio sends for a POST of ``params`` to ``url``, signed with ``auth_token``."""
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    message = url + "".join(name + value for name, value in sorted(pairs, key=lambda pair: pair[0]))
    digest = hmac.new(auth_token.encode(), message.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def is_valid_signature(auth_token: str, url: str, params: Params, signature: str) -> bool:
    """True when ``signature`` is what Twilio would send for this request; compared in constant time.

    Twilio signs some callbacks over the URL with its default port written out (``https://host:443/…``) and
    others without, whichever the receiver sees: like the SDK's ``RequestValidator``, both forms are checked, so
    a valid receipt is never refused (and lost) for the port.
    """
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    matches = [
        hmac.compare_digest(compute_signature(auth_token, form, pairs).encode(), signature.encode())
        for form in _url_forms(url)
    ]
    return any(matches)


def _url_forms(url: str) -> tuple[str, str]:
    """The URL without its port, and with the scheme's default port when it names none."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    userinfo = parts.netloc[: len(parts.netloc) - len(host)]
    try:
        port = parts.port
    except ValueError:
        return url, url
    bare_host = host if port is None else host.rsplit(":", 1)[0]
    without = urlunsplit(parts._replace(netloc=userinfo + bare_host))
    with_port = (
        url
        if port is not None
        else urlunsplit(parts._replace(netloc=f"{userinfo}{bare_host}:{443 if parts.scheme == 'https' else 80}"))
    )
    return without, with_port
