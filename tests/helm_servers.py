"""Helm for the tests: the pinned helm binary, a call-counting wrapper around it, an
HTTP chart repository and an OCI registry, both served on 127.0.0.1 by the tests.

The binaries come from `make helm` and `make registry` (~/.cache/stackwright/bin). When
one is missing the tests that need it are skipped with that hint (tests/conftest.py turns
skips into a failure under CI=true).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CHART = REPO_ROOT / "examples" / "charts" / "app"
TOOLS_BIN = Path.home() / ".cache" / "stackwright" / "bin"
REGISTRY_BIN = TOOLS_BIN / "registry-v0.22.1"


def _require(path: Path | str | None, make_target: str) -> str:
    if path and os.access(path, os.X_OK):
        return str(path)
    pytest.skip(f"{path or make_target} is missing: run `make {make_target}` (a skip fails under CI=true)")


@pytest.fixture(scope="session")
def helm_binary() -> str:
    from stackwright.providers.k8s.helm.binary import pinned_path

    return _require(os.environ.get("STACKWRIGHT_HELM") or pinned_path(), "helm")


@dataclass
class HelmCalls:
    """helm behind a wrapper that logs each invocation's subcommand."""

    log: Path

    def count(self, subcommand: str) -> int:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return sum(1 for line in lines if line.split(" ", 1)[0] == subcommand)


@pytest.fixture
def helm_calls(helm_binary: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HelmCalls:
    log = tmp_path / "helm-calls.log"
    wrapper = tmp_path / "helm-wrapper"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec {helm_binary} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("STACKWRIGHT_HELM", str(wrapper))
    return HelmCalls(log)


def package_chart(helm: str, chart: Path, destination: Path, version: str | None = None) -> Path:
    args = [helm, "package", str(chart), "--destination", str(destination)]
    if version:
        args += ["--version", version]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return Path(out.strip().rsplit(": ", 1)[-1])


@dataclass
class Server:
    url: str


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def chart_repo(helm_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An HTTP chart repository (index.yaml + packaged charts) holding the example chart
    as versions 0.3.0 and 0.4.0."""
    root = tmp_path_factory.mktemp("chart-repo")
    for version in ("0.3.0", "0.4.0"):
        package_chart(helm_binary, EXAMPLE_CHART, root, version)
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    subprocess.run([helm_binary, "repo", "index", str(root), "--url", url], check=True, capture_output=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(url)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def oci_registry(helm_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """go-containerregistry's in-memory registry on a free port, with the example chart
    pushed as oci://127.0.0.1:PORT/charts/app:0.3.0."""
    binary = _require(REGISTRY_BIN, "registry")
    process = subprocess.Popen([binary, "-port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        port = _registry_port(process)
        url = f"oci://127.0.0.1:{port}/charts"
        package = package_chart(helm_binary, EXAMPLE_CHART, tmp_path_factory.mktemp("oci"), "0.3.0")
        subprocess.run([helm_binary, "push", str(package), url, "--plain-http"], check=True,
                       capture_output=True, env={**os.environ, "HELM_REGISTRY_CONFIG": os.devnull})
        yield Server(url)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _registry_port(process: subprocess.Popen[str]) -> int:
    assert process.stderr is not None
    for line in process.stderr:
        found = re.search(r"serving on port (\d+)", line)
        if found:
            threading.Thread(target=shutil.copyfileobj, args=(process.stderr, open(os.devnull, "w")),
                             daemon=True).start()
            return int(found.group(1))
    raise RuntimeError(f"the registry exited {process.wait()} before serving")
