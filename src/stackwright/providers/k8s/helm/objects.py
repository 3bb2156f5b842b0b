"""What Stackwright does to each rendered object before it becomes a child resource:
a stable child name, the release namespace where helm leaves it out, masked secrets."""

from __future__ import annotations

import copy
from typing import Any

from stackwright.model.output import secret

CLUSTER_SCOPED = frozenset({
    "APIService", "CSIDriver", "CSINode", "ClusterIssuer", "ClusterRole", "ClusterRoleBinding",
    "ComponentStatus", "CustomResourceDefinition", "FlowSchema", "IngressClass",
    "MutatingWebhookConfiguration", "Namespace", "Node", "PersistentVolume", "PriorityClass",
    "PriorityLevelConfiguration", "RuntimeClass", "StorageClass", "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding", "ValidatingWebhookConfiguration", "VolumeAttachment",
    "VolumeSnapshotClass",
})
"""Kinds without a namespace. Every other kind is given the release's namespace when the
chart leaves it out, as ``helm install`` does."""

APPLIED_FIRST = frozenset({"Namespace", "CustomResourceDefinition"})
"""Kinds every other object of the chart waits for."""


def with_namespace(obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    if obj["kind"] in CLUSTER_SCOPED or obj["metadata"].get("namespace"):
        return obj
    placed = copy.copy(obj)
    placed["metadata"] = {**obj["metadata"], "namespace": namespace}
    return placed


def child_name(obj: dict[str, Any]) -> str:
    """``Deployment.apps:shop/web``: kind and API group (not version, so an apiVersion
    bump is an update, not a replacement), namespace and name."""
    api_version = str(obj["apiVersion"])
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    kind = f"{obj['kind']}.{group}" if group else str(obj["kind"])
    namespace = obj["metadata"].get("namespace")
    return f"{kind}:{namespace}/{obj['metadata']['name']}" if namespace else f"{kind}:{obj['metadata']['name']}"


def masked(obj: dict[str, Any]) -> dict[str, Any]:
    """A Secret's data marked secret, so previews, logs and state never show it."""
    if obj["kind"] != "Secret" or obj.get("apiVersion") != "v1":
        return obj
    return {k: secret(v) if k in ("data", "stringData") else v for k, v in obj.items()}
