"""The tenants layer: one ``Tenant`` per customer listed in the stack config.

Each tenant gets its namespace, a service account (with an IRSA role when the platform
stack is named), a Role and RoleBinding, a quota and default limits from its size, a
default-deny network policy with explicit allows, a disruption budget, and a release of
examples/charts/app with values/common.yaml, values/<stack>.yaml and its own values on
top. Adding a customer is one line in stacks/<stack>.yaml; `up --target tenant:NAME`
changes one customer alone.
"""

from pydantic import BaseModel, Field

import stackwright as sw
from stackwright.components import ClusterOidc, Tenant, TenantSpec
from stackwright.providers import k8s

env = sw.get_stack()


class Settings(BaseModel):
    kubeconfig: str
    chart: str = "../../charts/app"
    platform_stack: str | None = None
    """``platform/<env>``: the platform stack whose cluster's OIDC provider the tenants'
    roles trust (IRSA). Left out in dev, which has no AWS."""
    ingress_namespace: str = "ingress-nginx"
    customers: list[TenantSpec] = Field(default_factory=list)


settings = sw.Config().require_object("tenants", Settings)
cluster = k8s.Provider("cluster", kubeconfig=settings.kubeconfig)
oidc = None
if settings.platform_stack:
    platform = sw.StackReference(settings.platform_stack)
    oidc = ClusterOidc(platform.output("oidc_provider_arn"), platform.output("oidc_issuer"))

tenants = [
    Tenant(customer, chart=settings.chart, values_files=["values/common.yaml", f"values/{env}.yaml"],
           cluster=oidc, ingress_namespace=settings.ingress_namespace, tags={"env": env},
           opts=sw.ResourceOptions(provider=cluster))
    for customer in settings.customers
]

sw.export("tenants", [tenant.spec.name for tenant in tenants])
