"""Kestra's management endpoints (``/health``, ``/health/liveness``, ``/health/readiness``) as a
tiny HTTP server: UP (200) or, with ``down``, DOWN (503), the answers' shape being Micronaut's
health endpoint's (``{"name": "kestra", "status": "UP"}``; a 503 with ``"status": "DOWN"``).

    with KestraHealth() as health:          # 127.0.0.1, ephemeral port
        fake_kube.serve_pods(health.url)    # the fake API server's pod proxy reaches it
        health.down = True                  # /health answers 503 DOWN from now on
        health.down_times = 2               # ... or only the next 2 times, then UP again

``KestraHealth(host="0.0.0.0")`` listens on every address: the real control plane's pod proxy
dials the pods' IP (this host's primary address), never loopback. ``requests`` records every
path asked for.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.fakes.loopback import LoopbackServer

PATHS = ("/health", "/health/liveness", "/health/readiness")


class KestraHealth(LoopbackServer):
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, down: bool = False):
        self.host, self._port, self.down = host, port, down
        self.down_times = 0  # the next N answers are DOWN, then UP (unless ``down``)
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def answer(self, path: str) -> tuple[int, dict | None]:
        with self._lock:
            self.requests.append(path)
            if path not in PATHS:
                return 404, None
            down = self.down or self.down_times > 0
            if self.down_times > 0:
                self.down_times -= 1
        if down:
            return 503, {"name": "kestra", "status": "DOWN"}
        return 200, {"name": "kestra", "status": "UP"}

    def start(self) -> "KestraHealth":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                code, doc = fake.answer(self.path.split("?")[0])
                body = json.dumps(doc).encode() if doc is not None else b""
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer((self.host, self._port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True,
                         name="fake-kestra-health").start()
        return self

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
