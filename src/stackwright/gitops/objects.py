"""The Kubernetes objects a stack renders, as `gitops render`, `diff` and `status` see them.

They come from the plan `up` would make now: the program runs, Helm charts render (from
the cache when unchanged), and values other resources computed are read from the
recorded state. Nothing is applied and no cluster is called.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stackwright.errors import StackwrightError
from stackwright.model.resource import urn_name, urn_parts
from stackwright.model.values import UNKNOWN, Secret
from stackwright.operations.session import StackSession
from stackwright.plan.plan import Op, Plan
from stackwright.plan.planner import make_plan
from stackwright.providers.k8s.helm.objects import CLUSTER_SCOPED
from stackwright.providers.k8s.manifests import Identity, identity

LAYOUT_VERSION = 1
"""Bump when the same object is written differently (part of every content digest)."""
CLUSTER_FOLDER = "_cluster"
"""The folder of cluster-scoped objects (Namespaces, CRDs, ClusterRoles...); a
namespace's name never starts with an underscore, so it cannot collide."""
CHART_TYPE = "k8s:helm:Chart"
PROVIDER_TYPE = "k8s:index:Provider"
CLUSTER_KEYS = ("kubeconfig", "context", "namespace")


class GitopsError(StackwrightError):
    """The stack's objects cannot be exported as they are (a value not known yet, a
    secret outside a Secret, folders that depend on each other both ways...)."""


@dataclass(frozen=True)
class RenderedObject:
    """One object as a controller would apply it: ``manifest`` keeps its ``Secret``
    markers (revealed only when encrypted or compared with the cluster)."""

    stack: str
    urn: str
    manifest: Mapping[str, Any]
    deps: tuple[str, ...]
    """URNs of the other rendered objects it waits for."""
    release: str | None
    """The Helm release that rendered it, if any."""
    cluster: tuple[tuple[str, Any], ...] = ()
    """Where it goes: the stack's ``k8s:`` settings overlaid by its provider instance's
    (``kubeconfig``, ``context``, ``namespace``), secrets kept wrapped."""
    digest: str = ""
    """Of the manifest's content (see ``scan``)."""
    secret: bool = False
    """The manifest holds a ``Secret`` value somewhere."""

    @functools.cached_property
    def ident(self) -> Identity:
        return identity(self.manifest)

    @functools.cached_property
    def folder(self) -> str:
        return self.ident.namespace or CLUSTER_FOLDER

    @functools.cached_property
    def key(self) -> str:
        """``Deployment shop/web`` (with the group for kinds outside the built-in ones)."""
        ident = self.ident
        return f"{kind_label(ident)} {ident.id()}"


def kind_label(ident: Identity) -> str:
    group = ident.group
    return f"{ident.kind}.{group}" if "." in group and not group.endswith(".k8s.io") else ident.kind


def stack_objects(session: StackSession) -> list[RenderedObject]:
    """Every Kubernetes object the stack's program declares now, in plan order."""
    desired = session.run_program()
    plan = make_plan(desired, session.store.snapshot(session.stack), session.providers)
    section = session.config.data.get("k8s")
    return objects_of(plan, section if isinstance(section, Mapping) else {})


def objects_of(plan: Plan, k8s_config: Mapping[str, Any]) -> list[RenderedObject]:
    """The plan's Kubernetes objects; ``k8s_config`` is the stack's ``k8s:`` section."""
    steps = [s for s in plan.steps if s.op is not Op.DELETE and s.type.startswith("k8s:")
             and isinstance((s.inputs or {}).get("manifest"), Mapping)]
    instances = {s.urn: s.inputs or {} for s in plan.steps if s.type == PROVIDER_TYPE}
    scopes = _custom_scopes(s.inputs["manifest"] for s in steps if s.inputs)
    urns = {s.urn for s in steps}
    out = []
    for step in steps:
        cluster = _cluster(k8s_config, instances.get(str((step.inputs or {}).get("provider"))))
        manifest = _placed((step.inputs or {})["manifest"], str(dict(cluster).get("namespace") or "default"), scopes)
        digest, secret, unknown = scan(manifest)
        if unknown:
            raise GitopsError(
                "the object holds a value that is known only after apply", resource=step.urn,
                hint=f"apply stack {plan.stack!r} first (`stackwright up`): the values other resources "
                "compute are read from its recorded state")
        release = urn_name(step.parent) if step.parent and urn_parts(step.parent)[2] == CHART_TYPE else None
        out.append(RenderedObject(plan.stack, step.urn, manifest,
                                  tuple(d for d in step.deps if d in urns and d != step.urn), release, cluster,
                                  digest, secret))
    return out


def scan(manifest: Mapping[str, Any]) -> tuple[str, bool, bool]:
    """The manifest's content digest, and whether it holds a secret or an unknown value:
    one pass of the (C) JSON encoder instead of three walks in Python."""
    found = {"secret": False, "unknown": False}

    def mark(value: Any) -> Any:
        if isinstance(value, Secret):
            found["secret"] = True
            return {"$secret": value.value}
        if value is UNKNOWN:
            found["unknown"] = True
            return "$unknown"
        raise TypeError(f"{type(value).__name__} is not a manifest value")

    text = json.dumps(manifest, sort_keys=True, separators=(",", ":"), default=mark)
    digest = hashlib.sha256(f"{LAYOUT_VERSION}\n{text}".encode()).hexdigest()
    return digest, found["secret"], found["unknown"]


def _cluster(config: Mapping[str, Any], instance: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    merged = {k: config.get(k) for k in CLUSTER_KEYS}
    merged.update({k: v for k, v in (instance or {}).items() if k in CLUSTER_KEYS and v is not None})
    return tuple((k, v) for k, v in merged.items() if v is not None)


def _custom_scopes(manifests: Iterable[Mapping[str, Any]]) -> dict[str, bool]:
    """Kind → namespaced, for the custom kinds whose CRD the stack itself declares."""
    scopes = {}
    for manifest in manifests:
        if manifest.get("kind") == "CustomResourceDefinition":
            spec = manifest.get("spec") or {}
            names = spec.get("names") or {}
            if isinstance(names.get("kind"), str):
                scopes[names["kind"]] = spec.get("scope") != "Cluster"
    return scopes


def _placed(manifest: Mapping[str, Any], default_namespace: str, scopes: Mapping[str, bool]) -> dict[str, Any]:
    """The manifest with the namespace the provider would give it, so that its file
    lands in the folder of the namespace it will live in."""
    kind = manifest.get("kind")
    metadata = dict(manifest.get("metadata") or {})
    namespaced = scopes.get(str(kind), kind not in CLUSTER_SCOPED)
    if namespaced and not metadata.get("namespace"):
        metadata["namespace"] = default_namespace
    elif not namespaced:
        metadata.pop("namespace", None)
    return {**manifest, "metadata": metadata}
