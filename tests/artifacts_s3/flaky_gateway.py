"""A gateway in front of the test's S3 server that answers `504 Gateway Timeout` to chosen requests, as
the proxies in front of users' storage do on a slow 800 MB part; everything else is passed through
untouched (the Host header too, so the client's signatures still hold)."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["flaky_gateway"]

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "expect"})


@contextmanager
def flaky_gateway(upstream: str, fail: Callable[[str, str], bool]) -> Iterator[tuple[str, list[str]]]:
    """(the gateway's endpoint, the requests it failed) while the block runs; `fail(method, path)`
    says whether to answer a request with a 504 instead of passing it on."""
    target = urlsplit(upstream)
    failed: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _relay(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if fail(self.command, self.path):
                failed.append(f"{self.command} {self.path}")
                message = b"<Error><Code>GatewayTimeout</Code><Message>upstream timed out</Message></Error>"
                self.send_response(504)
                self.send_header("Content-Length", str(len(message)))
                self.end_headers()
                self.wfile.write(message)
                return
            connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=60)
            try:
                connection.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in _HOP_BY_HOP:
                        connection.putheader(name, value)
                connection.endheaders(body)
                response = connection.getresponse()
                payload = response.read()
                self.send_response(response.status)
                for name, value in response.getheaders():
                    # A HEAD's Content-Length is the object's size: pass it on as it came.
                    if name.lower() not in _HOP_BY_HOP and (
                        name.lower() != "content-length" or self.command == "HEAD"
                    ):
                        self.send_header(name, value)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
            finally:
                connection.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay  # noqa: N815

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", failed
    finally:
        server.shutdown()
        server.server_close()
