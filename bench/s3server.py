"""SeaweedFS on 127.0.0.1 behind a tiny request-counting HTTP proxy.

The server is started the way tests/cloud_servers.py does it (`weed mini` with an s3.json
identity file, every port chosen free, `p + 10000` free too) and is always stopped. Every
tool talks to the proxy, which forwards each request unchanged (Host header included, so
AWS signatures stay valid) and counts requests, request-body bytes (uploaded) and
response-body bytes (downloaded).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3

# The server helpers the tests use (tests/processes.py needs nothing but the standard library).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from processes import seaweed_ports, stop

REGION = "us-east-1"
ACCESS_KEY, SECRET_KEY = "AKIACLAUDESYNCBENCH", "bench-secret-0123456789"
_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection", "te"}
_PIECE = 1024 * 1024


@dataclass
class Traffic:
    """What went through the proxy so far."""

    requests: Counter[str] = field(default_factory=Counter)
    sent: int = 0  # request bodies: bytes uploaded by the client
    received: int = 0  # response bodies: bytes downloaded by the client

    def copy(self) -> Traffic:
        return Traffic(Counter(self.requests), self.sent, self.received)

    def minus(self, before: Traffic) -> Traffic:
        return Traffic(self.requests - before.requests, self.sent - before.sent,
                       self.received - before.received)  # fmt: skip

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and 100-continue answered by the base class
    server: _ProxyServer

    def setup(self) -> None:
        super().setup()
        self.upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port)

    def finish(self) -> None:
        super().finish()
        self.upstream.close()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _relay(self) -> None:
        sent = self._forward_request()
        resp = self.upstream.getresponse()
        self.send_response_only(resp.status, resp.reason)
        headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP]
        length = resp.getheader("Content-Length")
        body = b""
        if length is None and self.command != "HEAD":
            body = resp.read()  # chunked upstream: re-framed with a length
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        received = self._copy_response(resp, body)
        self.server.record(self.command, sent, received)

    def _forward_request(self) -> int:
        up = self.upstream
        up.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        for k, v in self.headers.items():
            if k.lower() not in _HOP:
                up.putheader(k, v)
        if chunked:
            up.putheader("Transfer-Encoding", "chunked")
        up.endheaders()
        if chunked:
            return self._forward_chunked()
        remaining = int(self.headers.get("Content-Length") or 0)
        sent = remaining
        while remaining:
            piece = self.rfile.read(min(_PIECE, remaining))
            if not piece:
                raise ConnectionError("client closed mid-body")
            up.send(piece)
            remaining -= len(piece)
        return sent

    def _forward_chunked(self) -> int:
        sent = 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip(), 16)
            data = self.rfile.read(size) if size else b""
            self.rfile.readline()  # CRLF after the chunk
            self.upstream.send(f"{size:x}\r\n".encode() + data + b"\r\n")
            sent += size
            if not size:
                return sent

    def _copy_response(self, resp: http.client.HTTPResponse, body: bytes) -> int:
        if self.command == "HEAD":
            resp.read()
            return 0
        if body:
            self.wfile.write(body)
            return len(body)
        received = 0
        while piece := resp.read(_PIECE):
            self.wfile.write(piece)
            received += len(piece)
        return received

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream_port: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream_port = upstream_port
        self.traffic = Traffic()
        self.lock = threading.Lock()

    def record(self, method: str, sent: int, received: int) -> None:
        with self.lock:
            self.traffic.requests[method] += 1
            self.traffic.sent += sent
            self.traffic.received += received

    def snapshot(self) -> Traffic:
        with self.lock:
            return self.traffic.copy()


@dataclass
class S3Server:
    """A running SeaweedFS and its counting proxy: the endpoint tools should use."""

    direct_url: str
    proxy: _ProxyServer

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.proxy.server_address[1]}"

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }

    def client(self) -> Any:
        """boto3 straight to SeaweedFS: set-up and inspection are not counted."""
        return boto3.client(
            "s3",
            endpoint_url=self.direct_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def make_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def bucket_bytes(self, name: str) -> int:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=name)
        return sum(o["Size"] for p in pages for o in p.get("Contents", ()))

    def traffic(self) -> Traffic:
        return self.proxy.snapshot()


def weed_binary() -> Path | None:
    path = Path(sys.executable).parent / "weed"
    return path if path.exists() else None


def _start_weed(root: Path) -> tuple[subprocess.Popen[bytes], int]:
    s3, master, filer, volume, admin = seaweed_ports(5)
    (root / "data").mkdir(parents=True, exist_ok=True)
    identities = root / "s3.json"
    identity = {"name": "admin", "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}]}  # fmt: skip
    identities.write_text(json.dumps({"identities": [identity]}))
    args = [
        str(weed_binary()), "mini", f"-dir={root / 'data'}", "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1", f"-s3.port={s3}", f"-s3.config={identities}",
        "-s3.autoCreateBucket=false", "-master.telemetry=false", "-admin.ui=false",
        f"-admin.port={admin}", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-master.port={master}", f"-filer.port={filer}", f"-volume.port={volume}",
    ]  # fmt: skip
    log = (root / "weed.log").open("ab")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, s3


def _wait_ready(server: S3Server, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Ready means a bucket can be created and written, not just that the port answers."""
    deadline = time.monotonic() + timeout
    client = server.client()
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited with {proc.returncode}")
        with contextlib.suppress(Exception):
            client.create_bucket(Bucket="warm-up")
        try:
            client.put_object(Bucket="warm-up", Key="k", Body=b"ok")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@contextlib.contextmanager
def seaweed(root: Path) -> Iterator[S3Server]:
    """SeaweedFS and its counting proxy, both stopped on the way out."""
    for attempt in range(3):  # another process may take a port between our check and weed's
        proc, port = _start_weed(root / f"try{attempt}")
        proxy = _ProxyServer(port)
        server = S3Server(f"http://127.0.0.1:{port}", proxy)
        try:
            _wait_ready(server, proc, timeout=60)
            break
        except Exception:
            stop(proc)
            proxy.server_close()
            if attempt == 2:
                raise
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        proxy.shutdown()
        proxy.server_close()
        stop(proc)
