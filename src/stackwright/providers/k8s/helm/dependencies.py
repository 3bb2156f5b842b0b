"""Local chart dependencies (``file://``) resolved without touching the user's folder.

A chart that depends on a library chart by ``repository: file://../library`` cannot be
rendered until the library is packaged into its ``charts/``. Instead of running
``helm dependency build`` in the user's folder (which writes ``charts/*.tgz`` and
``Chart.lock`` there), the chart is copied into the project's cache with its ``file://``
repositories made absolute, and ``helm dependency build`` runs on that copy: offline,
with helm's own version checks. The copy is keyed by the digests of the chart and of
every library it names, so it is built once per change of either.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from stackwright.providers.k8s.helm.binary import Helm, HelmCallFailed, HelmError
from stackwright.providers.k8s.helm.sources import folder_digest

FILE_SCHEME = "file://"


def chart_metadata(folder: Path) -> dict[str, Any]:
    """The folder's Chart.yaml; errors name the file."""
    path = folder / "Chart.yaml"
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise HelmError(f"{path} cannot be read as YAML: {exc}", file=str(path)) from None
    if not isinstance(data, dict) or not data.get("name"):
        raise HelmError(f"{path} has no chart name", file=str(path), hint="a Chart.yaml needs name: and version:")
    return data


def local_dependencies(folder: Path, metadata: dict[str, Any]) -> list[Path]:
    """The folders of the chart's ``file://`` dependencies, which must exist."""
    found = []
    for dependency in metadata.get("dependencies") or []:
        repository = str(dependency.get("repository") or "")
        if not repository.startswith(FILE_SCHEME):
            continue
        target = (folder / repository[len(FILE_SCHEME):]).resolve()
        if not (target / "Chart.yaml").is_file():
            raise HelmError(f"{folder / 'Chart.yaml'}: dependency {dependency.get('name')!r} points at {repository}, "
                            "which is not a chart folder", file=str(folder / "Chart.yaml"),
                            hint="file:// paths are relative to the chart's folder")
        found.append(target)
    return found


def with_dependencies(helm: Helm, folder: Path, cache_dir: Path) -> Path:
    """A folder helm can render: ``folder`` itself when it has no ``file://``
    dependency, else a prepared copy in the cache (built once per content)."""
    metadata = chart_metadata(folder)
    libraries = local_dependencies(folder, metadata)
    if not libraries:
        return folder
    key = hashlib.sha256("\0".join([folder_digest(str(folder))] + [folder_digest(str(lib)) for lib in libraries])
                         .encode()).hexdigest()[:32]
    target = cache_dir / "staged" / f"{folder.name}-{key}"
    if (target / "Chart.yaml").is_file():
        return target
    _build(helm, folder, metadata, target)
    return target


def _build(helm: Helm, folder: Path, metadata: dict[str, Any], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=target.parent)) / folder.name
    try:
        shutil.copytree(folder, work, ignore=shutil.ignore_patterns(".git"))
        (work / "Chart.yaml").write_text(yaml.safe_dump(_absolute(folder, metadata), sort_keys=False))
        helm.run(["dependency", "build", str(work), "--skip-refresh"])
        os.replace(work, target)
    except HelmCallFailed as exc:
        raise HelmError(f"helm dependency build failed for chart {folder}: {exc}", file=str(folder / "Chart.yaml"),
                        hint="check the dependencies in its Chart.yaml (name, version, file:// path)") from None
    except OSError as exc:
        if not (target / "Chart.yaml").is_file():  # not another run that got there first
            raise HelmError(f"cannot prepare chart {folder} in {target.parent}: {exc}") from None
    finally:
        shutil.rmtree(work.parent, ignore_errors=True)


def _absolute(folder: Path, metadata: dict[str, Any]) -> dict[str, Any]:
    """Chart.yaml with every ``file://`` repository made absolute, so the copy finds them."""
    dependencies = []
    for dependency in metadata.get("dependencies") or []:
        repository = str(dependency.get("repository") or "")
        if repository.startswith(FILE_SCHEME):
            dependency = {**dependency, "repository": FILE_SCHEME + str((folder / repository[7:]).resolve())}
        dependencies.append(dependency)
    return {**metadata, "dependencies": dependencies}
