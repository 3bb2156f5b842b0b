"""A pass-through HTTP proxy in front of the local AWS emulator, for the tests and
benchmarks that must see or change the calls a provider makes: the throttling test
answers some calls with throttling errors, the AWS benchmark times and counts them.

Requests are forwarded exactly as sent (method, path, query, headers, body; SigV4
signatures stay valid because the ``Host`` header is passed through) over one keep-alive
connection per proxy thread.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import urlsplit

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                        "trailers", "transfer-encoding", "upgrade", "content-length"})
SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")

Reply = tuple[int, dict[str, str], bytes]
"""Status, headers and body of an answer the proxy gives instead of the emulator."""


def service_of(headers: Any) -> str:
    """The signing service from the SigV4 credential scope (``s3``, ``ec2``, ``monitoring``...)."""
    match = SCOPE.search(headers.get("Authorization", ""))
    return match.group(1) if match else "unknown"


class PassThroughProxy(ThreadingHTTPServer):
    """Forwards every request to ``upstream``. Subclasses answer some requests
    themselves (``intercept``) or watch the forwarded ones (``observe``)."""

    daemon_threads = True

    def __init__(self, upstream: str, timeout: float = 120.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.timeout = timeout
        self._local = threading.local()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def intercept(self, service: str, method: str, path: str, headers: Any, body: bytes) -> Reply | None:
        """An answer to give instead of forwarding; None forwards."""
        return None

    def observe(self, service: str, method: str, path: str, headers: Any, body: bytes,
                start: float, end: float) -> None:
        """Called after a forwarded request was answered (perf_counter times)."""

    def connection(self, fresh: bool = False) -> http.client.HTTPConnection:
        """One keep-alive connection to the emulator per proxy thread."""
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection(*self.upstream, timeout=self.timeout)
            self._local.conn = conn
        return conn


P = TypeVar("P", bound=PassThroughProxy)


@contextmanager
def serving(proxy: P) -> Iterator[P]:
    """Serve on a daemon thread until the block ends."""
    thread = threading.Thread(target=proxy.serve_forever, name=type(proxy).__name__, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: PassThroughProxy

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._body()
        service = service_of(self.headers)
        canned = self.server.intercept(service, self.command, self.path, self.headers, body)
        if canned is not None:
            status, canned_headers, payload = canned
            self._reply(status, "Intercepted", list(canned_headers.items()), payload, len(payload))
            return
        start = time.perf_counter()
        status, reason, headers, payload = self._forward(body)
        self.server.observe(service, self.command, self.path, self.headers, body, start, time.perf_counter())
        length = next((int(v) for k, v in headers if k.lower() == "content-length"), len(payload)) \
            if self.command == "HEAD" else len(payload)
        self._reply(status, reason, [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP], payload, length)

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        for attempt in range(2):  # a keep-alive connection the emulator closed is reopened once
            conn = self.server.connection(fresh=attempt > 0)
            try:
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for key, value in self.headers.items():
                    if key.lower() not in HOP_BY_HOP:
                        conn.putheader(key, value)
                if body or self.command in ("POST", "PUT", "PATCH"):
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body or None)
                response = conn.getresponse()
                return response.status, response.reason, response.getheaders(), response.read()
            except (http.client.HTTPException, OSError):
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _reply(self, status: int, reason: str, headers: list[tuple[str, str]], payload: bytes,
               length: int) -> None:
        self.send_response_only(status, reason)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle
