"""The demo's webhook receiver: an endpoint a tenant's webhooks reach, checked as a tenant would check them.

One tenant of the run (``acme``) is registered with a webhook URL pointing here and a signing secret. Every
POST is kept; :func:`check_webhooks` verifies each with the ``standardwebhooks`` package (the same few lines the
README gives tenants) and turns the result into summary lines and problems.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass(frozen=True)
class Received:
    """One POST the inbox took: where, with what, when (``time.time()``), and what it answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    answered: int


#: Decides the status to answer a POST with, from its path and headers (lower-cased names); may block.
Answer = Callable[[str, dict[str, str]], int]


class WebhookInbox:
    """An HTTP endpoint on 127.0.0.1 (threads) that keeps every POST it is sent; it answers 204 unless ``answer``
    says otherwise. Tests build endpoints that fail or hang on it."""

    def __init__(self, answer: Answer | None = None) -> None:
        self.received: list[Received] = []
        self._answer = answer or (lambda _path, _headers: 204)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/webhooks"

    def at(self, prefix: str) -> list[Received]:
        """What arrived at paths starting with ``prefix``, in order."""
        with self._lock:
            return [item for item in self.received if item.path.startswith(prefix)]

    def wait(self, count: int, timeout: float) -> list[Received]:
        """What arrived, once ``count`` did or ``timeout`` seconds passed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.received) < count:
            time.sleep(0.05)
        with self._lock:
            return list(self.received)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {key.lower(): value for key, value in self.headers.items()}
                status = inbox._answer(self.path, headers)
                with inbox._lock:
                    inbox.received.append(Received(self.path, headers, body, time.time(), status))
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting: nobody to answer

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the demo prints its own summary

        return Handler


def check_webhooks(received: list[Received], secret: str, tenant_id: str) -> tuple[list[str], list[str]]:
    """Summary lines and problems for the webhooks ``tenant_id``'s endpoint received."""
    verified: list[dict[str, Any]] = []
    refused = 0
    for item in received:
        try:
            verified.append(Webhook(secret).verify(item.body, item.headers))
        except WebhookVerificationError:
            refused += 1
    kinds = sorted({str(payload.get("type")) for payload in verified})
    lines = [f"webhooks: {len(received)} received for {tenant_id}, {len(verified)} verified with standardwebhooks"]
    if verified:
        first = received[0]
        lines.append(f"  e.g. {first.headers.get('webhook-id')}: {', '.join(kinds)}; body {_excerpt(first.body)}")
    problems = []
    if not received:
        problems.append(f"no webhook reached {tenant_id}'s endpoint")
    if refused:
        problems.append(f"{refused} webhooks failed signature verification")
    return lines, problems


def _excerpt(body: bytes, limit: int = 90) -> str:
    text = json.dumps(json.loads(body)) if body else ""
    return text if len(text) <= limit else text[: limit - 3] + "..."
