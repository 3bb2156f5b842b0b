"""EC2 networking: VPCs, subnets, internet gateways, route tables and security groups.

The providers are ``ManagedResource``s (``common``, shared with IAM and EKS, and
re-exported here): inputs are brought to one canonical form before they are compared,
so that ``read`` of an object created from inputs X reports exactly X, and ``diff``
never reports a change that is only a difference of spelling.

Lists that a separate resource type can manage too (a route table's ``routes``, a
security group's ``ingress`` and ``egress``) are managed inline only when declared:
``None``, the default, leaves them to ``Route`` and ``SecurityGroupRule`` resources,
and ``read`` then reports ``None`` so that the two ways never fight over the same
rules. Routes to IPv6 or prefix-list destinations and IPv6 or prefix-list security
group sources are not modelled; they are left alone.

Only ``CreateRouteTable`` of these EC2 calls takes an idempotency token. Every object
is tagged with its URN by the create call itself, which is how ``read`` without an id
finds what an interrupted create made; a security group's name is unique in its VPC,
so a retried create also recognises its own group by name and URN.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from stackwright.errors import InputError, ProviderError
from stackwright.model.output import Output
from stackwright.model.resource import Resource
from stackwright.model.values import is_unknown
from stackwright.providers.aws.base import (
    URN_TAG,
    AwsResource,
    all_tags,
    call,
    call_or_none,
    is_ours,
    partition,
    tag_changes,
    tag_dict,
    tag_list,
)
from stackwright.providers.aws.common import (
    ManagedResource,
    create_or_adopt,
    declared_or_live,
    pick,
    sorted_strings,
    when_known,
)
from stackwright.providers.common import idempotency_token, wait_until
from stackwright.providers.protocol import (
    Created,
    OperationContext,
    ReadResult,
)

__all__ = [
    "ManagedResource", "create_or_adopt", "declared_or_live", "pick",
    "sorted_strings", "tag_changes", "when_known",
    "InternetGateway", "InternetGatewayProvider", "RESOURCE_PROVIDERS",
    "Route", "RouteProvider", "RouteTable", "RouteTableAssociation",
    "RouteTableAssociationProvider", "RouteTableProvider", "SecurityGroup",
    "SecurityGroupProvider", "SecurityGroupRule", "SecurityGroupRuleProvider", "Subnet",
    "SubnetProvider", "Vpc", "VpcProvider",
]


# --- EC2 helpers --------------------------------------------------------------------


def urn_filter(urn: str) -> list[dict[str, Any]]:
    return [{"Name": f"tag:{URN_TAG}", "Values": [urn]}]


def described(client: Any, op: str, list_key: str, filter_name: str, values: list[str],
              id_field: str) -> dict[str, dict[str, Any]]:
    """Every object a ``describe_*`` call finds by one filter, all pages, by ``id_field``.

    A filter rather than the ids parameter: asked by ids, EC2 fails the whole call when
    one of them no longer exists; a filter just leaves it out."""
    pages = client.get_paginator(op).paginate(Filters=[{"Name": filter_name, "Values": values}])
    found = call(f"{op} of {len(values)}", lambda: [dict(o) for page in pages for o in page.get(list_key, [])])
    return {o[id_field]: o for o in found}


def parent_id(id: str) -> str:
    """The object an ``<object id>_...`` id (a route, a rule) lives in: what one describe reads."""
    return id.partition("_")[0]


def tag_specs(resource_type: str, tags: Mapping[str, str], owner: OperationContext) -> list[dict[str, Any]]:
    """Tags applied by the create call itself, so no untagged object ever exists."""
    return [{"ResourceType": resource_type, "Tags": tag_list(tags, owner)}]


class Ec2Resource(ManagedResource):
    """An EC2 object: found by id with ``describe_*`` and by its URN tag."""

    service = "ec2"
    kind: ClassVar[str] = ""
    """The ARN resource type (``vpc``, ``subnet``...)."""
    describe_op: ClassVar[str] = ""
    ids_param: ClassVar[str] = ""
    list_key: ClassVar[str] = ""
    id_filter: ClassVar[str] = ""
    """The filter that finds objects by id (``subnet-id``); the id field is named like
    ``ids_param``, singular (``SubnetId``)."""
    batch_size = 100

    def describe_many(self, keys: list[str]) -> Mapping[str, Any]:
        return described(self.client, self.describe_op, self.list_key, self.id_filter, keys,
                         self.ids_param.removesuffix("s"))

    def describe(self, id: str) -> dict[str, Any] | None:
        fn = getattr(self.client, self.describe_op)
        response = call_or_none(f"describe {id}", fn, **{self.ids_param: [id]})
        items = (response or {}).get(self.list_key, [])
        return dict(items[0]) if items else None

    def find(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> list[Any]:
        fn = getattr(self.client, self.describe_op)
        response = call(f"find {ctx.urn}", fn, Filters=urn_filter(ctx.urn))
        return [o for o in response.get(self.list_key, []) if is_ours(all_tags(o.get("Tags")), ctx)]

    def arn(self, owner: str, id: str) -> str:
        region = self.clients.region
        return f"arn:{partition(region)}:ec2:{region}:{owner}:{self.kind}/{id}"

    def base_outputs(self, raw: Mapping[str, Any], id: str) -> dict[str, Any]:
        owner = str(raw.get("OwnerId", ""))
        return {"arn": self.arn(owner, id), "owner_id": owner}

    def sync_tags(self, id: str, old: Mapping[str, str], new: Mapping[str, str]) -> None:
        gone, changed = tag_changes(old, new)
        if gone:
            call(f"untag {id}", self.client.delete_tags, Resources=[id], Tags=[{"Key": k} for k in gone])
        if changed:
            call(f"tag {id}", self.client.create_tags, Resources=[id], Tags=tag_list(changed))

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        """``delete_<kind>(<Kind>Id=id)``, named after the describe call. Deleting what is
        already gone has done its job. While something still uses the object AWS answers
        DependencyViolation, which is retried (dependents are deleted first)."""
        delete = getattr(self.client, self.describe_op.replace("describe_", "delete_", 1).removesuffix("s"))
        call_or_none(f"delete {self.kind} {id}", delete, **{self.ids_param.removesuffix("s"): id})


# --- Vpc ----------------------------------------------------------------------------


class Vpc(Resource, type="aws:ec2:Vpc"):
    """An isolated virtual network."""

    cidr_block: str
    enable_dns_hostnames: bool = False
    enable_dns_support: bool = True
    tags: dict[str, str] = {}
    arn: Output[str]
    owner_id: Output[str]


class VpcProvider(Ec2Resource):
    type_token = "aws:ec2:Vpc"
    resource_class = Vpc
    replace_on = frozenset({"cidr_block"})
    kind = "vpc"
    describe_op, ids_param, list_key = "describe_vpcs", "VpcIds", "Vpcs"
    id_filter = "vpc-id"

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        earlier = self.earlier_attempt(ctx, inputs)
        if earlier is not None:
            vpc_id, outputs = earlier.id, dict(earlier.outputs)
            current = (bool(earlier.inputs["enable_dns_support"]), bool(earlier.inputs["enable_dns_hostnames"]))
        else:
            vpc = call("create VPC", self.client.create_vpc, CidrBlock=inputs["cidr_block"],
                       TagSpecifications=tag_specs("vpc", inputs.get("tags") or {}, ctx))["Vpc"]
            vpc_id, outputs, current = vpc["VpcId"], self.base_outputs(vpc, vpc["VpcId"]), (True, False)
        wait_until(ctx, f"VPC {vpc_id} available", lambda: self._state(vpc_id) == "available")
        self._set_dns(vpc_id, inputs, current=current)
        return Created(vpc_id, outputs)

    def _state(self, vpc_id: str) -> str:
        vpc = self.describe(vpc_id)
        return str(vpc.get("State", "")) if vpc else ""

    def _set_dns(self, vpc_id: str, inputs: Mapping[str, Any], current: tuple[bool, bool]) -> None:
        """Support before hostnames when enabling, after when disabling: AWS refuses
        hostnames without DNS support."""
        support = bool(inputs.get("enable_dns_support", True))
        hostnames = bool(inputs.get("enable_dns_hostnames", False))
        steps = [("EnableDnsSupport", support, current[0]), ("EnableDnsHostnames", hostnames, current[1])]
        for attribute, wanted, now in steps if support else reversed(steps):
            if wanted != now:
                call(f"set {attribute} of {vpc_id}", self.client.modify_vpc_attribute,
                     VpcId=vpc_id, **{attribute: {"Value": wanted}})

    def _dns(self, vpc_id: str) -> tuple[bool, bool]:
        def attribute(name: str, key: str) -> bool:
            answer = call(f"read {name} of {vpc_id}", self.client.describe_vpc_attribute,
                          VpcId=vpc_id, Attribute=name)
            return bool(answer.get(key, {}).get("Value", False))
        return (attribute("enableDnsSupport", "EnableDnsSupport"),
                attribute("enableDnsHostnames", "EnableDnsHostnames"))

    def result(self, raw: Any, inputs: Mapping[str, Any]) -> ReadResult:
        vpc_id = raw["VpcId"]
        support, hostnames = self._dns(vpc_id)
        live = {"cidr_block": raw["CidrBlock"], "enable_dns_hostnames": hostnames,
                "enable_dns_support": support, "tags": tag_dict(raw.get("Tags"))}
        return ReadResult(vpc_id, live, self.base_outputs(raw, vpc_id))

    def update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        self._set_dns(id, new_inputs, current=self._dns(id))
        self.sync_tags(id, old_inputs.get("tags") or {}, new_inputs.get("tags") or {})
        return {}


# --- Subnet -------------------------------------------------------------------------


class Subnet(Resource, type="aws:ec2:Subnet"):
    """A range of a VPC's addresses in one availability zone.

    ``availability_zone=None`` lets AWS choose; the chosen zone is then the
    ``availability_zone`` property's value after apply.
    """

    vpc_id: str
    cidr_block: str
    availability_zone: str | None = None
    map_public_ip_on_launch: bool = False
    tags: dict[str, str] = {}
    arn: Output[str]
    owner_id: Output[str]
    availability_zone_id: Output[str]


class SubnetProvider(Ec2Resource):
    type_token = "aws:ec2:Subnet"
    resource_class = Subnet
    replace_on = frozenset({"vpc_id", "cidr_block", "availability_zone"})
    unique_keys = ("vpc_id", "cidr_block")
    kind = "subnet"
    describe_op, ids_param, list_key = "describe_subnets", "SubnetIds", "Subnets"
    id_filter = "subnet-id"

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        earlier = self.earlier_attempt(ctx, inputs)
        if earlier is not None:
            subnet_id, outputs = earlier.id, dict(earlier.outputs)
            public = bool(earlier.inputs["map_public_ip_on_launch"])
        else:
            args: dict[str, Any] = {"VpcId": inputs["vpc_id"], "CidrBlock": inputs["cidr_block"],
                                    "TagSpecifications": tag_specs("subnet", inputs.get("tags") or {}, ctx)}
            if inputs.get("availability_zone"):
                args["AvailabilityZone"] = inputs["availability_zone"]
            subnet = call("create subnet", self.client.create_subnet, **args)["Subnet"]
            subnet_id, outputs, public = subnet["SubnetId"], self._outputs(subnet), False
        wait_until(ctx, f"subnet {subnet_id} available", lambda: self._available(subnet_id))
        if inputs.get("map_public_ip_on_launch") and not public:
            self._set_public_ip(subnet_id, True)
        return Created(subnet_id, outputs)

    def _available(self, subnet_id: str) -> bool:
        subnet = self.describe(subnet_id)
        return subnet is not None and subnet.get("State") == "available"

    def _set_public_ip(self, subnet_id: str, value: bool) -> None:
        call(f"set MapPublicIpOnLaunch of {subnet_id}", self.client.modify_subnet_attribute,
             SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": value})

    def _outputs(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        outputs = self.base_outputs(raw, raw["SubnetId"])
        outputs["arn"] = raw.get("SubnetArn") or outputs["arn"]
        outputs["availability_zone"] = raw.get("AvailabilityZone")
        outputs["availability_zone_id"] = raw.get("AvailabilityZoneId")
        return outputs

    def result(self, raw: Any, inputs: Mapping[str, Any]) -> ReadResult:
        live = {
            "vpc_id": raw["VpcId"], "cidr_block": raw["CidrBlock"],
            "availability_zone": declared_or_live(inputs, "availability_zone", raw.get("AvailabilityZone")),
            "map_public_ip_on_launch": bool(raw.get("MapPublicIpOnLaunch", False)),
            "tags": tag_dict(raw.get("Tags")),
        }
        return ReadResult(raw["SubnetId"], live, self._outputs(raw))

    def update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        public = bool(new_inputs.get("map_public_ip_on_launch", False))
        if public != bool(old_inputs.get("map_public_ip_on_launch", False)):
            self._set_public_ip(id, public)
        self.sync_tags(id, old_inputs.get("tags") or {}, new_inputs.get("tags") or {})
        return {}


# --- InternetGateway ----------------------------------------------------------------


class InternetGateway(Resource, type="aws:ec2:InternetGateway"):
    """A VPC's way to the internet; moving it to another VPC is done in place."""

    vpc_id: str | None = None
    tags: dict[str, str] = {}
    arn: Output[str]
    owner_id: Output[str]


class InternetGatewayProvider(Ec2Resource):
    type_token = "aws:ec2:InternetGateway"
    resource_class = InternetGateway
    kind = "internet-gateway"
    describe_op, ids_param, list_key = (
        "describe_internet_gateways", "InternetGatewayIds", "InternetGateways")
    id_filter = "internet-gateway-id"

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        earlier = self.earlier_attempt(ctx, inputs)
        if earlier is not None:
            igw_id, outputs, attached = earlier.id, dict(earlier.outputs), earlier.inputs["vpc_id"]
        else:
            igw = call("create internet gateway", self.client.create_internet_gateway,
                       TagSpecifications=tag_specs("internet-gateway", inputs.get("tags") or {}, ctx),
                       )["InternetGateway"]
            igw_id, attached = igw["InternetGatewayId"], None
            outputs = self.base_outputs(igw, igw_id)
        if inputs.get("vpc_id") and attached != inputs["vpc_id"]:
            self._attach(igw_id, inputs["vpc_id"])
        return Created(igw_id, outputs)

    def _attach(self, igw_id: str, vpc_id: str) -> None:
        call(f"attach {igw_id} to {vpc_id}", self.client.attach_internet_gateway,
             InternetGatewayId=igw_id, VpcId=vpc_id)

    def _detach_all(self, igw_id: str) -> None:
        """Detach from whatever VPC AWS says, not only the recorded one (drift)."""
        igw = self.describe(igw_id)
        for vpc_id in _attached_vpcs(igw or {}):
            call_or_none(f"detach {igw_id} from {vpc_id}", self.client.detach_internet_gateway,
                         InternetGatewayId=igw_id, VpcId=vpc_id)

    def result(self, raw: Any, inputs: Mapping[str, Any]) -> ReadResult:
        igw_id = raw["InternetGatewayId"]
        vpcs = _attached_vpcs(raw)
        live = {"vpc_id": vpcs[0] if vpcs else None, "tags": tag_dict(raw.get("Tags"))}
        return ReadResult(igw_id, live, self.base_outputs(raw, igw_id))

    def update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        wanted = new_inputs.get("vpc_id")
        if _attached_vpcs(self.describe(id) or {}) != ([wanted] if wanted else []):
            self._detach_all(id)
            if wanted:
                self._attach(id, wanted)
        self.sync_tags(id, old_inputs.get("tags") or {}, new_inputs.get("tags") or {})
        return {}

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        self._detach_all(id)
        super().delete(ctx, id, inputs, outputs)


def _attached_vpcs(igw: Mapping[str, Any]) -> list[str]:
    return sorted(a["VpcId"] for a in igw.get("Attachments", [])
                  if a.get("State") in ("attached", "available", "attaching"))


# --- routes -------------------------------------------------------------------------


ROUTE_TARGETS = {
    "gateway_id": "GatewayId",
    "nat_gateway_id": "NatGatewayId",
    "transit_gateway_id": "TransitGatewayId",
    "vpc_peering_connection_id": "VpcPeeringConnectionId",
    "network_interface_id": "NetworkInterfaceId",
}
"""Route targets Stackwright models: input name → AWS field."""


def canonical_route(route: Mapping[str, Any]) -> dict[str, Any]:
    """Destination and target only; targets left as ``None`` are dropped."""
    canon = {"destination_cidr_block": route.get("destination_cidr_block")}
    canon.update({k: route[k] for k in ROUTE_TARGETS if route.get(k) is not None})
    return canon


def canonical_routes(routes: Any) -> Any:
    if not isinstance(routes, (list, tuple)) or not all(isinstance(r, Mapping) for r in routes):
        return routes
    return sorted((canonical_route(r) for r in routes), key=lambda r: str(r["destination_cidr_block"]))


def check_route(route: Any, prop: str) -> None:
    if not isinstance(route, Mapping) or not isinstance(route.get("destination_cidr_block"), str):
        raise InputError("a route needs a destination_cidr_block", prop=prop)
    unknown = set(route) - {"destination_cidr_block", *ROUTE_TARGETS}
    if unknown:
        raise InputError(f"unknown route keys: {', '.join(sorted(unknown))}", prop=prop,
                         hint=f"a route has destination_cidr_block and one of {', '.join(ROUTE_TARGETS)}")
    targets = [k for k in ROUTE_TARGETS if route.get(k) is not None]
    if len(targets) != 1:
        raise InputError(f"route to {route['destination_cidr_block']} needs exactly one target",
                         prop=prop, hint=f"one of {', '.join(ROUTE_TARGETS)}")


def live_routes(table: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Routes someone created (not the VPC's local route, not propagated ones)."""
    routes = []
    for route in table.get("Routes", []):
        if route.get("Origin") != "CreateRoute" or not route.get("DestinationCidrBlock"):
            continue
        canon: dict[str, Any] = {"destination_cidr_block": route["DestinationCidrBlock"]}
        canon.update({k: route[field] for k, field in ROUTE_TARGETS.items() if route.get(field)})
        routes.append(canon)
    return sorted(routes, key=lambda r: str(r["destination_cidr_block"]))


def route_args(route: Mapping[str, Any]) -> dict[str, Any]:
    args = {"DestinationCidrBlock": route["destination_cidr_block"]}
    args.update({field: route[k] for k, field in ROUTE_TARGETS.items() if route.get(k)})
    return args


class RouteTable(Resource, type="aws:ec2:RouteTable"):
    """Where a subnet's traffic goes. ``routes=None`` leaves routes to ``Route``
    resources; a list (even empty) makes the table hold exactly those routes."""

    vpc_id: str
    routes: list[dict[str, Any]] | None = None
    tags: dict[str, str] = {}
    arn: Output[str]
    owner_id: Output[str]


class RouteTableProvider(Ec2Resource):
    type_token = "aws:ec2:RouteTable"
    resource_class = RouteTable
    replace_on = frozenset({"vpc_id"})
    kind = "route-table"
    describe_op, ids_param, list_key = "describe_route_tables", "RouteTableIds", "RouteTables"
    id_filter = "route-table-id"

    def normalise(self, values: dict[str, Any]) -> dict[str, Any]:
        values["routes"] = when_known(values.get("routes"), canonical_routes)
        return values

    def validate(self, values: Mapping[str, Any]) -> None:
        routes = values.get("routes")
        if routes is None:
            return
        if not isinstance(routes, (list, tuple)):
            raise InputError("routes must be a list of route dicts", prop="routes")
        for route in routes:
            check_route(route, "routes")
        destinations = [r["destination_cidr_block"] for r in routes]
        if len(set(destinations)) != len(destinations):
            raise InputError("two routes have the same destination", prop="routes")

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        earlier = self.earlier_attempt(ctx, inputs)  # moto ignores the ClientToken
        if earlier is not None:
            table_id, outputs = earlier.id, dict(earlier.outputs)
        else:
            table = call("create route table", self.client.create_route_table,
                         VpcId=inputs["vpc_id"], ClientToken=idempotency_token(ctx.token),
                         TagSpecifications=tag_specs("route-table", inputs.get("tags") or {}, ctx),
                         )["RouteTable"]
            table_id, outputs = table["RouteTableId"], self.base_outputs(table, table["RouteTableId"])
        if inputs.get("routes") is not None:
            self._sync_routes(table_id, inputs["routes"])
        return Created(table_id, outputs)

    def _sync_routes(self, table_id: str, wanted: list[Mapping[str, Any]]) -> None:
        """Make the table's created routes exactly ``wanted``: add, retarget, remove."""
        live = {r["destination_cidr_block"]: r for r in live_routes(self.describe(table_id) or {})}
        goal = {r["destination_cidr_block"]: canonical_route(r) for r in wanted}
        for destination, route in goal.items():
            if destination not in live:
                call(f"add route {destination} to {table_id}", self.client.create_route,
                     RouteTableId=table_id, **route_args(route))
            elif live[destination] != route:
                call(f"change route {destination} of {table_id}", self.client.replace_route,
                     RouteTableId=table_id, **route_args(route))
        for destination in sorted(set(live) - set(goal)):
            call_or_none(f"remove route {destination} from {table_id}", self.client.delete_route,
                         RouteTableId=table_id, DestinationCidrBlock=destination)

    def result(self, raw: Any, inputs: Mapping[str, Any]) -> ReadResult:
        table_id = raw["RouteTableId"]
        live = {"vpc_id": raw["VpcId"],
                "routes": declared_or_live(inputs, "routes", live_routes(raw)),
                "tags": tag_dict(raw.get("Tags"))}
        return ReadResult(table_id, live, self.base_outputs(raw, table_id))

    def update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        if new_inputs.get("routes") is not None:
            self._sync_routes(id, new_inputs["routes"])
        self.sync_tags(id, old_inputs.get("tags") or {}, new_inputs.get("tags") or {})
        return {}


class Route(Resource, type="aws:ec2:Route"):
    """One route in a route table whose ``routes`` are not managed inline."""

    route_table_id: str
    destination_cidr_block: str
    gateway_id: str | None = None
    nat_gateway_id: str | None = None
    transit_gateway_id: str | None = None
    vpc_peering_connection_id: str | None = None
    network_interface_id: str | None = None


class RouteProvider(ManagedResource):
    """Id ``<route table id>_<destination>``, the form ``import`` takes."""

    service = "ec2"
    type_token = "aws:ec2:Route"
    resource_class = Route
    replace_on = frozenset({"*"})
    unique_keys = ("route_table_id", "destination_cidr_block")

    def validate(self, values: Mapping[str, Any]) -> None:
        check_route({k: v for k, v in values.items() if k != "route_table_id"}, "destination_cidr_block")

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        table_id = inputs["route_table_id"]
        call(f"add route to {table_id}", self.client.create_route,
             RouteTableId=table_id, **route_args(inputs))
        return Created(f"{table_id}_{inputs['destination_cidr_block']}", {})

    batch_size = 100

    def describe(self, id: str) -> dict[str, Any] | None:
        table_id, _, destination = id.partition("_")
        return self._route(table_id, destination)

    def batch_key(self, id: str) -> str:
        return parent_id(id)

    def describe_many(self, keys: list[str]) -> Mapping[str, Any]:
        return described(self.client, "describe_route_tables", "RouteTables", "route-table-id", keys,
                         "RouteTableId")

    def from_batch(self, id: str, answer: Any) -> dict[str, Any] | None:
        table_id, _, destination = id.partition("_")
        return _route_in(answer, table_id, destination)

    def _route(self, table_id: str, destination: str) -> dict[str, Any] | None:
        answer = call_or_none(f"describe {table_id}", self.client.describe_route_tables,
                              RouteTableIds=[table_id])
        tables = (answer or {}).get("RouteTables", [])
        return _route_in(tables[0], table_id, destination) if tables else None

    def find(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> list[Any]:
        route = self._route(str(inputs.get("route_table_id")), str(inputs.get("destination_cidr_block")))
        return [route] if route else []

    def result(self, raw: Any, inputs: Mapping[str, Any]) -> ReadResult:
        live = self.canonical(raw)
        return ReadResult(f"{raw['route_table_id']}_{raw['destination_cidr_block']}", live, {})

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        table_id, _, destination = id.partition("_")
        call_or_none(f"remove route {destination} from {table_id}", self.client.delete_route,
                     RouteTableId=table_id, DestinationCidrBlock=destination)


def _route_in(table: Mapping[str, Any], table_id: str, destination: str) -> dict[str, Any] | None:
    for route in live_routes(table):
        if route["destination_cidr_block"] == destination:
            return {"route_table_id": table_id, **route}
    return None


class RouteTableAssociation(Resource, type="aws:ec2:RouteTableAssociation"):
    """Makes a subnet use a route table."""

    route_table_id: str
    subnet_id: str


class RouteTableAssociationProvider(ManagedResource):
    service = "ec2"
    type_token = "aws:ec2:RouteTableAssociation"
    resource_class = RouteTableAssociation
    replace_on = frozenset({"*"})
    unique_keys = ("subnet_id",)
    """A subnet has one route table: the old association must go before the new one."""

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        answer = call("associate route table", self.client.associate_route_table,
                      RouteTableId=inputs["route_table_id"], SubnetId=inputs["subnet_id"])
        return Created(answer["AssociationId"], {})

    batch_size = 100

    def _associations(self, filter_name: str, values: list[str]) -> list[dict[str, Any]]:
        tables = described(self.client, "describe_route_tables", "RouteTables", filter_name, values,
                           "RouteTableId").values()
        return [a for table in tables for a in table.get("Associations", [])
                if a.get("SubnetId") and a.get("AssociationState", {}).get("State", "associated")
                in ("associated", "associating")]

    def describe(self, id: str) -> dict[str, Any] | None:
        return self.describe_many([id]).get(id)

    def describe_many(self, keys: list[str]) -> Mapping[str, Any]:
        wanted = set(keys)
        return {a["RouteTableAssociationId"]: a
                for a in self._associations("association.route-table-association-id", keys)
                if a.get("RouteTableAssociationId") in wanted}

    def find(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> list[Any]:
        subnet = str(inputs.get("subnet_id"))
        return [a for a in self._associations("association.subnet-id", [subnet])
                if a.get("SubnetId") == subnet]

    def result(self, raw: Any, inputs: Mapping[str, Any]) -> ReadResult:
        live = {"route_table_id": raw["RouteTableId"], "subnet_id": raw["SubnetId"]}
        return ReadResult(raw["RouteTableAssociationId"], live, {})

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        call_or_none(f"disassociate {id}", self.client.disassociate_route_table, AssociationId=id)


# --- security groups ----------------------------------------------------------------


PROTOCOL_NAMES = {"all": "-1", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}


def canonical_protocol(protocol: Any) -> str:
    text = str(protocol).lower()
    return PROTOCOL_NAMES.get(text, text)


def canonical_ports(protocol: str, from_port: Any, to_port: Any) -> tuple[int, int]:
    """All-traffic rules have no ports: AWS reports none, and we report 0 and 0."""
    if protocol == "-1":
        return 0, 0
    return int(from_port), int(to_port)


@dataclass(frozen=True, order=True)
class Permission:
    """One source allowed on one protocol and port range: AWS's unit of a rule."""

    protocol: str
    from_port: int
    to_port: int
    cidr: str = ""
    group: str = ""
    description: str = ""

    @property
    def identity(self) -> tuple[str, int, int, str, str]:
        """What AWS keys a rule by; the description is only a label on it."""
        return self.protocol, self.from_port, self.to_port, self.cidr, self.group

    def ip_permission(self) -> dict[str, Any]:
        perm: dict[str, Any] = {"IpProtocol": self.protocol}
        if self.protocol != "-1":
            perm.update(FromPort=self.from_port, ToPort=self.to_port)
        label = {"Description": self.description} if self.description else {}
        if self.cidr:
            perm["IpRanges"] = [{"CidrIp": self.cidr, **label}]
        else:
            perm["UserIdGroupPairs"] = [{"GroupId": self.group, **label}]
        return perm


def explode(rule: Mapping[str, Any]) -> list[Permission]:
    """A rule dict as Permissions, one per CIDR block and source group."""
    protocol = canonical_protocol(rule.get("protocol", "-1"))
    low, high = canonical_ports(protocol, rule.get("from_port", 0), rule.get("to_port", 0))
    label = str(rule.get("description") or "")
    found = [Permission(protocol, low, high, cidr=c, description=label)
             for c in rule.get("cidr_blocks") or []]
    if rule.get("source_security_group_id"):
        found.append(Permission(protocol, low, high, group=rule["source_security_group_id"],
                                description=label))
    return found


def regroup(permissions: Iterable[Permission]) -> list[dict[str, Any]]:
    """Permissions as rule dicts: CIDR blocks sharing protocol, ports and description
    grouped in one rule, each source group in a rule of its own; a fixed order."""
    grouped: dict[tuple[str, int, int, str], list[str]] = {}
    rules: list[dict[str, Any]] = []
    for p in sorted(set(permissions)):
        if p.cidr:
            grouped.setdefault((p.protocol, p.from_port, p.to_port, p.description), []).append(p.cidr)
        else:
            rules.append(_rule(p.protocol, p.from_port, p.to_port, p.description,
                               source_security_group_id=p.group))
    for (protocol, low, high, label), cidrs in grouped.items():
        rules.append(_rule(protocol, low, high, label, cidr_blocks=sorted(cidrs)))
    return sorted(rules, key=_rule_order)


def _rule(protocol: str, low: int, high: int, label: str, **source: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"protocol": protocol, "from_port": low, "to_port": high, **source}
    if label:
        rule["description"] = label
    return rule


def _rule_order(rule: Mapping[str, Any]) -> tuple[str, int, int, str, str, str]:
    return (rule["protocol"], rule["from_port"], rule["to_port"],
            ",".join(rule.get("cidr_blocks", [])), rule.get("source_security_group_id", ""),
            rule.get("description", ""))


def canonical_rules(rules: Any) -> Any:
    if not isinstance(rules, (list, tuple)) or not all(isinstance(r, Mapping) for r in rules):
        return rules
    return regroup(p for r in rules for p in explode(r))


def live_permissions(ip_permissions: Iterable[Mapping[str, Any]]) -> list[Permission]:
    """AWS's IpPermissions as Permissions; IPv6 and prefix-list sources are skipped."""
    found = []
    for perm in ip_permissions:
        protocol = canonical_protocol(perm.get("IpProtocol", "-1"))
        low, high = canonical_ports(protocol, perm.get("FromPort", 0), perm.get("ToPort", 0))
        for r in perm.get("IpRanges", []):
            found.append(Permission(protocol, low, high, cidr=r["CidrIp"],
                                    description=r.get("Description", "")))
        for g in perm.get("UserIdGroupPairs", []):
            found.append(Permission(protocol, low, high, group=g["GroupId"],
                                    description=g.get("Description", "")))
    return found


def check_rule(rule: Any, prop: str) -> None:
    allowed = {"protocol", "from_port", "to_port", "cidr_blocks", "source_security_group_id",
               "description"}
    if not isinstance(rule, Mapping):
        raise InputError("a rule is a dict", prop=prop)
    unknown = set(rule) - allowed
    if unknown:
        raise InputError(f"unknown rule keys: {', '.join(sorted(unknown))}", prop=prop,
                         hint=f"a rule has {', '.join(sorted(allowed))}")
    check_rule_values(rule, prop)


def check_rule_values(rule: Mapping[str, Any], prop: str) -> None:
    protocol = canonical_protocol(rule.get("protocol", "-1"))
    if protocol != "-1":
        for key in ("from_port", "to_port"):
            if not isinstance(rule.get(key), int) or isinstance(rule.get(key), bool):
                raise InputError(f"a {protocol} rule needs an integer {key}", prop=prop)
    cidrs = rule.get("cidr_blocks") or []
    if not isinstance(cidrs, (list, tuple)) or not all(isinstance(c, str) for c in cidrs):
        raise InputError("cidr_blocks must be a list of strings", prop=prop)
    if not cidrs and not rule.get("source_security_group_id"):
        raise InputError("a rule needs cidr_blocks or a source_security_group_id", prop=prop)


class SecurityGroupAccess:
    """Authorize, relabel and revoke Permissions of one direction of a group."""

    def __init__(self, client: Any, group_id: str, egress: bool) -> None:
        self.client, self.group_id, self.egress = client, group_id, egress
        suffix = "egress" if egress else "ingress"
        self._authorize = getattr(client, f"authorize_security_group_{suffix}")
        self._revoke = getattr(client, f"revoke_security_group_{suffix}")
        self._relabel = getattr(client, f"update_security_group_rule_descriptions_{suffix}")
        self.direction = suffix

    def live(self) -> list[Permission] | None:
        answer = call_or_none(f"describe {self.group_id}", self.client.describe_security_groups,
                              GroupIds=[self.group_id])
        groups = (answer or {}).get("SecurityGroups", [])
        return self.of(groups[0]) if groups else None

    def of(self, group: Mapping[str, Any]) -> list[Permission]:
        """This direction's permissions in a described group."""
        return live_permissions(group.get("IpPermissionsEgress" if self.egress else "IpPermissions", []))

    def authorize(self, permissions: list[Permission]) -> None:
        if permissions:
            call(f"authorize {self.direction} on {self.group_id}", self._authorize,
                 GroupId=self.group_id, IpPermissions=[p.ip_permission() for p in permissions])

    def revoke(self, permissions: list[Permission]) -> None:
        if permissions:
            call_or_none(f"revoke {self.direction} on {self.group_id}", self._revoke,
                         GroupId=self.group_id, IpPermissions=[p.ip_permission() for p in permissions])

    def relabel(self, permissions: list[Permission]) -> None:
        if permissions:
            call(f"relabel {self.direction} rules of {self.group_id}", self._relabel,
                 GroupId=self.group_id, IpPermissions=[p.ip_permission() for p in permissions])

    def reconcile(self, wanted: Iterable[Permission]) -> None:
        """New access is granted before old is revoked, so nothing is briefly cut off."""
        live = {p.identity: p for p in self.live() or []}
        goal = {p.identity: p for p in wanted}
        self.authorize([p for key, p in goal.items() if key not in live])
        self.relabel([p for key, p in goal.items() if key in live and live[key] != p])
        self.revoke([p for key, p in live.items() if key not in goal])


class SecurityGroup(Resource, type="aws:ec2:SecurityGroup"):
    """A stateful firewall for a VPC's network interfaces.

    ``ingress``/``egress`` are lists of ``{protocol, from_port, to_port, cidr_blocks,
    source_security_group_id, description}``. ``None`` leaves that direction to
    ``SecurityGroupRule`` resources (and AWS's default allow-all egress in place); a
    list makes the group allow exactly those rules.
    """

    name: str
    description: str = "Managed by Stackwright"
    vpc_id: str
    ingress: list[dict[str, Any]] | None = None
    egress: list[dict[str, Any]] | None = None
    tags: dict[str, str] = {}
    arn: Output[str]
    owner_id: Output[str]


class SecurityGroupProvider(Ec2Resource):
    type_token = "aws:ec2:SecurityGroup"
    resource_class = SecurityGroup
    replace_on = frozenset({"name", "description", "vpc_id"})
    unique_keys = ("name", "vpc_id")
    kind = "security-group"
    describe_op, ids_param, list_key = "describe_security_groups", "GroupIds", "SecurityGroups"
    id_filter = "group-id"

    def normalise(self, values: dict[str, Any]) -> dict[str, Any]:
        for key in ("ingress", "egress"):
            values[key] = when_known(values.get(key), canonical_rules)
        return values

    def validate(self, values: Mapping[str, Any]) -> None:
        for key in ("ingress", "egress"):
            rules = values.get(key)
            if rules is None:
                continue
            if not isinstance(rules, (list, tuple)):
                raise InputError(f"{key} must be a list of rule dicts", prop=key)
            for rule in rules:
                check_rule(rule, key)

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        answer = create_or_adopt(
            f"create security group {inputs['name']}",
            lambda: self.client.create_security_group(
                GroupName=inputs["name"], Description=inputs.get("description") or "",
                VpcId=inputs["vpc_id"],
                TagSpecifications=tag_specs("security-group", inputs.get("tags") or {}, ctx)),
            frozenset({"InvalidGroup.Duplicate"}),
            lambda: next(iter(self.find(ctx, inputs)), None))
        group_id = answer["GroupId"]
        self._sync_rules(group_id, inputs)
        group = self.describe(group_id) or {}
        return Created(group_id, self._outputs(group, group_id))

    def _sync_rules(self, group_id: str, inputs: Mapping[str, Any]) -> None:
        for key, egress in (("ingress", False), ("egress", True)):
            rules = inputs.get(key)
            if rules is not None:
                wanted = [p for r in rules for p in explode(r)]
                SecurityGroupAccess(self.client, group_id, egress).reconcile(wanted)

    def _outputs(self, raw: Mapping[str, Any], group_id: str) -> dict[str, Any]:
        outputs = self.base_outputs(raw, group_id)
        outputs["arn"] = raw.get("SecurityGroupArn") or outputs["arn"]
        return outputs

    def find(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> list[Any]:
        """By name in the VPC (unique there), if it carries this URN."""
        filters = [{"Name": "group-name", "Values": [str(inputs.get("name"))]},
                   {"Name": "vpc-id", "Values": [str(inputs.get("vpc_id"))]}]
        answer = call(f"find {ctx.urn}", self.client.describe_security_groups, Filters=filters)
        return [g for g in answer.get("SecurityGroups", []) if is_ours(all_tags(g.get("Tags")), ctx)]

    def result(self, raw: Any, inputs: Mapping[str, Any]) -> ReadResult:
        group_id = raw["GroupId"]
        live = {
            "name": raw["GroupName"], "description": raw.get("Description", ""),
            "vpc_id": raw.get("VpcId"),
            "ingress": declared_or_live(inputs, "ingress", regroup(live_permissions(raw.get("IpPermissions", [])))),
            "egress": declared_or_live(inputs, "egress", regroup(live_permissions(raw.get("IpPermissionsEgress", [])))),
            "tags": tag_dict(raw.get("Tags")),
        }
        return ReadResult(group_id, live, self._outputs(raw, group_id))

    def update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        self._sync_rules(id, new_inputs)
        self.sync_tags(id, old_inputs.get("tags") or {}, new_inputs.get("tags") or {})
        return {}


class SecurityGroupRule(Resource, type="aws:ec2:SecurityGroupRule"):
    """One rule of a group whose ``ingress``/``egress`` are not managed inline."""

    type: str
    security_group_id: str
    protocol: str
    from_port: int = 0
    to_port: int = 0
    cidr_blocks: list[str] = []
    source_security_group_id: str | None = None
    description: str = ""


class SecurityGroupRuleProvider(ManagedResource):
    """Id ``<group>_<type>_<protocol>_<from>_<to>_<source>[_<source>...]``, the form
    ``import`` takes (as Terraform's)."""

    service = "ec2"
    type_token = "aws:ec2:SecurityGroupRule"
    resource_class = SecurityGroupRule
    replace_on = frozenset({"*"})
    unique_keys = ("type", "security_group_id", "protocol", "from_port", "to_port")
    """Rules that keep these likely overlap; AWS refuses a duplicate, so delete first."""

    def normalise(self, values: dict[str, Any]) -> dict[str, Any]:
        if is_unknown(values.get("protocol")):
            return values
        protocol = canonical_protocol(values.get("protocol", "-1"))
        values["protocol"] = protocol
        if not is_unknown([values.get("from_port"), values.get("to_port")]):
            values["from_port"], values["to_port"] = canonical_ports(
                protocol, values.get("from_port", 0), values.get("to_port", 0))
        values["cidr_blocks"] = when_known(values.get("cidr_blocks") or [], sorted_strings)
        values["description"] = values.get("description") or ""
        return values

    def validate(self, values: Mapping[str, Any]) -> None:
        if values.get("type") not in ("ingress", "egress"):
            raise InputError("type must be 'ingress' or 'egress'", prop="type")
        check_rule_values(values, "cidr_blocks")

    def _access(self, values: Mapping[str, Any]) -> SecurityGroupAccess:
        return SecurityGroupAccess(self.client, values["security_group_id"], values["type"] == "egress")

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        values = self.canonical(inputs)
        self._access(values).authorize(explode(values))
        return Created(rule_id(values), {})

    batch_size = 100

    def describe(self, id: str) -> dict[str, Any] | None:
        return self._present(parse_rule_id(id))

    def batch_key(self, id: str) -> str:
        return parent_id(id)

    def describe_many(self, keys: list[str]) -> Mapping[str, Any]:
        return described(self.client, "describe_security_groups", "SecurityGroups", "group-id", keys, "GroupId")

    def from_batch(self, id: str, answer: Any) -> dict[str, Any] | None:
        values = parse_rule_id(id)
        return self._kept(values, self._access(values).of(answer))

    def find(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> list[Any]:
        present = self._present(self.canonical(inputs))
        return [present] if present else []

    def _present(self, values: Mapping[str, Any]) -> dict[str, Any] | None:
        """The declared rule as far as AWS still has it; ``None`` when none of it is left."""
        return self._kept(values, self._access(values).live() or [])

    @staticmethod
    def _kept(values: Mapping[str, Any], permissions: list[Permission]) -> dict[str, Any] | None:
        live = {p.identity: p for p in permissions}
        found = [live[p.identity] for p in explode(values) if p.identity in live]
        if not found:
            return None
        return {
            **values, "cidr_blocks": sorted(p.cidr for p in found if p.cidr),
            "source_security_group_id": next((p.group for p in found if p.group), None),
            "description": found[0].description,
        }

    def result(self, raw: Any, inputs: Mapping[str, Any]) -> ReadResult:
        live = self.canonical(raw)
        return ReadResult(rule_id(live), live, {})

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        values = self.canonical(inputs) if inputs.get("security_group_id") else parse_rule_id(id)
        self._access(values).revoke(explode(values))


def rule_id(values: Mapping[str, Any]) -> str:
    sources = list(values.get("cidr_blocks") or [])
    if values.get("source_security_group_id"):
        sources.append(values["source_security_group_id"])
    parts = [values["security_group_id"], values["type"], values["protocol"],
             str(values["from_port"]), str(values["to_port"]), *sources]
    return "_".join(parts)


def parse_rule_id(id: str) -> dict[str, Any]:
    """The rule an id names; a description cannot be recovered from it."""
    parts = id.split("_")
    if len(parts) < 6:
        raise ProviderError(f"malformed security group rule id {id!r}",
                            retryable=False)
    group, kind, protocol, low, high, *sources = parts
    return {
        "security_group_id": group, "type": kind, "protocol": protocol,
        "from_port": int(low), "to_port": int(high),
        "cidr_blocks": sorted(s for s in sources if not s.startswith("sg-")),
        "source_security_group_id": next((s for s in sources if s.startswith("sg-")), None),
        "description": "",
    }


RESOURCE_PROVIDERS: list[type[AwsResource]] = [
    VpcProvider, SubnetProvider, InternetGatewayProvider, RouteTableProvider, RouteProvider,
    RouteTableAssociationProvider, SecurityGroupProvider, SecurityGroupRuleProvider,
]
