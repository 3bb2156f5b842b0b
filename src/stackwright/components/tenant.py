"""One customer of a multi-tenant platform: its own namespace, identity, RBAC, quotas,
network isolation, disruption budget and Helm release, all from one config entry.

Adding a customer is one entry in the stack config's list; removing the entry deletes
exactly the objects of that tenant, since each is a child of its ``Tenant``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

import stackwright as sw
from stackwright.components.service_role import OidcIssuer, ServiceRole
from stackwright.errors import InputError
from stackwright.model import context
from stackwright.providers import k8s
from stackwright.providers.k8s import helm

TENANT_LABEL = "stackwright.io/tenant"
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
DNS_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


class TenantPlan(BaseModel):
    """What a plan (a size) grants: the namespace's quota, the defaults every container
    gets when it asks for nothing, and how many pods of the release may be down at once."""

    model_config = ConfigDict(extra="forbid")

    quota: dict[str, str]
    default_limits: dict[str, str] = Field(default_factory=lambda: {"cpu": "500m", "memory": "256Mi"})
    default_requests: dict[str, str] = Field(default_factory=lambda: {"cpu": "50m", "memory": "64Mi"})
    max_unavailable: int | str = 1


PLANS: dict[str, TenantPlan] = {
    "small": TenantPlan(quota={"requests.cpu": "1", "requests.memory": "1Gi", "limits.cpu": "2",
                               "limits.memory": "2Gi", "pods": "10"}),
    "medium": TenantPlan(quota={"requests.cpu": "4", "requests.memory": "8Gi", "limits.cpu": "8",
                                "limits.memory": "16Gi", "pods": "40"},
                         default_limits={"cpu": "1", "memory": "512Mi"},
                         default_requests={"cpu": "100m", "memory": "128Mi"}),
    "large": TenantPlan(quota={"requests.cpu": "16", "requests.memory": "32Gi", "limits.cpu": "32",
                               "limits.memory": "64Gi", "pods": "200"},
                        default_limits={"cpu": "2", "memory": "1Gi"},
                        default_requests={"cpu": "250m", "memory": "256Mi"}, max_unavailable="25%"),
}
"""The built-in plans; a program may pass its own (``Tenant(..., plans=...)``)."""


class Allow(BaseModel):
    """One extra hole in the tenant's default-deny network policy: traffic to (egress)
    or from (ingress) a namespace or an address block, optionally on some ports."""

    model_config = ConfigDict(extra="forbid")

    direction: Literal["egress", "ingress"] = "egress"
    namespace: str | None = None
    cidr: str | None = None
    ports: list[int] = Field(default_factory=list)
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"

    @model_validator(mode="after")
    def _one_peer(self) -> Allow:
        if (self.namespace is None) == (self.cidr is None):
            raise ValueError("give exactly one of namespace or cidr")
        return self


class TenantSpec(BaseModel):
    """One entry of the stack config's tenant list."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(pattern=DNS_NAME)
    plan: str = Field(default="small", alias="size")
    values: dict[str, Any] = Field(default_factory=dict)
    quota: dict[str, str] = Field(default_factory=dict)
    """Overrides of the plan's quota, e.g. ``{pods: "20"}``."""
    allow: list[Allow] = Field(default_factory=list)
    aws_statements: list[dict[str, Any]] = Field(default_factory=list)
    """IAM statements of the tenant's role (IRSA), when the Tenant is given a cluster."""


ROLE_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["configmaps", "secrets", "services", "pods", "pods/log",
                                      "persistentvolumeclaims", "serviceaccounts"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "replicasets"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": ["get", "list", "watch"]},
]
"""What a tenant's service account may do, in its own namespace only."""


class Tenant(sw.Component, type="stackwright:k8s:Tenant"):
    """A customer: namespace, service account (with an IRSA role when ``cluster`` is
    given), namespace-scoped Role and RoleBinding, ResourceQuota and LimitRange from the
    plan, a default-deny NetworkPolicy with explicit allows, a PodDisruptionBudget and
    the Helm release of ``chart`` with ``values_files`` and ``values`` (the environment's)
    overlaid by the tenant's own values. See docs/tenants.md. ``force=True`` is every
    Kubernetes object's ``force`` (the release's too): fields other field managers own
    are taken over instead of failing on the conflict.

    ``--target tenant:NAME`` previews and applies one tenant alone.
    """

    def __init__(self, spec: TenantSpec | Mapping[str, Any], *, chart: str,
                 values_files: Sequence[str] = (), values: Mapping[str, Any] | None = None,
                 cluster: OidcIssuer | None = None, plans: Mapping[str, TenantPlan] | None = None,
                 ingress_namespace: str = "ingress-nginx", rules: Sequence[Mapping[str, Any]] | None = None,
                 tags: dict[str, str] | None = None, force: bool = False,
                 opts: sw.ResourceOptions | None = None) -> None:
        spec = spec if isinstance(spec, TenantSpec) else _spec(spec)
        super().__init__(spec.name, opts)
        self.spec = spec
        self.namespace_name = spec.name
        self.force = force
        plan = _plan(self, plans if plans is not None else PLANS)
        self._undeclared: Callable[[], None] | None = functools.partial(
            self._declare_children, plan, chart, values_files, values, cluster, ingress_namespace, rules, tags)
        if _outside_targets(self):
            _defer(self)
        else:
            self._declare()

    def __getattr__(self, name: str) -> Any:
        """A tenant left undeclared by ``--target`` declares its children when the
        program uses one of them."""
        if name in _CHILD_ATTRIBUTES and self.__dict__.get("_undeclared") is not None:
            self._declare()
            return self.__dict__[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    @property
    def declared(self) -> bool:
        """False while ``--target`` leaves this tenant's children undeclared."""
        return self.__dict__.get("_undeclared") is None

    def _declare(self) -> None:
        declare, self._undeclared = self._undeclared, None
        if declare is None:
            return
        stack = context.current().component_stack
        depth = len(stack)
        stack.append(self)
        try:
            declare()
        finally:
            del stack[depth:]

    def _declare_children(self, plan: TenantPlan, chart: str, values_files: Sequence[str],
                          values: Mapping[str, Any] | None, cluster: OidcIssuer | None, ingress_namespace: str,
                          rules: Sequence[Mapping[str, Any]] | None, tags: dict[str, str] | None) -> None:
        spec = self.spec
        labels = {TENANT_LABEL: spec.name}
        self.namespace = k8s.Namespace("namespace", metadata={"name": spec.name, "labels": labels},
                                       force=self.force)
        self.role_arn = self._service_role(cluster, tags) if cluster is not None else None
        self.service_account = k8s.ServiceAccount("service-account", metadata=self._meta(
            spec.name, {IRSA_ANNOTATION: self.role_arn} if self.role_arn is not None else None), force=self.force)
        self._rbac(list(rules) if rules is not None else ROLE_RULES)
        self._limits(plan)
        self._network(ingress_namespace)
        k8s.PodDisruptionBudget("disruption-budget", metadata=self._meta(spec.name), spec={
            "maxUnavailable": plan.max_unavailable,
            "selector": {"matchLabels": {"app.kubernetes.io/instance": spec.name}}}, force=self.force)
        self.release = helm.Chart(
            spec.name, path=chart, namespace=spec.name, values_files=values_files,
            values=release_values(spec.name, values or {}, spec.values), force=self.force,
            opts=sw.ResourceOptions(depends_on=[self.namespace, self.service_account]))

    def _meta(self, name: str, annotations: Mapping[str, Any] | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, "namespace": self.namespace_name,
                                "labels": {TENANT_LABEL: self.spec.name}}
        if annotations:
            meta["annotations"] = dict(annotations)
        return meta

    def _service_role(self, cluster: OidcIssuer, tags: dict[str, str] | None) -> sw.Output[str]:
        role = ServiceRole(self.spec.name, cluster=cluster, namespace=self.namespace_name,
                           service_account=self.spec.name, statements=self.spec.aws_statements,
                           tags={**(tags or {}), "tenant": self.spec.name})
        return role.arn

    def _rbac(self, rules: list[Any]) -> None:
        k8s.Role("role", metadata=self._meta("tenant"), rules=rules, force=self.force)
        k8s.RoleBinding("role-binding", metadata=self._meta("tenant"), subjects=[
            {"kind": "ServiceAccount", "name": self.spec.name, "namespace": self.namespace_name}],
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tenant"},
            force=self.force)

    def _limits(self, plan: TenantPlan) -> None:
        k8s.ResourceQuota("quota", metadata=self._meta("tenant"),
                          spec={"hard": {**plan.quota, **self.spec.quota}}, force=self.force)
        k8s.LimitRange("limits", metadata=self._meta("tenant"), spec={"limits": [{
            "type": "Container", "default": plan.default_limits, "defaultRequest": plan.default_requests}]},
            force=self.force)

    def _network(self, ingress_namespace: str) -> None:
        k8s.NetworkPolicy("default-deny", metadata=self._meta("default-deny"), spec={
            "podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, force=self.force)
        k8s.NetworkPolicy("allow", metadata=self._meta("allow"), spec=network_allows(
            ingress_namespace, self.spec.allow), force=self.force)


_CHILD_ATTRIBUTES = frozenset({"namespace", "role_arn", "service_account", "release"})


def _outside_targets(tenant: Tenant) -> bool:
    """True when the command has ``--target``s and none can name this tenant or
    anything in it. Only the short form ``kind:name`` is judged: every component in a
    tenant is named as the tenant, so a short form whose name is neither the tenant's
    nor an ancestor's names no component here. (It could name a resource only by that
    resource's own name ending in ``:kind:name``: no object of a tenant is named so,
    short of a chart's cluster-scoped RBAC object, and recorded ones are matched from
    the state anyway.) Any other form of target (a URN, a tail of one) could name
    anything: nothing is skipped."""
    targets = context.current().targets
    if not targets:
        return False
    names = set()
    for target in targets:
        kind, _, name = target.partition(":")
        if not kind or not name or ":" in name or any(mark in target for mark in ("$", "/")):
            return False
        names.add(name)
    node: sw.Component | None = tenant
    while node is not None:
        if node.resource_name in names:
            return False
        parent = node.resource_parent
        node = parent if isinstance(parent, sw.Component) else None
    return True


def _defer(tenant: Tenant) -> None:
    """Leave ``tenant``'s children undeclared unless, once the program has run, a
    resource depends on the tenant or waits for its namespace: then they are declared
    (a dependency on a component is one on everything in it)."""
    ctx = context.current()
    deferred: dict[str, list[Tenant]] = ctx.extensions.setdefault("tenants-deferred", {})
    if not deferred:
        ctx.finishers.append(_declare_used)
    deferred.setdefault(tenant.spec.name, []).append(tenant)


def _declare_used() -> None:
    ctx = context.current()
    if ctx.finishers:  # what the others declare may use a deferred tenant too: run last
        ctx.finishers.append(_declare_used)
        return
    used = [t for t in _deferred_used(ctx) if not t.declared]
    for tenant in used:
        tenant._declare()
    if used:
        ctx.finishers.append(_declare_used)


def _deferred_used(ctx: context.ProgramContext) -> list[Tenant]:
    deferred: dict[str, list[Tenant]] = ctx.extensions["tenants-deferred"]
    used: list[Tenant] = []
    for node in list(ctx.nodes.values()):
        needs = [*getattr(node, "dependencies", ()), *node.resource_options.depends_on]
        used.extend(dep for dep in needs if isinstance(dep, Tenant))
    waiting = ctx.extensions.get("k8s")
    for need in getattr(waiting, "waiting", {}):
        if need[0] == "namespace":
            used.extend(deferred.get(need[1], ()))
    return used


def network_allows(ingress_namespace: str, extra: Sequence[Allow]) -> dict[str, Any]:
    """The explicit holes in the default deny: in from the ingress controller and the
    tenant's own pods; out to cluster DNS and the tenant's own pods; plus ``extra``."""
    own: dict[str, Any] = {"podSelector": {}}
    ingress: list[dict[str, Any]] = [
        {"from": [_namespace_peer(ingress_namespace)]}, {"from": [own]}]
    dns_ports = [{"protocol": p, "port": 53} for p in ("UDP", "TCP")]
    egress: list[dict[str, Any]] = [
        {"to": [{**_namespace_peer("kube-system"), "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
         "ports": dns_ports},
        {"to": [own]}]
    for allow in extra:
        rule = _allow_rule(allow)
        (egress if allow.direction == "egress" else ingress).append(rule)
    return {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": ingress, "egress": egress}


def _namespace_peer(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def _allow_rule(allow: Allow) -> dict[str, Any]:
    peer = _namespace_peer(allow.namespace) if allow.namespace else {"ipBlock": {"cidr": allow.cidr}}
    rule: dict[str, Any] = {"to" if allow.direction == "egress" else "from": [peer]}
    if allow.ports:
        rule["ports"] = [{"protocol": allow.protocol, "port": port} for port in allow.ports]
    return rule


def release_values(service_account: str, environment: Mapping[str, Any],
                   tenant: Mapping[str, Any]) -> dict[str, Any]:
    """The release's values: the tenant's service account (the convention of
    ``helm create`` charts), then the environment's values, then the tenant's on top."""
    base = {"serviceAccount": {"create": False, "name": service_account}}
    return deep_merge(deep_merge(base, environment), tenant)


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Maps merge key by key, anything else in ``top`` wins, as helm merges values files;
    ``None`` in ``top`` removes the key."""
    out = dict(base)
    for key, value in top.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _spec(entry: Mapping[str, Any]) -> TenantSpec:
    from pydantic import ValidationError

    try:
        return TenantSpec.model_validate(dict(entry))
    except ValidationError as exc:
        detail = exc.errors()[0]
        where = ".".join(str(p) for p in detail.get("loc", ()))
        name = entry.get("name", "?") if isinstance(entry, Mapping) else "?"
        file, line = context.user_frame()
        raise InputError(f"tenant {name!r}: {where}: {detail['msg']}", file=file, line=line, prop=where,
                         hint="the keys of a tenant entry are listed in docs/tenants.md") from None


def _plan(tenant: Tenant, plans: Mapping[str, TenantPlan]) -> TenantPlan:
    if tenant.spec.plan not in plans:
        raise tenant.error(f"tenant {tenant.spec.name!r} asks for plan {tenant.spec.plan!r}, which does not exist",
                           prop="plan", hint=f"the plans: {', '.join(sorted(plans))}")
    return plans[tenant.spec.plan]
