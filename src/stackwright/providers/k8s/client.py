"""Talking to one Kubernetes API server through lightkube: connections, kinds, errors.

lightkube is imported here only, inside functions, so ``stackwright --help`` and
programs that never touch a cluster do not pay its import. Every object is sent and
received as a plain dict (lightkube's generic resources), so fields newer than
lightkube's models survive a round trip unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml

from stackwright.errors import ConfigError, NotFoundError, ProviderError
from stackwright.providers.k8s.manifests import MANAGER, Identity

T = TypeVar("T")

EXEC_TOKEN_LIFETIME = 600.0
"""Seconds a connection authenticated by an EKS token is reused; the token itself is
valid for 15 minutes."""
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
INVALID_OBJECT = re.compile(r"failed to create typed patch object|field not declared in schema")
"""What kube-apiserver says, with HTTP 500, when a server-side apply does not fit the
kind's schema: the same manifest fails the same way however often it is sent."""


@dataclass(frozen=True)
class Kind:
    """How the API serves one kind: its REST class and whether it is namespaced."""

    resource: Any
    namespaced: bool
    plural: str


class Conflict(ProviderError):
    """A server-side apply refused because other field managers own fields it sets:
    ``fields`` holds each field path (as the API server writes it,
    ``.spec.template.spec.containers[name="web"].image``) with its manager."""

    def __init__(self, action: str, fields: tuple[tuple[str, str], ...], fallback: str = "",
                 hint: str | None = None) -> None:
        super().__init__(f"{action}: {conflict_message(fields, fallback)}", hint=hint)
        self.action = action
        self.fields = fields


class UnknownKind(ProviderError):
    """The cluster serves no such kind: a typo, or a CRD not applied (or deleted). No
    object of that kind can exist, so a read finds none; a create fails at once."""


@dataclass(frozen=True)
class Settings:
    """Where a connection goes: kubeconfig (text or path), context, default namespace."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None

    @classmethod
    def of(cls, *layers: Mapping[str, Any]) -> Settings:
        """Later layers win; a provider instance's outputs override the stack config."""
        merged: dict[str, Any] = {}
        for layer in layers:
            merged.update({k: v for k, v in layer.items() if v is not None})
        kubeconfig = merged.get("kubeconfig")
        return cls(str(kubeconfig) if kubeconfig is not None else None, merged.get("context"),
                   merged.get("namespace"))


class Connection:
    """A lightkube client for one cluster and context, with the kinds it serves."""

    def __init__(self, settings: Settings) -> None:
        from lightkube import Client

        config, self.expires = _kubeconfig(settings)
        self.client = Client(config, field_manager=MANAGER, trust_env=False,
                             namespace=settings.namespace)
        self.namespace: str = self.client.namespace or "default"
        self._kinds: dict[tuple[str, str], Kind] = {}
        self._lock = threading.Lock()

    def kind(self, api_version: str, kind: str) -> Kind:
        """The REST class of a kind; custom kinds are found among the cluster's CRDs,
        read again on a miss (a CRD applied a moment ago)."""
        key = (api_version, kind)
        found = self._kinds.get(key) or _builtin(api_version, kind)
        if found is None:
            self._learn_custom_kinds()
            found = self._kinds.get(key)
        if found is None:
            raise UnknownKind(
                f"the cluster serves no kind {kind} in {api_version}",
                hint="check the spelling of the kind and apiVersion; a custom kind is served once its "
                     "CustomResourceDefinition is in the cluster (or declared in the program)")
        self._kinds[key] = found
        return found

    def _learn_custom_kinds(self) -> None:
        from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

        crds = call("list CustomResourceDefinitions",
                    lambda: [c.to_dict() for c in self.client.list(CustomResourceDefinition)])
        with self._lock:
            for crd in crds:
                spec = crd.get("spec") or {}
                names = spec.get("names") or {}
                for version in spec.get("versions") or []:
                    if version.get("served"):
                        api_version = f"{spec['group']}/{version['name']}"
                        self._kinds[(api_version, names["kind"])] = _generic(
                            spec["group"], version["name"], names["kind"], names["plural"],
                            spec.get("scope") == "Namespaced")

    # --- object operations (dicts in, dicts out) -------------------------------------

    def get(self, ident: Identity) -> dict[str, Any] | None:
        kind = self.kind(ident.api_version, ident.kind)
        return call_or_none(f"read {ident}", lambda: _as_dict(self.client.get(
            kind.resource, ident.name, namespace=self._namespace(kind, ident))))

    def apply(self, ident: Identity, body: Mapping[str, Any], *, force: bool = False,
              dry_run: bool = False) -> dict[str, Any]:
        from lightkube.types import PatchType

        kind = self.kind(ident.api_version, ident.kind)
        verb = "dry-run apply" if dry_run else "apply"
        return call(f"{verb} {ident}", lambda: _as_dict(self.client.patch(
            kind.resource, ident.name, dict(body), namespace=self._namespace(kind, ident),
            patch_type=PatchType.APPLY, field_manager=MANAGER, force=force, dry_run=dry_run)))

    def set_managed_fields(self, ident: Identity, resource_version: str, entries: list[Any]) -> dict[str, Any]:
        """Replace the object's ``metadata.managedFields`` (which fields each manager
        owns), if it is still at ``resource_version``; no value changes."""
        from lightkube.types import PatchType

        kind = self.kind(ident.api_version, ident.kind)
        ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": resource_version},
               {"op": "replace", "path": "/metadata/managedFields", "value": entries}]
        return call(f"set the field managers of {ident}", lambda: _as_dict(self.client.patch(
            kind.resource, ident.name, ops, namespace=self._namespace(kind, ident), patch_type=PatchType.JSON)))

    def delete(self, ident: Identity) -> bool:
        """Delete with foreground propagation: the object goes once its dependents
        (a Deployment's ReplicaSets and Pods) are gone. False when already gone."""
        from lightkube.types import CascadeType

        kind = self.kind(ident.api_version, ident.kind)
        done = call_or_none(f"delete {ident}", lambda: self.client.delete(
            kind.resource, ident.name, namespace=self._namespace(kind, ident),
            cascade=CascadeType.FOREGROUND) or True)
        return done is not None

    def list(self, api_version: str, kind: str, namespace: str | None,
             labels: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        found = self.kind(api_version, kind)
        scope = (namespace or "*") if found.namespaced else None
        return call(f"list {kind}", lambda: [_as_dict(o) for o in self.client.list(
            found.resource, namespace=scope, labels=dict(labels or {}) or None)])

    def namespaced(self, ident: Identity) -> bool:
        return self.kind(ident.api_version, ident.kind).namespaced

    def _namespace(self, kind: Kind, ident: Identity) -> str | None:
        return (ident.namespace or self.namespace) if kind.namespaced else None

    def close(self) -> None:
        self.client.close()


def _as_dict(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _builtin(api_version: str, kind: str) -> Kind | None:
    """A kind lightkube's models know (core, apps, batch...), as a generic dict class."""
    from lightkube.core import resource as res
    from lightkube.core.exceptions import LoadResourceError
    from lightkube.core.resource_registry import _load_internal_resource, _maybe_internal

    if not _maybe_internal(api_version):  # type: ignore[no-untyped-call]
        return None
    try:
        model = _load_internal_resource(api_version, kind)  # type: ignore[no-untyped-call]
    except (LoadResourceError, ImportError):
        return None
    info = model._api_info
    namespaced = issubclass(model, res.NamespacedResource)
    return _generic(info.resource.group, info.resource.version, kind, info.plural, namespaced)


_GENERIC: dict[tuple[str, str, str, bool], Kind] = {}
_GENERIC_LOCK = threading.Lock()


def _generic(group: str, version: str, kind: str, plural: str, namespaced: bool) -> Kind:
    """A dict-based REST class, not put in lightkube's global registry (so two
    clusters serving a kind differently cannot clash)."""
    from lightkube.generic_resource import (
        GenericGlobalResource,
        GenericNamespacedResource,
        create_api_info,
    )

    key = (f"{group}/{version}", kind, plural, namespaced)
    with _GENERIC_LOCK:
        if key not in _GENERIC:
            base = GenericNamespacedResource if namespaced else GenericGlobalResource
            cls = type(kind, (base,), {"_api_info": create_api_info(group, version, kind, plural)})
            _GENERIC[key] = Kind(cls, namespaced, plural)
        return _GENERIC[key]


# --- configuration --------------------------------------------------------------------


KUBECONFIG_HINT = ("set `k8s: {kubeconfig: PATH}` in the stack config (or a k8s.Provider's kubeconfig) to a "
                   "valid kubeconfig; `stackwright local-cluster start` prints one for a local cluster")


def _kubeconfig(settings: Settings) -> tuple[Any, float | None]:
    """lightkube's config for the settings, and when it must be rebuilt (EKS tokens).
    A kubeconfig that cannot be read or used is a ``ConfigError``, in one line."""
    from lightkube import KubeConfig
    from lightkube.core.exceptions import ConfigError as KubeConfigError

    text, path = _source(settings.kubeconfig)
    where = f"kubeconfig {path}" if path else "kubeconfig (from a provider instance)"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML{_yaml_place(exc)}", hint=KUBECONFIG_HINT) from None
    if not isinstance(data, Mapping) or not data.get("clusters"):
        raise ConfigError(f"{where} has no clusters: it is not a kubeconfig", hint=KUBECONFIG_HINT)
    try:
        data, expires = _with_eks_tokens(dict(data), settings.context)
        return KubeConfig.from_dict(data, fname=path).get(settings.context), expires
    except (KubeConfigError, KeyError, TypeError, AttributeError, ValueError) as exc:
        why = f"no {exc}" if isinstance(exc, KeyError) else " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError(f"{where} cannot be used: {why}", hint=KUBECONFIG_HINT) from None


def _yaml_place(exc: yaml.YAMLError) -> str:
    """`` (line L, column C): problem`` of a PyYAML error, on one line."""
    mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
    context, since = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    text = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    text += f": {problem}" if problem else ""
    if context and since is not None:
        text += f", {context} started at line {since.line + 1}, column {since.column + 1}"
    return text


def _source(kubeconfig: str | None) -> tuple[str, str | None]:
    """Kubeconfig text and the file it came from: the setting is either the text
    itself (a provider instance fed by an output) or a path."""
    if kubeconfig is not None and ("\n" in kubeconfig or kubeconfig.lstrip().startswith("{")):
        return kubeconfig, None
    path = os.path.expanduser(kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(), path
    except OSError as exc:
        raise ConfigError(f"cannot read the kubeconfig {path}: {exc.strerror or exc}",
                          hint=KUBECONFIG_HINT) from None


def _with_eks_tokens(data: dict[str, Any], context: str | None) -> tuple[dict[str, Any], float | None]:
    """Replace an ``aws eks get-token`` exec user by a token made in this process with
    botocore (the aws-iam-authenticator scheme), so no AWS CLI is needed."""
    contexts = {c.get("name"): c.get("context") or {} for c in data.get("contexts") or []}
    current = contexts.get(context or data.get("current-context")) or {}
    users = []
    expires = None
    for entry in data.get("users") or []:
        args = ((entry.get("user") or {}).get("exec") or {}).get("args") or []
        if entry.get("name") == current.get("user") and "get-token" in args and "eks" in args:
            from stackwright.providers.registry import credential_plugin

            token = credential_plugin("eks get-token")(_arg(args, "--cluster-name"), _arg(args, "--region"))
            entry = {"name": entry["name"], "user": {"token": token}}
            expires = time.monotonic() + EXEC_TOKEN_LIFETIME
        users.append(entry)
    return {**data, "users": users}, expires


def _arg(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args and args.index(flag) + 1 < len(args) else None


_CONNECTIONS: dict[str, Connection] = {}
_CONNECTIONS_LOCK = threading.Lock()


def connect(settings: Settings) -> Connection:
    """One shared connection per distinct settings, rebuilt when its token expires."""
    key = hashlib.sha256(json.dumps([settings.kubeconfig, settings.context, settings.namespace]).encode()).hexdigest()
    with _CONNECTIONS_LOCK:
        found = _CONNECTIONS.get(key)
        if found is None or (found.expires is not None and time.monotonic() > found.expires):
            found = _CONNECTIONS[key] = Connection(settings)
        return found


# --- errors ---------------------------------------------------------------------------


_CONFLICT_MANAGER = re.compile(r'conflict with "([^"]+)"')


def classify(exc: BaseException, action: str) -> ProviderError:
    """A lightkube or HTTP failure as a retryable or permanent ProviderError."""
    import httpx2
    from lightkube import ApiError

    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, ApiError):
        code = exc.status.code or 0
        if code == 409 and exc.status.reason == "Conflict" and "conflict" in (exc.status.message or "").lower():
            return Conflict(action, conflict_fields(exc.status), exc.status.message or "")
        message = exc.status.message or str(exc)
        if code == 404:
            return NotFoundError(f"{action}: {message}")
        retryable = code in RETRYABLE_STATUS and not INVALID_OBJECT.search(message)
        return ProviderError(f"{action}: {message}", retryable=retryable)
    if isinstance(exc, httpx2.TransportError):
        return ProviderError.transient(f"{action}: cannot reach the cluster: {exc}")
    return ProviderError(f"{action}: {type(exc).__name__}: {exc}")


def conflict_fields(status: Any) -> tuple[tuple[str, str], ...]:
    """Each conflicting field of a refused apply, with the manager that owns it."""
    causes = (status.details.causes if status.details else None) or []
    found = []
    for cause in causes:
        manager = _CONFLICT_MANAGER.search(cause.message or "")
        found.append((str(cause.field or ""), manager.group(1) if manager else "another manager"))
    return tuple(found)


def conflict_message(fields: tuple[tuple[str, str], ...], fallback: str = "") -> str:
    """Which fields another field manager owns, and the way out."""
    owned = ", ".join(f"{field} (managed by {manager})" for field, manager in fields)
    return (f"conflict: {owned or fallback or 'fields owned by another field manager'}; another field manager "
            "set these fields. Remove them from the manifest, or set force=True on this resource to take them over")


def is_not_found(exc: BaseException) -> bool:
    from lightkube import ApiError

    return isinstance(exc, ApiError) and exc.status.code == 404


def call(action: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - every failure is classified, none is lost
        raise classify(exc, action) from exc


def call_or_none(action: str, fn: Callable[[], T]) -> T | None:
    """Like ``call``, but a 404 is ``None``."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001
        if is_not_found(exc):
            return None
        raise classify(exc, action) from exc
