"""A real HTTP server on 127.0.0.1 for tests that stand in for python.org and GitHub.

It runs ``http.server.ThreadingHTTPServer`` in a thread and serves programmable
routes: bytes, an HTTP status, a truncated body (``Content-Length`` larger than
what is sent, then the connection is closed), a slow body (chunks with pauses),
a stall after the headers, or a connection closed before any response. Every
request is counted per path, so a test can assert that offline mode made none.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bink_python.inputs.fetch import FetchSettings
from bink_python.settings import Settings


@dataclass(frozen=True)
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/octet-stream"
    truncate_at: int | None = None  # send only this many bytes, then close
    chunk_delay: float = 0.0  # pause between 8 KiB chunks
    stall: float = 0.0  # pause after the headers, before the body
    close: bool = False  # close the connection without any response
    fail_times: int = 0  # answer 500 this many times first, then serve normally


class TestServer:
    __test__ = False  # not a pytest class

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                with server._lock:
                    server.requests[self.path] += 1
                    count = server.requests[self.path]
                    route = server.routes.get(self.path)
                if route is None:
                    self._send(404, b"not found\n", "text/plain")
                    return
                if route.close:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if count <= route.fail_times:
                    self._send(500, b"internal error\n", "text/plain")
                    return
                if route.status != 200:
                    self._send(route.status, route.body, route.content_type)
                    return
                self.send_response(200)
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.flush()
                if route.stall:
                    time.sleep(route.stall)
                body = route.body
                if route.truncate_at is not None:
                    body = body[: route.truncate_at]
                try:
                    for start in range(0, len(body), 8192):
                        self.wfile.write(body[start : start + 8192])
                        self.wfile.flush()
                        if route.chunk_delay:
                            time.sleep(route.chunk_delay)
                except (BrokenPipeError, ConnectionResetError):
                    return
                if route.truncate_at is not None:
                    self.close_connection = True

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def serve(self, path: str, body: bytes = b"", **options: object) -> str:
        """Program ``path``; returns its full URL."""
        self.routes[path] = Route(body, **options)  # type: ignore[arg-type]
        return self.url + path

    def count(self, path: str | None = None) -> int:
        with self._lock:
            return sum(self.requests.values()) if path is None else self.requests[path]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def running() -> Iterator[TestServer]:
    server = TestServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def refused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def served_settings(srv: TestServer, epoch: int, **environ: str) -> Settings:
    """The settings of a run whose upstream (python.org, GitHub) is ``srv`` and whose
    ``SOURCE_DATE_EPOCH`` is ``epoch``; ``environ`` adds variables."""
    return Settings.resolve(
        environ={
            "BINK_PYTHON_PYTHON_ORG_URL": srv.url,
            "BINK_PYTHON_GITHUB_URL": srv.url + "/gh",
            "SOURCE_DATE_EPOCH": str(epoch),
            **environ,
        }
    )


def quick_fetch(settings: Settings) -> FetchSettings:
    """``settings``' fetch settings, giving up at once: 1 s, one attempt, no backoff."""
    return replace(FetchSettings.of(settings), timeout=1.0, attempts=1, backoff=0.0)
