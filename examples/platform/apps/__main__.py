"""The apps layer: the shop's web application, deployed with Helm on the platform's cluster.

The cluster's kubeconfig (the local cluster's for dev, the EKS cluster's for staging and
production) feeds a ``k8s.Provider``; the chart in examples/charts/app is rendered by helm
with values/common.yaml, then values/<stack>.yaml, and each rendered object is a resource
that preview shows and apply server-side-applies.
"""

from pydantic import BaseModel

import stackwright as sw
from stackwright.providers import k8s
from stackwright.providers.k8s import helm

env = sw.get_stack()


class Settings(BaseModel):
    kubeconfig: str
    namespace: str = "shop"
    chart: str = "../../charts/app"
    platform_stack: str | None = None
    """``platform/<env>``: the platform stack whose ``api_role_arn`` the app's service
    account assumes (IRSA). Left out in dev, which has no AWS."""


settings = sw.Config().require_object("apps", Settings)
cluster = k8s.Provider("cluster", kubeconfig=settings.kubeconfig)
in_cluster = sw.ResourceOptions(provider=cluster)

namespace = k8s.Object("shop", manifest={
    "apiVersion": "v1", "kind": "Namespace",
    "metadata": {"name": settings.namespace, "labels": {"env": env}},
}, opts=in_cluster)

values: dict[str, object] = {}
if settings.platform_stack:
    platform = sw.StackReference(settings.platform_stack)
    values["serviceAccount"] = {"annotations": {"eks.amazonaws.com/role-arn": platform.output("api_role_arn")}}

web = helm.Chart("web", path=settings.chart, namespace=settings.namespace,
                 values_files=["values/common.yaml", f"values/{env}.yaml"], values=values,
                 opts=sw.ResourceOptions(provider=cluster, depends_on=[namespace]))

sw.export("namespace", settings.namespace)
sw.export("objects", sorted(web.resources))
