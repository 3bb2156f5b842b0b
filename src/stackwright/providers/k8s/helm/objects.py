"""What Stackwright does to each rendered object before it becomes a child resource:
the release namespace where helm leaves it out, and a stable child name."""

from __future__ import annotations

import copy
from typing import Any

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

def with_namespace(obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    if obj["kind"] in CLUSTER_SCOPED or obj["metadata"].get("namespace"):
        return obj
    placed = copy.copy(obj)
    placed["metadata"] = {**obj["metadata"], "namespace": namespace}
    return placed


def child_name(obj: dict[str, Any]) -> str:
    """``namespace/name`` (or ``name``), as ``k8s.ConfigGroup`` names its children; the
    kind is in the child's type token."""
    namespace = obj["metadata"].get("namespace")
    return f"{namespace}/{obj['metadata']['name']}" if namespace else str(obj["metadata"]["name"])


def resource_key(obj: dict[str, Any]) -> str:
    """``Deployment:shop/web``: how ``chart.resources`` is keyed."""
    return f"{obj['kind']}:{child_name(obj)}"
