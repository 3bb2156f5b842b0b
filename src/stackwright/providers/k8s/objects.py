"""What programs declare: ``Object`` (any manifest), the typed kinds, and ``Provider``.

The type token of an object is its kind's (``k8s:apps/v1:Deployment``), so an object
declared typed, as a manifest or from YAML has the same URN, and ``import`` of that
type adopts it. Ordering the API server needs is added implicitly: an object waits
for the Namespace it lives in and a custom resource for its CustomResourceDefinition,
when the program declares them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stackwright.errors import InputError
from stackwright.model import context
from stackwright.model.output import Output, secret
from stackwright.model.resource import Resource, ResourceOptions
from stackwright.providers.k8s import manifests as m

PUBLIC_MODULE = "stackwright.providers.k8s"
"""Where programs import these classes from; ``import`` prints code against it."""


class Provider(Resource, type="k8s:index:Provider"):
    """A connection to one cluster, configured from values a program computes (e.g.
    ``cluster.kubeconfig``). Resources use it with ``opts=ResourceOptions(provider=p)``.
    ``kubeconfig`` is the text of a kubeconfig or a path to one; it is kept secret."""

    import_from = PUBLIC_MODULE
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None

    def __init__(self, name: str, /, *, kubeconfig: Any = None, context: Any = None, namespace: Any = None,
                 opts: ResourceOptions | None = None) -> None:
        super().__init__(name, kubeconfig=secret(kubeconfig) if kubeconfig is not None else None,
                         context=context, namespace=namespace, opts=opts)


class Object(Resource):
    """Any Kubernetes object, custom resources included, declared by its manifest.

    The manifest may hold Outputs anywhere. ``metadata.name`` defaults to the resource
    name and ``metadata.namespace`` to the provider's namespace. ``force=True`` takes
    over fields another field manager owns instead of failing on the conflict.
    """

    import_from = PUBLIC_MODULE
    manifest: dict[str, Any]
    provider: str | None = None
    force: bool = False
    uid: Output[str]
    namespace: Output[str]
    applied: Output[dict[str, Any]]

    def __init__(self, name: str, /, *, manifest: Mapping[str, Any], force: bool = False,
                 opts: ResourceOptions | None = None) -> None:
        manifest = _named(name, manifest)
        vars(self)["type_token"] = m.type_token(manifest["apiVersion"], manifest["kind"])
        if manifest["kind"] == "Secret":
            manifest = _secret_data(manifest)
        super().__init__(name, manifest=manifest, force=force, opts=opts)
        instance = self.resource_options.provider_instance(self.resource_parent)
        if instance is not None:
            self.inputs["provider"] = instance.urn
        _index().add(self, manifest)


def _named(name: str, manifest: Any) -> dict[str, Any]:
    """The manifest with its name defaulted; apiVersion and kind must be plain strings,
    since they make the type token."""
    if not isinstance(manifest, Mapping):
        raise _error(f"manifest must be a mapping, got {type(manifest).__name__}")
    for key in ("apiVersion", "kind"):
        if not isinstance(manifest.get(key), str) or not manifest[key]:
            raise _error(f"the manifest of {name!r} needs {key} as a plain string",
                         "e.g. {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {...}}")
    metadata = manifest.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise _error(f"metadata of {name!r} must be a mapping")
    return {**manifest, "metadata": {"name": name, **metadata}}


def _secret_data(manifest: dict[str, Any]) -> dict[str, Any]:
    """A Secret's data is secret whatever it was made from."""
    out = dict(manifest)
    for key in ("data", "stringData"):
        if isinstance(out.get(key), Mapping):
            out[key] = {k: secret(v) for k, v in out[key].items()}
    return out


def _error(message: str, hint: str | None = None) -> InputError:
    file, line = context.user_frame()
    return InputError(message, file=file, line=line, hint=hint)


# --- implicit ordering ----------------------------------------------------------------


@dataclass
class _Index:
    """Namespaces and CRDs declared so far in this run, and the objects waiting for
    ones not declared yet (declaration order does not matter)."""

    owners: dict[tuple[str, ...], Object] = field(default_factory=dict)
    waiting: dict[tuple[str, ...], list[Object]] = field(default_factory=dict)

    def add(self, obj: Object, manifest: Mapping[str, Any]) -> None:
        own = _provides(manifest)
        if own is not None:
            self.owners[own] = obj
            for waiter in self.waiting.pop(own, []):
                _depend(waiter, obj)
        for need in _needs(manifest):
            owner = self.owners.get(need)
            if owner is not None:
                _depend(obj, owner)
            else:
                self.waiting.setdefault(need, []).append(obj)


def _index() -> _Index:
    found: _Index = context.current().extensions.setdefault("k8s", _Index())
    return found


def _depend(obj: Object, on: Object) -> None:
    if on is not obj and on not in obj.dependencies:
        obj.dependencies.append(on)


def _provides(manifest: Mapping[str, Any]) -> tuple[str, ...] | None:
    kind, metadata = manifest["kind"], manifest.get("metadata") or {}
    if kind == "Namespace" and isinstance(metadata.get("name"), str):
        return ("namespace", metadata["name"])
    if kind == "CustomResourceDefinition":
        spec = manifest.get("spec") or {}
        group, names = spec.get("group") if isinstance(spec, Mapping) else None, \
            spec.get("names") if isinstance(spec, Mapping) else None
        if isinstance(group, str) and isinstance(names, Mapping) and isinstance(names.get("kind"), str):
            return ("crd", group, names["kind"])
    return None


def _needs(manifest: Mapping[str, Any]) -> list[tuple[str, ...]]:
    needs: list[tuple[str, ...]] = []
    namespace = (manifest.get("metadata") or {}).get("namespace")
    if isinstance(namespace, str):
        needs.append(("namespace", namespace))
    group = str(manifest["apiVersion"]).rpartition("/")[0]
    if "." in group and not group.endswith(".k8s.io"):
        needs.append(("crd", group, manifest["kind"]))
    return needs


# --- typed kinds ----------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """lightkube models (``DeploymentSpec(...)``) as the dicts a manifest holds."""
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) and not isinstance(value, Output) else value


class TypedObject(Object):
    """Base of the typed kinds: the constructor takes the kind's top-level fields
    (as dicts, lightkube models or Outputs) and builds the manifest an ``Object`` would
    get. ``FIELDS`` maps Python argument names to manifest keys."""

    # Not annotated: annotated class attributes of a Resource are its inputs.
    API_VERSION = ""
    KIND = ""
    FIELDS = {"spec": "spec"}

    def __init__(self, name: str, /, *, metadata: Any = None, force: bool = False,
                 opts: ResourceOptions | None = None, **fields: Any) -> None:
        unknown = sorted(set(fields) - set(self.FIELDS))
        if unknown:
            raise _error(f"{type(self).__name__} has no field {unknown[0]!r}",
                         f"its fields: metadata, {', '.join(self.FIELDS)}")
        manifest: dict[str, Any] = {"apiVersion": self.API_VERSION, "kind": self.KIND,
                                    "metadata": _plain(metadata) or {}}
        for arg, value in fields.items():
            if value is not None:
                manifest[self.FIELDS[arg]] = _plain(value)
        super().__init__(name, manifest=manifest, force=force, opts=opts)


def _typed(kind: str, api_version: str, fields: Mapping[str, str] | None = None,
           doc: str = "") -> type[TypedObject]:
    cls = type(kind, (TypedObject,), {
        "API_VERSION": api_version, "KIND": kind, "FIELDS": fields or {"spec": "spec"},
        "__module__": __name__, "__doc__": doc or f"A {kind} ({api_version}).",
        "__annotations__": {}})
    return cls


Namespace = _typed("Namespace", "v1", {"spec": "spec"})
ConfigMap = _typed("ConfigMap", "v1", {"data": "data", "binary_data": "binaryData", "immutable": "immutable"})
Secret = _typed("Secret", "v1", {"data": "data", "string_data": "stringData", "type": "type",
                                 "immutable": "immutable"}, "A Secret; its data is kept secret everywhere.")
Service = _typed("Service", "v1")
ServiceAccount = _typed("ServiceAccount", "v1", {"automount_service_account_token": "automountServiceAccountToken",
                                                 "image_pull_secrets": "imagePullSecrets"})
PersistentVolumeClaim = _typed("PersistentVolumeClaim", "v1")
ResourceQuota = _typed("ResourceQuota", "v1")
LimitRange = _typed("LimitRange", "v1")
Deployment = _typed("Deployment", "apps/v1")
StatefulSet = _typed("StatefulSet", "apps/v1")
DaemonSet = _typed("DaemonSet", "apps/v1")
Job = _typed("Job", "batch/v1")
CronJob = _typed("CronJob", "batch/v1")
Ingress = _typed("Ingress", "networking.k8s.io/v1")
NetworkPolicy = _typed("NetworkPolicy", "networking.k8s.io/v1")
PodDisruptionBudget = _typed("PodDisruptionBudget", "policy/v1")
Role = _typed("Role", "rbac.authorization.k8s.io/v1", {"rules": "rules"})
ClusterRole = _typed("ClusterRole", "rbac.authorization.k8s.io/v1",
                     {"rules": "rules", "aggregation_rule": "aggregationRule"})
RoleBinding = _typed("RoleBinding", "rbac.authorization.k8s.io/v1", {"subjects": "subjects", "role_ref": "roleRef"})
ClusterRoleBinding = _typed("ClusterRoleBinding", "rbac.authorization.k8s.io/v1",
                            {"subjects": "subjects", "role_ref": "roleRef"})
HorizontalPodAutoscaler = _typed("HorizontalPodAutoscaler", "autoscaling/v2")
CustomResourceDefinition = _typed("CustomResourceDefinition", "apiextensions.k8s.io/v1")

TYPED: tuple[type[TypedObject], ...] = (
    Namespace, ConfigMap, Secret, Service, ServiceAccount, PersistentVolumeClaim, ResourceQuota, LimitRange,
    Deployment, StatefulSet, DaemonSet, Job, CronJob, Ingress, NetworkPolicy, PodDisruptionBudget, Role,
    ClusterRole, RoleBinding, ClusterRoleBinding, HorizontalPodAutoscaler, CustomResourceDefinition,
)
