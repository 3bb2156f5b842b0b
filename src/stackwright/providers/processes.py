"""Background servers on 127.0.0.1: is a pid still running, stop it, find a free port.

Shared by the local cloud and the local cluster, whose ``stop`` usually runs in another
process than the ``start`` that spawned the server.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path


def alive(pid: int) -> bool:
    """True while ``pid`` runs; an exited child is reaped, an exited stranger is not alive."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return not _zombie(pid)
    return waited == 0


def _zombie(pid: int) -> bool:
    """Exited but not yet reaped: the exited server waits for init to reap it (which some
    container inits never do); it is gone all the same."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    """Wait until every pid has exited; the ones still running after ``timeout``."""
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [pid for pid in pids if alive(pid)]


def terminate(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it is still there after ``timeout``."""
    os.kill(pid, signal.SIGTERM)
    for left in wait_gone([pid], timeout):
        os.kill(left, signal.SIGKILL)


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
