"""A fault-injecting HTTP proxy on 127.0.0.1, to put in front of an S3 server in tests.

Clients talk to the proxy as if it were the server (`--endpoint-url http://127.0.0.1:PORT`);
each request is forwarded on a fresh upstream connection, unless a seeded random decides to
hurt it. The faults are the ones real networks and object stores produce:

* ``reset``: the connection is reset before the request reaches the server;
* ``lost``: the server carries the request out, then the connection is reset, so the client
  never hears that it succeeded (a retried create-only write then meets its own object);
* ``lost_5xx``: as ``lost``, but the client gets a 503 instead of the real answer;
* ``error``: a 500 or 503 with an S3-style XML body, without asking the server;
* ``truncate``: the real status and headers, half the body, then a reset;
* ``delay``: the request is held back for up to ``max_delay`` seconds, then forwarded.

Faults can be switched off and on (`enabled`), and `stats` counts what was done, so a test
can check that faults really happened before it trusts a "no damage" result; `seen` lists
each request's method and path, for a test that counts what a command asks of the server.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

# Headers that belong to one connection, not to the request or response (RFC 9110 7.6.1), and
# the ones the proxy recomputes itself because it may change the body framing.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)
_ERROR_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>{code}</Code><Message>injected by the test proxy</Message>"
    "<RequestId>fault</RequestId></Error>"
)


@dataclass(frozen=True)
class Faults:
    """Probability of each fault per request; what is left is forwarded untouched."""

    reset: float = 0.05
    lost: float = 0.03
    lost_5xx: float = 0.02
    error: float = 0.07
    truncate: float = 0.03
    delay: float = 0.15
    max_delay: float = 0.4

    def pick(self, rng: random.Random) -> str:
        roll = rng.random()
        for name in ("reset", "lost", "lost_5xx", "error", "truncate", "delay"):
            roll -= getattr(self, name)
            if roll < 0:
                return name
        return "pass"


class FaultProxy:
    """The proxy; use as a context manager. `url` is what clients should use as endpoint."""

    def __init__(self, upstream: str, seed: int, faults: Faults | None = None) -> None:
        parts = urlsplit(upstream)
        assert parts.scheme == "http" and parts.hostname and parts.port, upstream
        self.upstream = (parts.hostname, parts.port)
        self.faults = faults or Faults()
        self.enabled = False
        self.stats: Counter[str] = Counter()
        self.seen: list[str] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def decide(self, request: str = "") -> tuple[str, float]:
        """The fault for the next request, and a delay (seconds) drawn at the same time."""
        with self._lock:
            self.seen.append(request)
            fault = self.faults.pick(self._rng) if self.enabled else "pass"
            delay = self._rng.uniform(0, self.faults.max_delay)
            self.stats["requests"] += 1
            self.stats[fault] += 1
        return fault, delay

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A test client may open many connections at once; the default backlog of 5 would make
    # the kernel drop some SYNs, which costs a client a one-second retransmit each.
    request_queue_size = 128
    proxy: FaultProxy


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps client connections alive (as botocore expects) and makes the base class
    # answer "Expect: 100-continue" before we read a PUT body.
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per request would bury a failing test's output

    def do_GET(self) -> None:
        self._relay()

    def do_HEAD(self) -> None:
        self._relay()

    def do_PUT(self) -> None:
        self._relay()

    def do_POST(self) -> None:
        self._relay()

    def do_DELETE(self) -> None:
        self._relay()

    # -- one request ----------------------------------------------------------------------

    def _relay(self) -> None:
        body = self._read_body()
        fault, delay = self.server.proxy.decide(f"{self.command} {self.path}")
        if fault == "reset":
            self._reset()
            return
        if fault == "error":
            # The delay's draw doubles as a coin: half the errors are 500s, half 503s.
            half = delay < self.server.proxy.faults.max_delay / 2
            self._send(*_error_response(503 if half else 500))
            return
        if fault == "delay":
            time.sleep(delay)
        try:
            status, reason, headers, data = self._forward(body)
        except OSError:
            self._send(*_error_response(502))
            return
        if fault == "lost":
            self._reset()
        elif fault == "lost_5xx":
            self._send(*_error_response(503))
        elif fault == "truncate" and len(data) > 1 and self.command != "HEAD":
            self._send(status, reason, headers, data[: len(data) // 2], declared=len(data))
            self._reset()
        else:
            self._send(status, reason, headers, data)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        host, port = self.server.proxy.upstream
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            # The Host header is passed on as the client signed it; http.client adds none then.
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            if body or self.command in ("PUT", "POST"):
                headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            out = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP]
            return resp.status, resp.reason, out, data
        finally:
            conn.close()

    def _send(
        self,
        status: int,
        reason: str,
        headers: list[tuple[str, str]],
        data: bytes,
        declared: int | None = None,
    ) -> None:
        self.send_response_only(status, reason)
        for key, value in headers:
            # A HEAD answer's Content-Length is the object's size: keep the server's.
            if key.lower() == "content-length" and self.command != "HEAD":
                continue
            self.send_header(key, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data) if declared is None else declared))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def _reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0), as a crashed peer would."""
        self.close_connection = True
        sock = self.connection
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The descriptor closes (and the RST goes out) only once the reader made from it by
        # makefile() is closed too; the writer wraps the socket itself and stays harmless.
        self.rfile.close()
        sock.close()


def _error_response(status: int) -> tuple[int, str, list[tuple[str, str]], bytes]:
    code = {500: "InternalError", 502: "BadGateway", 503: "ServiceUnavailable"}[status]
    reason = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
    body = _ERROR_BODY.format(code=code).encode()
    return status, reason[status], [("Content-Type", "application/xml")], body
