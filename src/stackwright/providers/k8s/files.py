"""Objects from YAML: ``ConfigFile`` (one file) and ``ConfigGroup`` (files, YAML text,
manifests). Each object becomes a child ``Object`` named ``namespace/name`` (or
``name``), so the same object keeps its URN when it moves between files."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from stackwright.errors import InputError
from stackwright.model import context
from stackwright.model.resource import Component, ResourceOptions
from stackwright.providers.k8s.objects import Object


class ConfigGroup(Component, type="k8s:yaml:ConfigGroup"):
    """Objects from YAML files (``files``, relative to the project folder), YAML text
    (``yaml``) and manifests (``objs``). ``resources`` holds them by child name."""

    def __init__(self, name: str, *, files: Sequence[str | Path] = (), yaml: Sequence[str] = (),
                 objs: Sequence[Mapping[str, Any]] = (), force: bool = False,
                 opts: ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        manifests: list[tuple[str, Mapping[str, Any]]] = []
        for path in files:
            manifests.extend((str(path), doc) for doc in _read(Path(path)))
        for index, text in enumerate(yaml):
            manifests.extend((f"yaml[{index}]", doc) for doc in _documents(text, f"yaml[{index}]"))
        manifests.extend((f"objs[{i}]", doc) for i, doc in enumerate(objs))
        self.resources: dict[str, Object] = {}
        for source, manifest in manifests:
            child = _child_name(manifest, source)
            self.resources[f"{manifest.get('kind')}:{child}"] = Object(child, manifest=manifest, force=force)


class ConfigFile(ConfigGroup, type="k8s:yaml:ConfigFile"):
    """Every object of one YAML file (several documents, ``kind: List`` included)."""

    def __init__(self, name: str, path: str | Path, *, force: bool = False,
                 opts: ResourceOptions | None = None) -> None:
        super().__init__(name, files=[path], force=force, opts=opts)


def _read(path: Path) -> list[Mapping[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _error(f"cannot read {path}: {exc.strerror or exc}") from None
    return _documents(text, str(path))


def _documents(text: str, source: str) -> list[Mapping[str, Any]]:
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise _error(f"{source} is not valid YAML: {exc}") from None
    return list(_flattened(docs, source))


def _flattened(docs: Iterable[Any], source: str) -> Iterable[Mapping[str, Any]]:
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, Mapping):
            raise _error(f"{source}: every YAML document must be a Kubernetes object")
        if str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
            yield from _flattened(doc["items"], source)
        else:
            yield doc


def _child_name(manifest: Mapping[str, Any], source: str) -> str:
    metadata = manifest.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(name, str) or not name:
        raise _error(f"{source}: a {manifest.get('kind', 'document')} without metadata.name")
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    return f"{namespace}/{name}" if isinstance(namespace, str) else name


def _error(message: str) -> InputError:
    file, line = context.user_frame()
    return InputError(message, file=file, line=line)
