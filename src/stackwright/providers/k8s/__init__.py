"""The ``k8s`` provider: Kubernetes objects applied with server-side apply.

Declare objects typed (``k8s.Deployment("web", spec={...})``), as manifests
(``k8s.Object("widget", manifest={...})``, custom resources included) or from YAML
(``k8s.ConfigFile``, ``k8s.ConfigGroup``). They go to the cluster of the stack config
section ``k8s:`` (``kubeconfig``, ``context``, ``namespace``) unless
``opts=sw.ResourceOptions(provider=k8s.Provider(...))`` names another. See
docs/kubernetes.md.
"""

from __future__ import annotations

from stackwright.providers.k8s.files import ConfigFile, ConfigGroup
from stackwright.providers.k8s.objects import (
    ClusterRole,
    ClusterRoleBinding,
    ConfigMap,
    CronJob,
    CustomResourceDefinition,
    DaemonSet,
    Deployment,
    HorizontalPodAutoscaler,
    Ingress,
    Job,
    LimitRange,
    Namespace,
    NetworkPolicy,
    Object,
    PersistentVolumeClaim,
    PodDisruptionBudget,
    Provider,
    ResourceQuota,
    Role,
    RoleBinding,
    Secret,
    Service,
    ServiceAccount,
    StatefulSet,
    TypedObject,
)

__all__ = [
    "ClusterRole", "ClusterRoleBinding", "ConfigFile", "ConfigGroup", "ConfigMap", "CronJob",
    "CustomResourceDefinition", "DaemonSet", "Deployment", "HorizontalPodAutoscaler", "Ingress", "Job",
    "LimitRange", "Namespace", "NetworkPolicy", "Object", "PersistentVolumeClaim", "PodDisruptionBudget",
    "Provider", "ResourceQuota", "Role", "RoleBinding", "Secret", "Service", "ServiceAccount",
    "StatefulSet", "TypedObject", "provider",
]


def provider() -> object:
    """The provider object the registry loads (its handlers import lightkube lazily)."""
    from stackwright.providers.k8s.handlers import KubernetesProvider

    return KubernetesProvider()
