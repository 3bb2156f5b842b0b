"""Many renders in one long-lived process: ``helm-render`` (tools/helm/render).

``make helm`` builds it beside the pinned helm, from Helm's own Go packages at the same
version, and for every request it prints exactly what ``helm template`` prints (a test
holds the two equal). A ``helm template`` process spends most of its ~50 ms of CPU
starting up; ``helm-render`` starts once per command and renders a release of a small
chart in a few milliseconds, as many at a time as there are cores.

It stands in for ``helm template`` only when the helm in use is the pinned build: a
helm chosen by ``STACKWRIGHT_HELM`` or found on ``PATH`` renders every release itself.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any

from stackwright.providers.k8s.helm.binary import (
    HELM_VERSION, Helm, HelmCallFailed, HelmError, error_line, pinned_path,
)

PROTOCOL = "p1"
"""Part of the binary's name: a change of the request or response format gets a new build."""
TIMEOUT = 300.0


def renderer_path() -> Path:
    return pinned_path().with_name(f"helm-render-{HELM_VERSION}-{PROTOCOL}")


class Renderer:
    """One ``helm-render`` process; ``render`` may be called from many threads."""

    def __init__(self, path: Path) -> None:
        self._errors: IO[bytes] = tempfile.TemporaryFile()
        self._process = subprocess.Popen([str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self._errors)
        self._ids = itertools.count()
        self._pending: dict[int, Future[dict[str, Any]]] = {}
        self._pending_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._exited: str | None = None
        threading.Thread(target=self._read, name="helm-render", daemon=True).start()

    def render(self, request: Mapping[str, Any]) -> str:
        """What ``helm template`` prints for ``request``; ``HelmCallFailed`` with helm's
        own message when it refuses the chart or the values."""
        future: Future[dict[str, Any]] = Future()
        with self._pending_lock:
            if self._exited is not None:
                raise self._exit_error()
            ident = next(self._ids)
            self._pending[ident] = future
        line = json.dumps({**request, "id": ident}).encode() + b"\n"
        try:
            with self._write_lock:
                assert self._process.stdin is not None
                _write_all(self._process.stdin.fileno(), line)
        except OSError:
            pass  # it exited: _read fails the future with the reason
        try:
            answer = future.result(timeout=TIMEOUT)
        except TimeoutError:
            raise HelmCallFailed(f"helm-render did not answer within {TIMEOUT:.0f} s") from None
        except _Exited:
            raise self._exit_error() from None
        if "error" in answer:
            raise HelmCallFailed(error_line("Error: " + str(answer["error"])))
        return str(answer["manifest"])

    @property
    def alive(self) -> bool:
        return self._exited is None

    def close(self) -> None:
        """Ends the process (it exits when its input ends)."""
        if self._process.stdin is not None and not self._process.stdin.closed:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._errors.close()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            answer = json.loads(line)
            with self._pending_lock:
                future = self._pending.pop(int(answer["id"]), None)
            if future is not None:
                future.set_result(answer)
        self._process.wait()
        self._failed(f"helm-render exited ({self._process.returncode}): {self._stderr() or 'no message'}")

    def _failed(self, reason: str) -> None:
        with self._pending_lock:
            self._exited = reason
            pending, self._pending = list(self._pending.values()), {}
        for future in pending:
            future.set_exception(_Exited())

    def _exit_error(self) -> HelmError:
        """Not a chart's fault: the message says what the process said, the hint how to
        get a working one."""
        return HelmError(str(self._exited), hint=f"rebuild it: delete {renderer_path()} and run `make helm` "
                         "(or set STACKWRIGHT_HELM to render with a helm binary instead)")

    def _stderr(self) -> str:
        try:
            self._errors.seek(0)
            return error_line(self._errors.read().decode(errors="replace"))
        except (OSError, ValueError):
            return ""


def _write_all(fd: int, data: bytes) -> None:
    """Past the file object's buffer, which could not be flushed (nor closed) once the
    process is gone."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _Exited(Exception):
    """The process ended with requests unanswered."""


_renderer: tuple[int, Renderer] | None = None
_renderer_lock = threading.Lock()


def shared_renderer(helm: Helm) -> Renderer | None:
    """This process's renderer (started on first use), or None when ``helm`` is not
    the pinned build or ``make helm`` did not build ``helm-render``."""
    global _renderer
    if helm.path != str(pinned_path()) or helm.version != HELM_VERSION:
        return None
    path = renderer_path()
    if not os.access(path, os.X_OK):
        return None
    with _renderer_lock:
        if _renderer is None or _renderer[0] != os.getpid() or not _renderer[1].alive:
            _renderer = (os.getpid(), Renderer(path))
            atexit.register(_renderer[1].close)
        return _renderer[1]


def stop_shared_renderer() -> None:
    """Ends this process's renderer, if one runs (the next render starts another)."""
    global _renderer
    with _renderer_lock:
        running, _renderer = _renderer, None
    if running is not None and running[0] == os.getpid():
        running[1].close()
