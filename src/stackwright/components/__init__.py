"""Reusable components, written the way we would like users to write their own:
short, config-driven, and exposing the Outputs other code needs."""

from stackwright.components.eks_cluster import EksCluster, NodeGroupSpec
from stackwright.components.network import Network
from stackwright.components.service_role import ServiceRole
from stackwright.components.template_folder import TemplateFolder

__all__ = ["EksCluster", "Network", "NodeGroupSpec", "ServiceRole", "TemplateFolder"]
