"""Where each object's file goes and how it is written, so that git diffs stay minimal.

One file per object, ``<stack>/<namespace>/<kind>-<name>.yaml`` (``_cluster`` for
cluster-scoped objects). Keys are written in one fixed order (``apiVersion``, ``kind``,
``metadata``, then the rest alphabetically, at every depth alphabetically), block style,
list items at their key's indentation, no line folding, multi-line strings as literal
blocks: the same object always gives the
same bytes, and a changed field changes only its own lines.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import yaml

from stackwright.gitops.objects import LAYOUT_VERSION, RenderedObject, kind_label

HEAD_KEYS = ("apiVersion", "kind", "metadata")


def object_path(obj: RenderedObject) -> str:
    """``dev/shop/deployment-web.yaml``: relative to the output folder, ``/``-separated."""
    ident = obj.ident
    return f"{obj.stack}/{obj.folder}/{kind_label(ident).lower()}-{ident.name}.yaml"


def dump(manifest: Mapping[str, Any]) -> str:
    """The manifest as stable YAML text (plain values only: reveal or mask first)."""
    head = {k: _sorted(manifest[k]) for k in HEAD_KEYS if k in manifest}
    rest = {k: _sorted(manifest[k]) for k in sorted(manifest) if k not in HEAD_KEYS}
    return yaml.dump({**head, **rest}, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=1_000_000)


def content_digest(value: Any) -> str:
    """Changes whenever the file ``dump`` writes for ``value`` would (the layout's
    version is part of it)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{LAYOUT_VERSION}\n{text}".encode()).hexdigest()


def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _sorted(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [_sorted(v) for v in value]
    return value


_Dumper: type[yaml.SafeDumper] = type("_Dumper", (getattr(yaml, "CSafeDumper", yaml.SafeDumper),), {})
"""libyaml's emitter when PyYAML has it (four times faster); the pure-Python one writes
the same bytes."""


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text and not any(c in text for c in "\r\t") and text == text.rstrip(" ") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _str)
