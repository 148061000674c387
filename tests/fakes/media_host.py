"""A real HTTP server on 127.0.0.1 that serves result files and redirects, and counts every request.

It stands for a media host the delivery code may or may not be allowed to reach: a test asserts on
``hits`` to prove that a refused URL was never requested at all.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.e2e.chat_harness import png_bytes


@dataclass
class MediaHost:
    """Routes: ``/<name>.png`` a PNG, ``/big`` ``big_bytes`` of zeros, anything in ``redirects`` a 302."""

    port: int = 0
    hits: list[str] = field(default_factory=list)
    redirects: dict[str, str] = field(default_factory=dict)
    big_bytes: int = 0

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.origin + path


def _handler(host: MediaHost) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            host.hits.append(self.path)
            if self.path in host.redirects:
                self.send_response(302)
                self.send_header("Location", host.redirects[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path == "/big":
                body = bytes(host.big_bytes)
                kind = "application/octet-stream"
            elif self.path.endswith(".png"):
                body, kind = png_bytes(), "image/png"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: tests read ``hits`` instead."""

    return Handler


@contextmanager
def media_host() -> Iterator[MediaHost]:
    """A counting media host on a free loopback port, stopped on exit."""
    host = MediaHost()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(host))
    host.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield host
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
