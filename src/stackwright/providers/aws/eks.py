"""EKS: clusters and managed node groups.

Both are slow to create and delete, so every change waits for EKS to finish it:
create until ``ACTIVE``, each update until EKS reports it ``Successful``, delete until
the object is gone. Creates pass ``clientRequestToken`` so a retried create is
idempotent, and a create that finds the name taken by an object carrying its own
URN adopts it.

As in EKS, a node group's instance types, disk size, AMI type, capacity type, role
and subnets are fixed at creation (changing one replaces the node group); scaling
and labels change in place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from stackwright.errors import InputError, ProviderError
from stackwright.model.output import Output
from stackwright.model.resource import Resource
from stackwright.providers.aws.base import (
    AwsResource,
    call,
    call_or_none,
    claim,
    error_code,
    is_ours,
    own_tags,
    tag_changes,
    user_tags,
)
from stackwright.providers.aws.common import (
    ManagedResource,
    declared_or_live,
    sorted_strings,
    when_known,
)
from stackwright.providers.common import idempotency_token, wait_until
from stackwright.providers.protocol import Created, OperationContext, ReadResult

__all__ = ["Cluster", "ClusterProvider", "NodeGroup", "NodeGroupProvider", "RESOURCE_PROVIDERS"]

FAILED_STATES = frozenset({"FAILED", "CREATE_FAILED", "DELETE_FAILED"})
UPDATE_FAILED = frozenset({"Failed", "Cancelled"})

Describe = Callable[[], "dict[str, Any] | None"]
"""Looks an object up: its description, or ``None`` when it does not exist."""


class EksResource(ManagedResource):
    """What clusters and node groups share: tags by ARN, adoption, waits, and a
    ``read`` that takes an object being deleted for gone."""

    service = "eks"

    def create_or_adopt(self, ctx: OperationContext, kind: str, name: str, make: Callable[[], Any],
                        existing: Describe) -> dict[str, Any]:
        """``make()``; if the name is taken by our own earlier attempt, that object.

        ``ResourceInUseException`` is retryable in general (a namesake still being
        deleted); taken by an object that is not this state's (``claim``) it never
        clears, so that is a permanent error.
        """
        action = f"create {kind} {name}"
        try:
            return dict(call(action, make))
        except ProviderError as exc:
            if error_code(exc.__cause__ or exc) != "ResourceInUseException":
                raise
            found = existing()
            if found is None or found.get("status") == "DELETING":
                raise
            claim(kind, name, found.get("tags") or {}, ctx)
            ctx.log(f"{action}: adopting the object an earlier attempt created")
            return found

    def read(
        self, ctx: OperationContext, id: str | None, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> ReadResult | None:
        """An object being deleted is as good as gone."""
        found = super().read(ctx, id, inputs, outputs)
        return None if found is not None and found.outputs.get("status") == "DELETING" else found

    def wait_status(self, ctx: OperationContext, what: str, describe: Describe) -> dict[str, Any]:
        """Until the object is ACTIVE (or DEGRADED: running, with a health issue)."""
        last: dict[str, Any] = {}

        def ready() -> bool:
            nonlocal last
            found = describe()
            if found is None:
                raise ProviderError(f"{what} disappeared while waiting for it")
            last = found
            status = str(found.get("status", ""))
            if status in FAILED_STATES:
                raise ProviderError(f"{what} is {status}: {found.get('health', '')}")
            return status in ("ACTIVE", "DEGRADED")

        wait_until(ctx, f"{what} to be ACTIVE", ready, interval=15.0)
        return last

    def wait_gone(self, ctx: OperationContext, what: str, describe: Describe) -> None:
        def gone() -> bool:
            found = describe()
            if found is not None and found.get("status") == "DELETE_FAILED":
                raise ProviderError(f"{what} could not be deleted: {found.get('health', '')}")
            return found is None

        wait_until(ctx, f"{what} to be deleted", gone, interval=15.0)

    def wait_update(self, ctx: OperationContext, answer: Mapping[str, Any], name: str,
                    nodegroup: str | None, settled: Callable[[], bool]) -> None:
        """Until EKS reports the update done; without an update id, until ``settled()``."""
        update = answer.get("update")
        if not isinstance(update, Mapping) or not update.get("id"):
            wait_until(ctx, f"{name} to settle", settled, interval=15.0)
            return
        if update.get("status") == "Successful":
            return
        args: dict[str, Any] = {"name": name, "updateId": update["id"]}
        if nodegroup:
            args["nodegroupName"] = nodegroup

        def done() -> bool:
            current = call(f"read update {update['id']}", self.client.describe_update, **args)["update"]
            if current.get("status") in UPDATE_FAILED:
                errors = "; ".join(e.get("errorMessage", "") for e in current.get("errors", []))
                raise ProviderError(f"update {update['id']} of {name} {current['status']}: {errors}")
            return bool(current.get("status") == "Successful")

        wait_until(ctx, f"update {update['id']} of {name}", done, interval=15.0)

    def sync_tags(self, arn: str, old: Mapping[str, str], new: Mapping[str, str]) -> None:
        gone, changed = tag_changes(old, new)
        if gone:
            call(f"untag {arn}", self.client.untag_resource, resourceArn=arn, tagKeys=gone)
        if changed:
            call(f"tag {arn}", self.client.tag_resource, resourceArn=arn, tags=changed)


# --- Cluster ------------------------------------------------------------------------


class Cluster(Resource, type="aws:eks:Cluster"):
    """A Kubernetes control plane. ``version=None`` takes EKS's default version."""

    name: str
    role_arn: str
    subnet_ids: list[str]
    version: str | None = None
    security_group_ids: list[str] = []
    endpoint_public_access: bool = True
    endpoint_private_access: bool = False
    tags: dict[str, str] = {}
    arn: Output[str]
    endpoint: Output[str]
    certificate_authority: Output[str]
    oidc_issuer: Output[str]
    status: Output[str]
    platform_version: Output[str]
    cluster_security_group_id: Output[str]


class ClusterProvider(EksResource):
    """Id: the cluster name."""

    type_token = "aws:eks:Cluster"
    resource_class = Cluster
    replace_on = frozenset({"name", "role_arn", "subnet_ids", "security_group_ids"})
    unique_keys = ("name",)
    computed_on_update = frozenset({"platform_version"})
    """A version upgrade moves the cluster to a new EKS platform version."""
    stateful = True

    def normalise(self, values: dict[str, Any]) -> dict[str, Any]:
        for key in ("subnet_ids", "security_group_ids"):
            values[key] = when_known(values.get(key) or [], sorted_strings)
        return values

    def validate(self, values: Mapping[str, Any]) -> None:
        subnets = values.get("subnet_ids")
        if not isinstance(subnets, (list, tuple)) or len(subnets) < 2:
            raise InputError("a cluster needs subnet_ids in at least two availability zones",
                             prop="subnet_ids")
        if not (values.get("endpoint_public_access", True) or values.get("endpoint_private_access")):
            raise InputError("the API endpoint must be public, private or both",
                             prop="endpoint_public_access")

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        name = inputs["name"]
        args: dict[str, Any] = {
            "name": name, "roleArn": inputs["role_arn"],
            "resourcesVpcConfig": {
                "subnetIds": list(inputs["subnet_ids"]),
                "securityGroupIds": list(inputs.get("security_group_ids") or []),
                "endpointPublicAccess": bool(inputs.get("endpoint_public_access", True)),
                "endpointPrivateAccess": bool(inputs.get("endpoint_private_access", False)),
            },
            "tags": {**(inputs.get("tags") or {}), **own_tags(ctx)},
            "clientRequestToken": idempotency_token(ctx.token),
        }
        if inputs.get("version"):
            args["version"] = inputs["version"]
        self.create_or_adopt(ctx, "cluster", name,
                             lambda: self.client.create_cluster(**args)["cluster"],
                             lambda: self.describe(name))
        cluster = self.wait_status(ctx, f"cluster {name}", lambda: self.describe(name))
        return Created(name, _cluster_outputs(cluster))

    def describe(self, id: str) -> dict[str, Any] | None:
        answer = call_or_none(f"read cluster {id}", self.client.describe_cluster, name=id)
        return dict(answer["cluster"]) if answer else None

    def find(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> list[Any]:
        cluster = self.describe(str(inputs.get("name")))
        return [cluster] if cluster and is_ours(cluster.get("tags") or {}, ctx) else []

    def result(self, raw: Any, inputs: Mapping[str, Any]) -> ReadResult:
        vpc = raw.get("resourcesVpcConfig", {})
        live = {
            "name": raw["name"], "role_arn": raw["roleArn"],
            "subnet_ids": sorted(vpc.get("subnetIds", [])),
            "version": declared_or_live(inputs, "version", raw.get("version")),
            "security_group_ids": sorted(vpc.get("securityGroupIds", [])),
            "endpoint_public_access": bool(vpc.get("endpointPublicAccess", True)),
            "endpoint_private_access": bool(vpc.get("endpointPrivateAccess", False)),
            "tags": user_tags(raw.get("tags")),
        }
        return ReadResult(raw["name"], live, _cluster_outputs(raw))

    def update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        """One EKS update at a time: each is waited for before the next starts."""
        current = self.describe(id) or {}
        self._update_version(ctx, id, current, new_inputs)
        self._update_endpoint(ctx, id, current, new_inputs)
        self.sync_tags(current.get("arn") or old_outputs["arn"], old_inputs.get("tags") or {},
                       new_inputs.get("tags") or {})
        return _cluster_outputs(self.describe(id) or current)

    def _settled(self, id: str) -> bool:
        cluster = self.describe(id)
        return cluster is not None and cluster.get("status") == "ACTIVE"

    def _update_version(self, ctx: OperationContext, id: str, current: Mapping[str, Any],
                        inputs: Mapping[str, Any]) -> None:
        wanted = inputs.get("version")
        if not wanted or wanted == current.get("version"):
            return
        ctx.log(f"upgrading cluster {id} to Kubernetes {wanted}")
        answer = call(f"upgrade cluster {id}", self.client.update_cluster_version, name=id,
                      version=wanted, clientRequestToken=idempotency_token(ctx.token, "version"))
        self.wait_update(ctx, answer, id, None, lambda: self._settled(id))

    def _update_endpoint(self, ctx: OperationContext, id: str, current: Mapping[str, Any],
                         inputs: Mapping[str, Any]) -> None:
        vpc = current.get("resourcesVpcConfig", {})
        public = bool(inputs.get("endpoint_public_access", True))
        private = bool(inputs.get("endpoint_private_access", False))
        if (public, private) == (vpc.get("endpointPublicAccess", True), vpc.get("endpointPrivateAccess", False)):
            return
        answer = call(f"change endpoint access of {id}", self.client.update_cluster_config, name=id,
                      resourcesVpcConfig={"endpointPublicAccess": public, "endpointPrivateAccess": private},
                      clientRequestToken=idempotency_token(ctx.token, "endpoint"))
        self.wait_update(ctx, answer, id, None, lambda: self._settled(id))

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        """Node groups are resources of their own, deleted first; while one remains EKS
        answers ResourceInUseException, which is retried."""
        call_or_none(f"delete cluster {id}", self.client.delete_cluster, name=id)
        self.wait_gone(ctx, f"cluster {id}", lambda: self.describe(id))


def _cluster_outputs(cluster: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "arn": cluster.get("arn", ""), "endpoint": cluster.get("endpoint", ""),
        "certificate_authority": cluster.get("certificateAuthority", {}).get("data", ""),
        "oidc_issuer": cluster.get("identity", {}).get("oidc", {}).get("issuer", ""),
        "status": cluster.get("status", ""), "platform_version": cluster.get("platformVersion", ""),
        "cluster_security_group_id": cluster.get("resourcesVpcConfig", {}).get("clusterSecurityGroupId", ""),
    }


# --- NodeGroup ----------------------------------------------------------------------


class NodeGroup(Resource, type="aws:eks:NodeGroup"):
    """EC2 nodes EKS runs for a cluster.

    ``scaling`` is ``{min_size, max_size, desired_size}`` (``desired_size`` defaults
    to ``min_size``); ``ami_type=None`` takes EKS's default for the cluster version.
    """

    cluster_name: str
    node_group_name: str
    node_role_arn: str
    subnet_ids: list[str]
    instance_types: list[str] = ["t3.medium"]
    disk_size: int = 20
    ami_type: str | None = None
    capacity_type: str = "ON_DEMAND"
    scaling: dict[str, int] = {"min_size": 1, "max_size": 2, "desired_size": 1}
    labels: dict[str, str] = {}
    tags: dict[str, str] = {}
    arn: Output[str]
    status: Output[str]
    release_version: Output[str]


class NodeGroupProvider(EksResource):
    """Id ``<cluster name>:<node group name>``."""

    type_token = "aws:eks:NodeGroup"
    resource_class = NodeGroup
    replace_on = frozenset({
        "cluster_name", "node_group_name", "node_role_arn", "subnet_ids", "instance_types",
        "disk_size", "ami_type", "capacity_type",
    })
    unique_keys = ("cluster_name", "node_group_name")
    computed_on_update = frozenset({"status"})

    def normalise(self, values: dict[str, Any]) -> dict[str, Any]:
        values["subnet_ids"] = when_known(values.get("subnet_ids") or [], sorted_strings)
        values["scaling"] = when_known(values.get("scaling"), _canonical_scaling)
        values["labels"] = values.get("labels") or {}
        return values

    def validate(self, values: Mapping[str, Any]) -> None:
        scaling = values.get("scaling") or {}
        if not isinstance(scaling, Mapping) or set(scaling) - {"min_size", "max_size", "desired_size"}:
            raise InputError("scaling has min_size, max_size and desired_size", prop="scaling")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in scaling.values()):
            raise InputError("scaling sizes are integers", prop="scaling")
        low, high = scaling.get("min_size", 1), scaling.get("max_size", 2)
        desired = scaling.get("desired_size", low)
        if not (0 <= low <= desired <= high and high >= 1):
            raise InputError(f"scaling needs 0 <= min_size <= desired_size <= max_size, max_size >= 1; "
                             f"got {dict(scaling)}", prop="scaling")
        if not values.get("instance_types"):
            raise InputError("instance_types must name at least one instance type", prop="instance_types")

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        cluster, name = inputs["cluster_name"], inputs["node_group_name"]
        scaling = _canonical_scaling(inputs.get("scaling") or {})
        args: dict[str, Any] = {
            "clusterName": cluster, "nodegroupName": name, "nodeRole": inputs["node_role_arn"],
            "subnets": list(inputs["subnet_ids"]), "instanceTypes": list(inputs["instance_types"]),
            "diskSize": int(inputs.get("disk_size") or 20),
            "capacityType": inputs.get("capacity_type") or "ON_DEMAND",
            "scalingConfig": {"minSize": scaling["min_size"], "maxSize": scaling["max_size"],
                              "desiredSize": scaling["desired_size"]},
            "labels": dict(inputs.get("labels") or {}),
            "tags": {**(inputs.get("tags") or {}), **own_tags(ctx)},
            "clientRequestToken": idempotency_token(ctx.token),
        }
        if inputs.get("ami_type"):
            args["amiType"] = inputs["ami_type"]
        id = f"{cluster}:{name}"
        self.create_or_adopt(ctx, "node group", id,
                             lambda: self.client.create_nodegroup(**args)["nodegroup"],
                             lambda: self.describe(id))
        group = self.wait_status(ctx, f"node group {id}", lambda: self.describe(id))
        return Created(id, _node_group_outputs(group))

    def describe(self, id: str) -> dict[str, Any] | None:
        cluster, _, name = id.partition(":")
        answer = call_or_none(f"read node group {id}", self.client.describe_nodegroup,
                              clusterName=cluster, nodegroupName=name)
        return dict(answer["nodegroup"]) if answer else None

    def find(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> list[Any]:
        group = self.describe(f"{inputs.get('cluster_name')}:{inputs.get('node_group_name')}")
        return [group] if group and is_ours(group.get("tags") or {}, ctx) else []

    def result(self, raw: Any, inputs: Mapping[str, Any]) -> ReadResult:
        scaling = raw.get("scalingConfig", {})
        live = {
            "cluster_name": raw["clusterName"], "node_group_name": raw["nodegroupName"],
            "node_role_arn": raw["nodeRole"], "subnet_ids": sorted(raw.get("subnets", [])),
            "instance_types": list(raw.get("instanceTypes") or []),
            "disk_size": int(raw.get("diskSize") or 20),
            "ami_type": declared_or_live(inputs, "ami_type", raw.get("amiType")),
            "capacity_type": raw.get("capacityType", "ON_DEMAND"),
            "scaling": {"min_size": int(scaling.get("minSize", 0)), "max_size": int(scaling.get("maxSize", 0)),
                        "desired_size": int(scaling.get("desiredSize", 0))},
            "labels": dict(raw.get("labels") or {}), "tags": user_tags(raw.get("tags")),
        }
        return ReadResult(f"{raw['clusterName']}:{raw['nodegroupName']}", live, _node_group_outputs(raw))

    def update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        old, new = self.canonical(old_inputs), self.canonical(new_inputs)
        changes = _config_changes(old, new)
        if changes:
            cluster, _, name = id.partition(":")
            answer = call(f"change node group {id}", self.client.update_nodegroup_config,
                          clusterName=cluster, nodegroupName=name,
                          clientRequestToken=idempotency_token(ctx.token, "config"), **changes)
            self.wait_update(ctx, answer, cluster, name, lambda: self._settled(id))
        current = self.describe(id) or {}
        self.sync_tags(current.get("nodegroupArn") or old_outputs["arn"], old.get("tags") or {},
                       new.get("tags") or {})
        return _node_group_outputs(self.describe(id) or current)

    def _settled(self, id: str) -> bool:
        group = self.describe(id)
        return group is not None and group.get("status") in ("ACTIVE", "DEGRADED")

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        cluster, _, name = id.partition(":")
        call_or_none(f"delete node group {id}", self.client.delete_nodegroup,
                     clusterName=cluster, nodegroupName=name)
        self.wait_gone(ctx, f"node group {id}", lambda: self.describe(id))


def _canonical_scaling(scaling: Any) -> Any:
    if not isinstance(scaling, Mapping):
        return scaling
    low = scaling.get("min_size", 1)
    return {"min_size": low, "max_size": scaling.get("max_size", 2),
            "desired_size": scaling.get("desired_size", low)}


def _config_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The ``update_nodegroup_config`` arguments that turn ``old`` into ``new``."""
    changes: dict[str, Any] = {}
    if old.get("scaling") != new.get("scaling"):
        s = new["scaling"]
        changes["scalingConfig"] = {"minSize": s["min_size"], "maxSize": s["max_size"],
                                    "desiredSize": s["desired_size"]}
    before, after = old.get("labels") or {}, new.get("labels") or {}
    labels: dict[str, Any] = {}
    upserts = {k: v for k, v in after.items() if before.get(k) != v}
    if upserts:
        labels["addOrUpdateLabels"] = upserts
    removed = sorted(set(before) - set(after))
    if removed:
        labels["removeLabels"] = removed
    if labels:
        changes["labels"] = labels
    return changes


def _node_group_outputs(group: Mapping[str, Any]) -> dict[str, Any]:
    return {"arn": group.get("nodegroupArn", ""), "status": group.get("status", ""),
            "release_version": group.get("releaseVersion", "")}


RESOURCE_PROVIDERS: list[type[AwsResource]] = [ClusterProvider, NodeGroupProvider]
