"""Finding and running the real ``helm`` binary.

The binary is looked up in this order: ``$STACKWRIGHT_HELM``, the pinned build that
``make helm`` puts in ``~/.cache/stackwright/bin/helm-<HELM_VERSION>``, then ``helm`` on
``PATH``. Its version is part of every render's cache key; it is read once per binary
(keyed by path, size and modification time) so that a warm run never calls helm.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from stackwright.errors import PlanError

HELM_VERSION = "v3.22.0"
"""The version ``make helm`` builds from tools/helm/go.mod (keep the two equal)."""


class HelmError(PlanError):
    """helm is missing, or it refused a chart: a plan error naming chart and values."""


@dataclass(frozen=True)
class Helm:
    path: str
    version: str

    def run(self, args: Sequence[str], *, stdin: str | None = None, timeout: float = 300.0) -> str:
        """helm's stdout; ``HelmCallFailed`` with helm's own message when it exits non-zero.
        ``stdin`` is what helm reads as ``-`` (``-f -``: values without a file)."""
        try:
            done = subprocess.run([self.path, *args], input=stdin, capture_output=True, text=True,
                                  timeout=timeout, env=helm_environment())
        except subprocess.TimeoutExpired:
            raise HelmCallFailed(f"helm {args[0]} did not finish within {timeout:.0f} s") from None
        except OSError as exc:
            raise HelmCallFailed(f"cannot run {self.path}: {exc.strerror or exc}") from None
        if done.returncode != 0:
            raise HelmCallFailed(error_line(done.stdout + "\n" + done.stderr) or f"helm exited {done.returncode}")
        return done.stdout


GO_RUNTIME_DEFAULTS = {"GOGC": "off", "GOMEMLIMIT": "512MiB"}
"""How the Go runtime in each helm process collects garbage: not at all below 512 MiB
of heap. A ``helm template`` lives a fraction of a second, and a quarter of its CPU
time went to collections during start-up, when the heap only grows. Variables the
user set win."""


def helm_environment() -> dict[str, str]:
    """The environment of every helm process: this one's, with ``GO_RUNTIME_DEFAULTS``
    where unset."""
    return {**GO_RUNTIME_DEFAULTS, **os.environ}


class HelmCallFailed(HelmError):
    """helm exited non-zero; the message is helm's own error line. Callers turn it into
    a HelmError that names the chart and values."""


def pinned_path() -> Path:
    return Path.home() / ".cache" / "stackwright" / "bin" / f"helm-{HELM_VERSION}"


def find_helm(cache_dir: Path) -> Helm:
    """The helm binary to use, with its version."""
    path = _locate()
    return Helm(path=path, version=_version(path, cache_dir))


def _locate() -> str:
    configured = os.environ.get("STACKWRIGHT_HELM")
    if configured:
        if not os.access(configured, os.X_OK):
            raise HelmError(f"STACKWRIGHT_HELM={configured} is not an executable file",
                            hint="point it at a helm binary, or unset it to use the one `make helm` builds")
        return configured
    pinned = pinned_path()
    if os.access(pinned, os.X_OK):
        return str(pinned)
    found = shutil.which("helm")
    if found:
        return found
    raise HelmError(
        "the helm binary was not found (needed to render Helm charts)",
        hint=f"run `make helm` in the Stackwright repository (builds helm {HELM_VERSION} "
        f"into {pinned}), or set STACKWRIGHT_HELM to a helm binary",
    )


_versions: dict[tuple[str, Path], str] = {}
"""Versions already read in this process, by binary fingerprint and cache."""


def _version(path: str, cache_dir: Path) -> str:
    stat = os.stat(path)
    fingerprint = hashlib.sha256(f"{os.path.realpath(path)}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    key = (fingerprint.hexdigest(), cache_dir)
    if key not in _versions:
        _versions[key] = _recorded_version(path, fingerprint.hexdigest()[:32], cache_dir)
    return _versions[key]


def _recorded_version(path: str, fingerprint: str, cache_dir: Path) -> str:
    record = cache_dir / "helm-versions" / f"{fingerprint}.json"
    try:
        return str(json.loads(record.read_text())["version"])
    except (OSError, ValueError, KeyError):
        pass
    try:
        version = Helm(path, "").run(["version", "--template", "{{.Version}}"], timeout=60).strip()
    except HelmCallFailed as exc:
        raise HelmError(f"{path} does not answer `helm version`: {exc}",
                        hint="set STACKWRIGHT_HELM to a working helm binary, or run `make helm`") from exc
    write_atomic(record, json.dumps({"path": path, "version": version}))
    return version


def write_atomic(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of it (parallel runs share caches)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(text)}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def error_line(output: str) -> str:
    """helm's most telling line: lint's first ``[ERROR]``, else the ``Error:`` line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for marker in ("[ERROR]", "Error:"):
        found = [line for line in lines if line.startswith(marker)]
        if found:
            return found[0].removeprefix(marker).strip()
    return lines[-1] if lines else ""
