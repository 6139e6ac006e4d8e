"""A tenant's webhook endpoint for the integration tests: an HTTP server in a thread that records every POST.

Its behaviour is chosen by the path's first segment:

* ``/ok/…`` answers 204;
* ``/flaky/…`` answers 500 to the first three attempts of each ``webhook-id``, then 204;
* ``/hang/…`` holds the request for ``hang_seconds`` (the worker's timeout cuts it short first);
* ``/switch/…`` answers 503 until :attr:`WebhookReceiver.switch_on` is set, then 204.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when it arrived
    answered: int


class WebhookReceiver:
    def __init__(self, hang_seconds: float = 30.0) -> None:
        self.hits: list[Hit] = []
        self.switch_on = threading.Event()
        self._attempts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._hang_seconds = hang_seconds
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def at(self, prefix: str) -> list[Hit]:
        with self._lock:
            return [hit for hit in self.hits if hit.path.startswith(prefix)]

    def _answer(self, path: str, webhook_id: str) -> int:
        kind = path.strip("/").split("/", 1)[0]
        if kind == "flaky":
            with self._lock:
                self._attempts[webhook_id] += 1
                return 500 if self._attempts[webhook_id] <= 3 else 204
        if kind == "hang":
            self._stop.wait(self._hang_seconds)
            return 204
        if kind == "switch":
            return 204 if self.switch_on.is_set() else 503
        return 204

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {key.lower(): value for key, value in self.headers.items()}
                status = receiver._answer(self.path, headers.get("webhook-id", ""))
                with receiver._lock:
                    receiver.hits.append(Hit(self.path, headers, body, time.time(), status))
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the worker gave up waiting (a hang): nobody to answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
