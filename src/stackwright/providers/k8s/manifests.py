"""Pure functions over Kubernetes manifests: identity, type tokens, the fields
Stackwright manages, drift and the lines a reviewer reads. No I/O, no client.

A manifest is what the program declares; it is exactly what server-side apply sends
(plus our label and annotation), so the fields it holds are the fields Stackwright's
field manager owns. Comparisons are made on those fields only: the live object's
defaults, status and other managers' fields never show as a change.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from stackwright.errors import InputError

MANAGER = "stackwright"
"""The field manager of every server-side apply Stackwright makes."""
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
URN_ANNOTATION = "stackwright.io/urn"
"""Which resource made an object, so an interrupted create is found again and an
object of the same name made by someone else is never taken over silently."""
SKIP_AWAIT_ANNOTATION = "stackwright.io/skip-await"
TIMEOUT_ANNOTATION = "stackwright.io/timeout"
TOKEN_PREFIX = "k8s:"

SERVER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
                   "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "ownerReferences")
CLIENT_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/revision",
                      URN_ANNOTATION)

IMMUTABLE: dict[str, tuple[tuple[str, ...], ...]] = {
    "Deployment": (("spec", "selector"),),
    "StatefulSet": (("spec", "selector"), ("spec", "serviceName"), ("spec", "volumeClaimTemplates"),
                    ("spec", "podManagementPolicy")),
    "DaemonSet": (("spec", "selector"),),
    "Job": (("spec", "selector"), ("spec", "template"), ("spec", "completions")),
    "Service": (("spec", "clusterIP"),),
    "PersistentVolumeClaim": (("spec", "storageClassName"), ("spec", "accessModes"),
                              ("spec", "volumeName"), ("spec", "selector")),
    "RoleBinding": (("roleRef",),),
    "ClusterRoleBinding": (("roleRef",),),
    "ConfigMap": (("data",), ("binaryData",)),
    "Secret": (("data",), ("stringData",), ("type",)),
}
"""Fields the API server refuses to change in place: a new value replaces the object
(deleting it first, since the name stays). ConfigMap and Secret data is listed for
``immutable: true`` objects only (see ``immutable_changes``)."""


@dataclass(frozen=True)
class Identity:
    api_version: str
    kind: str
    name: str
    namespace: str | None

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def token(self) -> str:
        return type_token(self.api_version, self.kind)

    def id(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    def __str__(self) -> str:
        return f"{self.kind} {self.id()}"


class ManifestError(InputError):
    """A manifest is not an object Kubernetes could accept; the message says why."""


def type_token(api_version: str, kind: str) -> str:
    """``apps/v1`` + ``Deployment`` → ``k8s:apps/v1:Deployment``; the core group is
    spelled ``core`` (``k8s:core/v1:ConfigMap``)."""
    group_version = api_version if "/" in api_version else f"core/{api_version}"
    return f"{TOKEN_PREFIX}{group_version}:{kind}"


def parse_token(token: str) -> tuple[str, str]:
    """``k8s:apps/v1:Deployment`` → ``("apps/v1", "Deployment")``."""
    prefix, group_version, kind = token.split(":", 2) if token.count(":") >= 2 else ("", "", "")
    if prefix != "k8s" or "/" not in group_version or not kind:
        raise ManifestError(f"{token!r} is not a Kubernetes type (k8s:GROUP/VERSION:Kind, "
                            "e.g. k8s:apps/v1:Deployment or k8s:core/v1:ConfigMap)")
    group, _, version = group_version.partition("/")
    return (version if group == "core" else group_version), kind


def identity(manifest: Mapping[str, Any], default_namespace: str | None = None) -> Identity:
    """Who the manifest names. Raises ManifestError for a malformed one."""
    api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
    if not isinstance(api_version, str) or not api_version:
        raise ManifestError("the manifest has no apiVersion")
    if not isinstance(kind, str) or not kind:
        raise ManifestError("the manifest has no kind")
    metadata = manifest.get("metadata")
    if not isinstance(metadata, Mapping) or not isinstance(metadata.get("name"), str) or not metadata["name"]:
        raise ManifestError(f"the {kind} manifest has no metadata.name")
    namespace = metadata.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise ManifestError(f"metadata.namespace of {kind} {metadata['name']} must be a string")
    return Identity(api_version, kind, metadata["name"], namespace or default_namespace)


def split_id(resource_id: str) -> tuple[str | None, str]:
    """``ns/name`` → ``("ns", "name")``; a cluster-scoped ``name`` → ``(None, "name")``."""
    namespace, _, name = resource_id.rpartition("/")
    return namespace or None, name


def annotations_of(manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = manifest.get("metadata") or {}
    found = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    return found if isinstance(found, Mapping) else {}


def with_ownership(manifest: Mapping[str, Any], urn: str, namespace: str | None) -> dict[str, Any]:
    """What server-side apply sends: the manifest with the namespace filled in, our
    label and the annotation naming the resource."""
    body = dict(manifest)
    metadata = dict(body.get("metadata") or {})
    if namespace is not None:
        metadata["namespace"] = namespace
    metadata["labels"] = {**(metadata.get("labels") or {}), MANAGED_BY_LABEL: MANAGER}
    metadata["annotations"] = {**(metadata.get("annotations") or {}), URN_ANNOTATION: urn}
    body["metadata"] = metadata
    return body


def owner_urn(live: Mapping[str, Any]) -> str | None:
    value = annotations_of(live).get(URN_ANNOTATION)
    return value if isinstance(value, str) else None


# --- the fields we manage -------------------------------------------------------------


def project(live: Any, shape: Any) -> Any:
    """``live`` cut down to the fields ``shape`` declares: the view of the live object
    that the manifest's author can see. Lists of objects are matched by ``name`` when
    every element has one, else by position; other lists are taken whole."""
    if isinstance(shape, Mapping):
        if not isinstance(live, Mapping):
            return live
        return {k: project(live[k], v) for k, v in shape.items() if k in live}
    if isinstance(shape, list) and isinstance(live, list):
        if _named(shape) and _named(live):
            by_name = {item["name"]: item for item in live}
            matched = [project(by_name[item["name"]], item) for item in shape if item["name"] in by_name]
            return matched if len(live) == len(shape) else matched + [
                item for item in live if item["name"] not in {s["name"] for s in shape}]
        if len(shape) == len(live):
            return [project(a, b) for a, b in zip(live, shape)]
    return live


def with_string_data(live: Mapping[str, Any]) -> dict[str, Any]:
    """A live Secret with its ``data`` also as the ``stringData`` text a manifest may
    declare: the server turns ``stringData`` into base64 ``data`` and never returns it,
    so without this view a declared ``stringData`` could not be compared with anything.
    A value that is not UTF-8 text stays base64 (it cannot equal a declared string)."""
    data = live.get("data")
    if not isinstance(data, Mapping):
        return dict(live)
    return {**live, "stringData": {key: _text(value) for key, value in data.items()}}


def _text(encoded: Any) -> Any:
    if not isinstance(encoded, str):
        return encoded
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return encoded


def union(old: Any, new: Any) -> Any:
    """Both manifests' fields: the shape to project on when what matters is what an
    apply of ``new`` removes as well as what it sets."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return {**old, **{k: union(old[k], v) if k in old else v for k, v in new.items()}}
    return new


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, Mapping) and isinstance(i.get("name"), str) for i in items)


def drifted(declared: Any, applied: Any, live: Any) -> Any:
    """The declared manifest with every field whose live value differs from what the
    server stored when Stackwright last applied it replaced by the live value (or
    removed, when it is gone). ``applied`` and ``live`` are projections on ``declared``.
    Comparing with the stored value rather than the declared one keeps the server's
    normalisation (``0.5`` CPU stored as ``500m``) from reading as drift."""
    if applied == live:
        return declared
    if isinstance(declared, Mapping) and isinstance(applied, Mapping) and isinstance(live, Mapping):
        out = {}
        for key, value in declared.items():
            if key not in live:
                if key not in applied:
                    out[key] = value
                continue
            out[key] = drifted(value, applied.get(key, value), live[key]) if key in applied else live[key]
        return out
    if isinstance(declared, list) and isinstance(applied, list) and isinstance(live, list) \
            and len(declared) == len(applied) == len(live):
        return [drifted(d, a, v) for d, a, v in zip(declared, applied, live)]
    return live


ABSENT: Any = object()
"""What ``at_field`` finds where an object has no such field."""


def at_field(value: Any, path: str) -> Any:
    """The value at a field path as the API server writes it in a conflict
    (``.spec.replicas``, ``.spec.template.spec.containers[name="web"].image``,
    ``.spec.ports[containerPort=80,protocol="TCP"]``, ``.metadata.finalizers[="a"]``,
    ``[0]``), or ``ABSENT``. A map key may itself hold dots
    (``.metadata.labels.app.kubernetes.io/name``): the keys the object has decide."""
    if not path:
        return value
    if path[0] == ".":
        if not isinstance(value, Mapping):
            return ABSENT
        rest = path[1:]
        keys = [k for k in value
                if isinstance(k, str) and rest.startswith(k) and rest[len(k):len(k) + 1] in ("", ".", "[")]
        for key in sorted(keys, key=len, reverse=True):
            found = at_field(value[key], rest[len(key):])
            if found is not ABSENT:
                return found
        return ABSENT
    if path[0] != "[" or not isinstance(value, list):
        return ABSENT
    end = _bracket_end(path)
    if end < 0:
        return ABSENT
    selector, rest = path[1:end], path[end + 1:]
    try:
        match = _selector(selector)
    except ValueError:
        return ABSENT
    for index, item in enumerate(value):
        if match(index, item):
            return at_field(item, rest)
    return ABSENT


def _bracket_end(path: str) -> int:
    """The index of the ``]`` closing the ``[`` at 0 (JSON strings may hold ``]``)."""
    quoted = escaped = False
    for index, char in enumerate(path):
        if escaped:
            escaped = False
        elif quoted:
            escaped, quoted = char == "\\", char != '"'
        elif char == '"':
            quoted = True
        elif char == "]":
            return index
    return -1


def _selector(text: str) -> Any:
    """A list element matcher from ``0``, ``="value"`` or ``key=value,key=value``
    (values in JSON). Raises ValueError for anything else."""
    if text.isdigit():
        wanted = int(text)
        return lambda index, item: index == wanted
    decoder = json.JSONDecoder()
    if text.startswith("="):
        element, end = decoder.raw_decode(text, 1)
        if end != len(text):
            raise ValueError(text)
        return lambda index, item: item == element
    keys: dict[str, Any] = {}
    position = 0
    while position < len(text):
        equals = text.index("=", position)
        keys[text[position:equals]], position = decoder.raw_decode(text, equals + 1)
        if position < len(text):
            if text[position] != ",":
                raise ValueError(text)
            position += 1
    if not keys:
        raise ValueError(text)
    return lambda index, item: isinstance(item, Mapping) and all(
        k in item and item[k] == v for k, v in keys.items())


def without_fields(theirs: Mapping[str, Any], ours: Mapping[str, Any]) -> dict[str, Any]:
    """A field manager's field set (``managedFields[].fieldsV1``: ``f:name``,
    ``k:{...}``, ``v:...`` and ``i:N`` nodes, ``.`` for the node itself, ``{}`` for a
    field owned whole) less the fields of ``ours``."""
    out: dict[str, Any] = {}
    for key, child in theirs.items():
        mine = ours.get(key)
        if mine is None or (not isinstance(mine, Mapping)):
            out[key] = child
        elif key == "." or not mine:
            continue  # ours too, whole: no longer theirs
        elif not child or not isinstance(child, Mapping):
            out[key] = child  # theirs whole, ours in part: left as it is
        else:
            rest = without_fields(child, mine)
            if rest:
                out[key] = rest
    return out


def importable(live: Mapping[str, Any]) -> dict[str, Any]:
    """A live object as a manifest to declare: without status, server-set metadata and
    the annotations tools (ours included) add."""
    manifest = {k: v for k, v in live.items() if k != "status"}
    metadata = {k: v for k, v in dict(manifest.get("metadata") or {}).items() if k not in SERVER_METADATA}
    kept = {k: v for k, v in annotations_of(live).items() if k not in CLIENT_ANNOTATIONS}
    labels = {k: v for k, v in (metadata.get("labels") or {}).items() if k != MANAGED_BY_LABEL}
    metadata.pop("annotations", None)
    metadata.pop("labels", None)
    if labels:
        metadata["labels"] = labels
    if kept:
        metadata["annotations"] = kept
    manifest["metadata"] = metadata
    return manifest


def immutable_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Dotted paths of fields the server would refuse to change in place."""
    kind = str(new.get("kind", ""))
    if kind in ("ConfigMap", "Secret") and not old.get("immutable"):
        return ["type"] if kind == "Secret" and old.get("type") != new.get("type") else []
    return [".".join(path) for path in IMMUTABLE.get(kind, ()) if _at(old, path) != _at(new, path)]


def _at(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


# --- what reviewers read --------------------------------------------------------------


def changes(old: Any, new: Any, path: str = "") -> Iterator[str]:
    """One line per leaf that differs between two projections of an object."""
    if old == new:
        return
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new), key=str):
            yield from changes(old.get(key, _ABSENT), new.get(key, _ABSENT), f"{path}.{key}" if path else str(key))
        return
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new)):
            yield from changes(a, b, f"{path}[{index}]")
        return
    if old is _ABSENT:
        yield f"+ {path}: {_short(new)}"
    elif new is _ABSENT:
        yield f"- {path}: {_short(old)}"
    else:
        yield f"~ {path}: {_short(old)} -> {_short(new)}"


_ABSENT: Any = object()


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
