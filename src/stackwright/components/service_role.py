"""IRSA: an IAM role that exactly one Kubernetes service account can assume."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import stackwright as sw
from stackwright.providers.aws import iam


def trust_policy(provider_arn: str, issuer: str, namespace: str, service_account: str) -> dict[str, Any]:
    """Only ``system:serviceaccount:<namespace>:<service_account>`` of this cluster's
    OIDC issuer may assume the role, and only for STS."""
    host = issuer.removeprefix("https://")
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {
            f"{host}:sub": f"system:serviceaccount:{namespace}:{service_account}",
            f"{host}:aud": "sts.amazonaws.com"}},
    }]}


class OidcIssuer(Protocol):
    """What IRSA needs of a cluster: ``EksCluster`` has both; ``ClusterOidc`` carries them
    from another stack's outputs."""

    @property
    def oidc_provider_arn(self) -> Any: ...

    @property
    def oidc_issuer(self) -> Any: ...


@dataclass(frozen=True)
class ClusterOidc:
    """A cluster's IAM OIDC provider ARN and issuer URL (plain values or Outputs, e.g.
    from ``sw.StackReference("platform/dev")``)."""

    oidc_provider_arn: Any
    oidc_issuer: Any


class ServiceRole(sw.Component, type="stackwright:aws:ServiceRole"):
    """A role for one service account with a least-privilege policy made of
    ``statements`` (each an IAM statement dict: Effect, Action, Resource); no policy
    when there are none. ``cluster`` is an ``EksCluster`` or a ``ClusterOidc``."""

    def __init__(self, name: str, *, cluster: OidcIssuer, namespace: str, service_account: str,
                 statements: Sequence[dict[str, Any]], tags: dict[str, str] | None = None,
                 opts: sw.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        tags = dict(tags or {})
        _refuse_wildcards(name, statements)
        role_name = f"{sw.get_project()}-{sw.get_stack()}-{name}"[:64]
        trust = sw.Output.all(cluster.oidc_provider_arn, cluster.oidc_issuer).apply(
            lambda values: trust_policy(values[0], values[1], namespace, service_account))
        self.role = iam.Role("role", name=role_name, assume_role_policy=trust, tags=tags)
        self.policy = None
        if statements:
            self.policy = iam.Policy("policy", name=role_name, tags=tags,
                                     policy={"Version": "2012-10-17", "Statement": list(statements)})
            iam.RolePolicyAttachment("attach", role=self.role.name, policy_arn=self.policy.arn)
        self.arn = self.role.arn


def _refuse_wildcards(name: str, statements: Sequence[dict[str, Any]]) -> None:
    for statement in statements:
        actions = statement.get("Action")
        resources = statement.get("Resource")
        if actions in ("*", ["*"]) and resources in ("*", ["*"]):
            raise sw.StackwrightError(
                f"service role {name!r} asks for every action on every resource",
                hint="list the actions and resources the service needs (least privilege)")
