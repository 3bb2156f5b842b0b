"""Reusable components, written the way we would like users to write their own:
short, config-driven, and exposing the Outputs other code needs."""

from stackwright.components.eks_cluster import EksCluster, NodeGroupSpec
from stackwright.components.network import Network
from stackwright.components.service_role import ClusterOidc, ServiceRole
from stackwright.components.template_folder import TemplateFolder
from stackwright.components.tenant import PLANS, Allow, Tenant, TenantPlan, TenantSpec

__all__ = ["PLANS", "Allow", "ClusterOidc", "EksCluster", "Network", "NodeGroupSpec", "ServiceRole", "TemplateFolder",
           "Tenant", "TenantPlan", "TenantSpec"]
