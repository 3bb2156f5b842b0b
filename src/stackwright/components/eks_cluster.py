"""An EKS cluster with its IAM roles and node groups from a list in config."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

import stackwright as sw
from stackwright.providers.aws import eks, eks_auth, iam

CLUSTER_POLICIES = ("AmazonEKSClusterPolicy",)
EKS_OIDC_THUMBPRINT = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280"
"""The root CA of EKS's OIDC endpoints; IAM verifies EKS issuers itself, but the API
still takes a thumbprint."""
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")


class NodeGroupSpec(BaseModel):
    """One node group as written in config; instance types, disk size, AMI type and
    capacity type force a replacement (as in EKS), the sizes do not."""

    model_config = ConfigDict(extra="forbid")

    name: str
    instance_types: list[str] = Field(default_factory=lambda: ["t3.medium"])
    min_size: int = 1
    max_size: int = 3
    desired_size: int = 1
    disk_size: int = 20
    capacity_type: str = "ON_DEMAND"
    labels: dict[str, str] = Field(default_factory=dict)


def assume_role_policy(service: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}


class EksCluster(sw.Component, type="stackwright:aws:EksCluster"):
    """The cluster role, the cluster, a node role, one node group per spec, and the
    IAM OIDC provider that lets service accounts assume roles (IRSA, see ``ServiceRole``).
    ``kubeconfig`` connects a ``k8s.Provider`` to the cluster.
    """

    def __init__(self, name: str, *, subnet_ids: Sequence[Any], node_groups: Sequence[NodeGroupSpec | dict[str, Any]],
                 version: str | None = None, tags: dict[str, str] | None = None,
                 opts: sw.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        tags = dict(tags or {})
        prefix = f"{sw.get_project()}-{sw.get_stack()}-{name}"[:50]
        self._attachments: list[iam.RolePolicyAttachment] = []
        self.cluster_role = self._role("cluster-role", f"{prefix}-cluster", "eks.amazonaws.com",
                                       CLUSTER_POLICIES, tags)
        self.node_role = self._role("node-role", f"{prefix}-node", "ec2.amazonaws.com", NODE_POLICIES, tags)
        self.cluster = eks.Cluster(
            "cluster", name=prefix, role_arn=self.cluster_role.arn, subnet_ids=list(subnet_ids),
            version=version, tags=tags, opts=sw.ResourceOptions(depends_on=self._attachments))
        specs = [g if isinstance(g, NodeGroupSpec) else NodeGroupSpec(**g) for g in node_groups]
        self.node_groups = {spec.name: self._node_group(spec, subnet_ids, tags) for spec in specs}
        self.oidc_provider = iam.OpenIdConnectProvider(
            "oidc", url=self.cluster.oidc_issuer, client_ids=["sts.amazonaws.com"],
            thumbprints=[EKS_OIDC_THUMBPRINT], tags=tags)
        self.name = self.cluster.name
        self.endpoint = self.cluster.endpoint
        self.oidc_issuer: sw.Output[str] = self.cluster.oidc_issuer
        self.oidc_provider_arn: sw.Output[str] = self.oidc_provider.arn
        self.arn = self.cluster.arn
        self.kubeconfig: sw.Output[str] = sw.secret(sw.Output.all(
            self.cluster.name, self.cluster.endpoint, self.cluster.certificate_authority, self.cluster.arn,
        ).apply(lambda v: eks_auth.kubeconfig(v[0], v[1], v[2], region=v[3].split(":")[3])))
        """A kubeconfig whose user authenticates with an STS-presigned token
        (``aws eks get-token``; the k8s provider makes that token itself with botocore):
        ``k8s.Provider("eks", kubeconfig=cluster.kubeconfig)``."""

    def _role(self, name: str, role_name: str, service: str, policies: Sequence[str],
              tags: dict[str, str]) -> iam.Role:
        role = iam.Role(name, name=role_name, assume_role_policy=assume_role_policy(service), tags=tags)
        for policy in policies:
            self._attachments.append(iam.RolePolicyAttachment(
                f"{name}-{policy}", role=role.name, policy_arn=f"arn:aws:iam::aws:policy/{policy}"))
        return role

    def _node_group(self, spec: NodeGroupSpec, subnet_ids: Sequence[Any], tags: dict[str, str]) -> eks.NodeGroup:
        return eks.NodeGroup(
            f"nodes-{spec.name}", cluster_name=self.cluster.name, node_group_name=spec.name,
            node_role_arn=self.node_role.arn, subnet_ids=list(subnet_ids),
            instance_types=spec.instance_types, disk_size=spec.disk_size,
            capacity_type=spec.capacity_type, labels=spec.labels, tags=tags,
            scaling={"min_size": spec.min_size, "max_size": spec.max_size, "desired_size": spec.desired_size},
            opts=sw.ResourceOptions(depends_on=self._attachments))
