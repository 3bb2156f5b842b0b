"""Where a chart comes from: a local folder, an HTTP chart repository (``index.yaml``)
or an OCI registry; and fetching it once.

A chart from a repository or registry with an exact version is pulled once into the
project's cache and read from there afterwards, so an unchanged release costs no helm
call. A version range (or none) is resolved by ``helm pull`` on every run.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from stackwright.providers.k8s.helm.binary import Helm, HelmCallFailed, HelmError

_EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?$")


@dataclass(frozen=True)
class ChartSource:
    """A chart's address. ``kind`` is ``path``, ``repo`` or ``oci``."""

    kind: str
    location: str
    chart: str
    version: str | None = None
    plain_http: bool = False

    def describe(self) -> str:
        if self.kind == "path":
            return self.location
        if self.kind == "oci":
            return self.location + (f" {self.version}" if self.version else "")
        return f"{self.chart} from {self.location}" + (f" {self.version}" if self.version else "")


@dataclass(frozen=True)
class FetchedChart:
    """A chart on local disk (folder or ``.tgz``) and the digest of its content."""

    path: str
    digest: str


def fetch(helm: Helm, source: ChartSource, cache_dir: Path) -> FetchedChart:
    """The chart on local disk; pulled (once per exact version) when it is remote."""
    if source.kind == "path":
        return FetchedChart(path=source.location, digest=folder_digest(source.location))
    with _lock_for(_key(source)):
        return _fetch_remote(helm, source, cache_dir)


def _fetch_remote(helm: Helm, source: ChartSource, cache_dir: Path) -> FetchedChart:
    exact = source.version is not None and _EXACT_VERSION.match(source.version)
    target = cache_dir / "charts" / f"{_key(source)}.tgz"
    if exact and target.exists():
        return FetchedChart(path=str(target), digest=file_digest(target))
    pulled = _pull(helm, source, cache_dir)
    if not exact:
        target = cache_dir / "charts" / f"{file_digest(pulled)}.tgz"
    os.replace(pulled, target)
    shutil.rmtree(pulled.parent, ignore_errors=True)
    return FetchedChart(path=str(target), digest=file_digest(target))


def _pull(helm: Helm, source: ChartSource, cache_dir: Path) -> Path:
    (cache_dir / "charts").mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=".pull-", dir=cache_dir / "charts"))
    args = ["pull", source.location if source.kind == "oci" else source.chart, "--destination", str(workdir)]
    if source.kind == "repo":
        args += ["--repo", source.location]
    if source.version:
        args += ["--version", source.version]
    if source.plain_http:
        args.append("--plain-http")
    try:
        helm.run(args)
    except HelmCallFailed as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        raise HelmError(f"could not fetch chart {source.describe()}: {exc}",
                        hint="check the repository URL, chart name and version") from None
    archives = sorted(workdir.glob("*.tgz"))
    if len(archives) != 1:
        shutil.rmtree(workdir, ignore_errors=True)
        raise HelmError(f"helm pull of {source.describe()} left {len(archives)} archives, expected one")
    return archives[0]


_source_locks: dict[str, threading.Lock] = {}
_locks_lock = threading.Lock()


def _lock_for(key: str) -> threading.Lock:
    """One pull per chart at a time: releases rendered in parallel often share a chart."""
    with _locks_lock:
        return _source_locks.setdefault(key, threading.Lock())


def _key(source: ChartSource) -> str:
    text = "\0".join((source.kind, source.location, source.chart, source.version or ""))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def file_digest(path: Path | str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


_folder_digests: dict[str, str] = {}
_folder_lock = threading.Lock()


def folder_digest(folder: str) -> str:
    """sha256 over every file's relative path and content; computed once per process
    (a program run), since many releases often share one chart."""
    root = os.path.abspath(folder)
    with _folder_lock:
        if root in _folder_digests:
            return _folder_digests[root]
    if not os.path.isdir(root) or not os.path.isfile(os.path.join(root, "Chart.yaml")):
        raise HelmError(f"{folder} is not a chart folder (it has no Chart.yaml)",
                        hint="path= names a folder holding Chart.yaml, relative to the project")
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for filename in sorted(filenames):
            full = os.path.join(dirpath, filename)
            digest.update(os.path.relpath(full, root).encode() + b"\0")
            digest.update(bytes.fromhex(file_digest(full)))
    with _folder_lock:
        _folder_digests[root] = digest.hexdigest()
    return _folder_digests[root]
