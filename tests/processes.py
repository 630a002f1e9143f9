"""Small helpers shared by the fixtures that run servers on 127.0.0.1."""

from __future__ import annotations

import random
import selectors
import socket
import subprocess
import time
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop(proc: subprocess.Popen[Any], timeout: float = 10) -> None:
    """Ask politely, then insist: a server must never outlive its test."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for_line(proc: subprocess.Popen[str], prefix: str, timeout: float = 60) -> str:
    """The first line of proc's stdout that starts with prefix; fails (never hangs) when it
    does not come in time or the process ends first."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not sel.select(left):
                break
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"the process ended before printing {prefix!r}")
            if line.startswith(prefix):
                return line
    raise AssertionError(f"no line starting {prefix!r} within {timeout} s")


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def seaweed_ports(count: int) -> list[int]:
    """Ports p in [10000, 40000) with p and p + 10000 free: every weed service opens both."""
    ports: list[int] = []
    while len(ports) < count:
        p = random.randrange(10000, 40000)
        if p not in ports and p + 10000 not in ports and _is_free(p) and _is_free(p + 10000):
            ports.append(p)
    return ports
