"""aws:ec2 networking types against the emulator: create, read round trip, in-place
update checked with a separate boto3 client, replacement keys, delete, lost creates."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from aws.conftest import assert_round_trip, ctx, tag_map, unique
from stackwright.errors import InputError
from stackwright.providers.aws.base import URN_TAG, client_token

pytestmark = pytest.mark.aws


@pytest.fixture
def client(boto: Any) -> Any:
    """A boto3 client of our own, to check what the handler did without trusting it."""
    return boto("ec2")


@pytest.fixture
def vpc_id(client: Any) -> Iterator[str]:
    """A plain VPC made with boto3, for the types that live in one."""
    vpc = client.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    yield vpc
    for table in client.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"]:
        if not any(a.get("Main") for a in table.get("Associations", [])):
            client.delete_route_table(RouteTableId=table["RouteTableId"])
    for subnet in client.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]:
        client.delete_subnet(SubnetId=subnet["SubnetId"])
    client.delete_vpc(VpcId=vpc)


def tags_of(client: Any, resource_id: str) -> dict[str, str]:
    found = client.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource_id]}])["Tags"]
    return tag_map(found)


# --- Vpc ----------------------------------------------------------------------------


def test_vpc_lifecycle(handlers: Any, client: Any) -> None:
    h = handlers("aws:ec2:Vpc")
    c = ctx("aws:ec2:Vpc", unique("vpc"))
    inputs = h.check({"cidr_block": "10.1.0.0/16", "enable_dns_hostnames": True,
                      "tags": {"team": "net"}})
    created = h.create(c, inputs)
    assert created.id.startswith("vpc-")
    assert created.outputs["arn"].endswith(f":vpc/{created.id}")
    assert tags_of(client, created.id) == {"team": "net", URN_TAG: c.urn}
    assert_round_trip(h, c, created.id, inputs)

    new = h.check({**inputs, "enable_dns_hostnames": False, "tags": {"team": "core", "tier": "1"}})
    assert h.diff(inputs, created.outputs, new).replaces == ()
    h.update(c, created.id, inputs, created.outputs, new)
    attr = client.describe_vpc_attribute(VpcId=created.id, Attribute="enableDnsHostnames")
    assert attr["EnableDnsHostnames"]["Value"] is False
    assert tags_of(client, created.id) == {"team": "core", "tier": "1", URN_TAG: c.urn}
    assert_round_trip(h, c, created.id, new)

    assert h.diff(new, {}, {**new, "cidr_block": "10.2.0.0/16"}).replaces == ("cidr_block",)
    found = h.read(c, None, new, {})
    assert found is not None and found.id == created.id

    h.delete(c, created.id, new, created.outputs)
    assert client.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [created.id]}])["Vpcs"] == []
    assert h.read(c, created.id, new, {}) is None
    assert h.read(c, None, new, {}) is None
    h.delete(c, created.id, new, created.outputs)  # already gone is success


def test_vpc_read_without_id_finds_only_its_own_urn(handlers: Any, client: Any) -> None:
    """A create that crashed after AWS made the VPC is found by its URN tag."""
    h = handlers("aws:ec2:Vpc")
    c = ctx("aws:ec2:Vpc", unique("lost"))
    inputs = h.check({"cidr_block": "10.3.0.0/16"})
    lost = client.create_vpc(CidrBlock="10.3.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": URN_TAG, "Value": c.urn}]}])["Vpc"]["VpcId"]
    try:
        found = h.read(c, None, inputs, {})
        assert found is not None and found.id == lost
        assert h.read(ctx("aws:ec2:Vpc", unique("other")), None, inputs, {}) is None
        assert h.read(c, None, {**inputs, "cidr_block": "10.4.0.0/16"}, {}) is None  # a replacement's
    finally:
        client.delete_vpc(VpcId=lost)


def test_vpc_import_reads_live_inputs(handlers: Any, client: Any) -> None:
    h = handlers("aws:ec2:Vpc")
    vpc = client.create_vpc(CidrBlock="10.5.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "legacy"}]}])["Vpc"]["VpcId"]
    live = h.read(ctx("aws:ec2:Vpc", "imported", "import-x"), vpc, {}, {})
    assert live is not None
    assert dict(live.inputs) == {"cidr_block": "10.5.0.0/16", "enable_dns_hostnames": False,
                                 "enable_dns_support": True, "tags": {"Name": "legacy"}}
    h.delete(ctx("aws:ec2:Vpc"), vpc, live.inputs, {})


def test_check_rejects_reserved_tags(handlers: Any) -> None:
    with pytest.raises(InputError):
        handlers("aws:ec2:Vpc").check({"cidr_block": "10.0.0.0/16", "tags": {URN_TAG: "x"}})


# --- Subnet -------------------------------------------------------------------------


def test_subnet_lifecycle(handlers: Any, client: Any, vpc_id: str) -> None:
    h = handlers("aws:ec2:Subnet")
    c = ctx("aws:ec2:Subnet", unique("subnet"))
    inputs = h.check({"vpc_id": vpc_id, "cidr_block": "10.20.1.0/24", "tags": {"tier": "public"}})
    assert inputs["availability_zone"] is None
    created = h.create(c, inputs)
    assert created.outputs["availability_zone"].startswith("us-east-1")
    assert created.outputs["arn"].endswith(f":subnet/{created.id}")
    assert_round_trip(h, c, created.id, inputs)  # an AZ AWS chose is not drift

    new = h.check({**inputs, "map_public_ip_on_launch": True, "tags": {}})
    assert h.diff(inputs, created.outputs, new).replaces == ()
    h.update(c, created.id, inputs, created.outputs, new)
    live = client.describe_subnets(SubnetIds=[created.id])["Subnets"][0]
    assert live["MapPublicIpOnLaunch"] is True
    assert tags_of(client, created.id) == {URN_TAG: c.urn}
    assert_round_trip(h, c, created.id, new)

    pinned = {**new, "availability_zone": "us-east-1a"}
    result = h.diff(new, {}, pinned)
    assert result.replaces == ("availability_zone",) and result.delete_before_replace
    assert h.diff(new, {}, {**new, "cidr_block": "10.20.2.0/24"}).delete_before_replace is False
    imported = h.read(c, created.id, {}, {})
    assert imported is not None and imported.inputs["availability_zone"] == created.outputs["availability_zone"]

    found = h.read(c, None, new, {})
    assert found is not None and found.id == created.id
    h.delete(c, created.id, new, created.outputs)
    assert client.describe_subnets(Filters=[{"Name": "subnet-id", "Values": [created.id]}])["Subnets"] == []
    assert h.read(c, created.id, new, {}) is None
    assert h.read(c, None, new, {}) is None
    h.delete(c, created.id, new, created.outputs)


# --- InternetGateway ----------------------------------------------------------------


def test_internet_gateway_lifecycle(handlers: Any, client: Any, vpc_id: str) -> None:
    h = handlers("aws:ec2:InternetGateway")
    c = ctx("aws:ec2:InternetGateway", unique("igw"))
    other_vpc = client.create_vpc(CidrBlock="10.21.0.0/16")["Vpc"]["VpcId"]
    inputs = h.check({"vpc_id": vpc_id, "tags": {"a": "b"}})
    created = h.create(c, inputs)
    assert created.outputs["arn"].endswith(f":internet-gateway/{created.id}")
    assert_round_trip(h, c, created.id, inputs)

    moved = h.check({**inputs, "vpc_id": other_vpc})
    assert h.diff(inputs, {}, moved).replaces == ()  # attach/detach, in place
    h.update(c, created.id, inputs, created.outputs, moved)
    igw = client.describe_internet_gateways(InternetGatewayIds=[created.id])["InternetGateways"][0]
    assert [a["VpcId"] for a in igw["Attachments"]] == [other_vpc]
    assert_round_trip(h, c, created.id, moved)

    detached = h.check({**moved, "vpc_id": None})
    h.update(c, created.id, moved, created.outputs, detached)
    igw = client.describe_internet_gateways(InternetGatewayIds=[created.id])["InternetGateways"][0]
    assert igw["Attachments"] == []
    assert_round_trip(h, c, created.id, detached)
    h.update(c, created.id, detached, created.outputs, moved)

    found = h.read(c, None, moved, {})
    assert found is not None and found.id == created.id
    h.delete(c, created.id, moved, created.outputs)  # detaches first
    assert client.describe_internet_gateways(
        Filters=[{"Name": "internet-gateway-id", "Values": [created.id]}])["InternetGateways"] == []
    assert h.read(c, created.id, moved, {}) is None
    assert h.read(c, None, moved, {}) is None
    h.delete(c, created.id, moved, created.outputs)
    client.delete_vpc(VpcId=other_vpc)


# --- route tables and routes --------------------------------------------------------


@pytest.fixture
def gateway(client: Any, vpc_id: str) -> Iterator[str]:
    igw = client.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    client.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    yield igw
    client.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    client.delete_internet_gateway(InternetGatewayId=igw)


def live_routes(client: Any, table_id: str) -> dict[str, str]:
    table = client.describe_route_tables(RouteTableIds=[table_id])["RouteTables"][0]
    return {r["DestinationCidrBlock"]: r.get("GatewayId") or r.get("NatGatewayId")
            for r in table["Routes"] if r.get("Origin") == "CreateRoute"}


def test_route_table_lifecycle(handlers: Any, client: Any, vpc_id: str, gateway: str) -> None:
    h = handlers("aws:ec2:RouteTable")
    c = ctx("aws:ec2:RouteTable", unique("rt"))
    inputs = h.check({"vpc_id": vpc_id, "routes": [
        {"destination_cidr_block": "0.0.0.0/0", "gateway_id": gateway},
        {"destination_cidr_block": "192.168.0.0/16", "gateway_id": gateway, "nat_gateway_id": None},
    ], "tags": {"k": "v"}})
    created = h.create(c, inputs)
    assert live_routes(client, created.id) == {"0.0.0.0/0": gateway, "192.168.0.0/16": gateway}
    assert_round_trip(h, c, created.id, inputs)

    new = h.check({**inputs, "routes": [{"destination_cidr_block": "172.16.0.0/12", "gateway_id": gateway}]})
    assert h.diff(inputs, {}, new).changed == ("routes",)
    assert h.diff(inputs, {}, new).replaces == ()
    h.update(c, created.id, inputs, created.outputs, new)
    assert live_routes(client, created.id) == {"172.16.0.0/12": gateway}
    assert_round_trip(h, c, created.id, new)

    assert h.diff(new, {}, {**new, "vpc_id": "vpc-0other"}).replaces == ("vpc_id",)
    found = h.read(c, None, new, {})
    assert found is not None and found.id == created.id
    h.delete(c, created.id, new, created.outputs)
    assert client.describe_route_tables(
        Filters=[{"Name": "route-table-id", "Values": [created.id]}])["RouteTables"] == []
    assert h.read(c, created.id, new, {}) is None
    assert h.read(c, None, new, {}) is None
    h.delete(c, created.id, new, created.outputs)


def test_route_table_leaves_unmanaged_routes_alone(handlers: Any, client: Any, vpc_id: str,
                                                   gateway: str) -> None:
    """routes=None: Route resources own the routes, so read reports None, not drift."""
    h = handlers("aws:ec2:RouteTable")
    c = ctx("aws:ec2:RouteTable", unique("rt"))
    inputs = h.check({"vpc_id": vpc_id})
    assert inputs["routes"] is None
    created = h.create(c, inputs)
    client.create_route(RouteTableId=created.id, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
    assert_round_trip(h, c, created.id, inputs)
    h.update(c, created.id, inputs, {}, {**inputs, "tags": {"x": "y"}})
    assert live_routes(client, created.id) == {"0.0.0.0/0": gateway}
    imported = h.read(c, created.id, {}, {})
    assert imported is not None
    assert imported.inputs["routes"] == [{"destination_cidr_block": "0.0.0.0/0", "gateway_id": gateway}]
    h.delete(c, created.id, inputs, {})


def test_route_lifecycle(handlers: Any, client: Any, vpc_id: str, gateway: str) -> None:
    h = handlers("aws:ec2:Route")
    table = client.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    c = ctx("aws:ec2:Route", unique("route"))
    inputs = h.check({"route_table_id": table, "destination_cidr_block": "0.0.0.0/0",
                      "gateway_id": gateway})
    created = h.create(c, inputs)
    assert created.id == f"{table}_0.0.0.0/0"
    assert live_routes(client, table) == {"0.0.0.0/0": gateway}
    assert_round_trip(h, c, created.id, inputs)
    imported = h.read(c, created.id, {}, {})
    assert imported is not None and dict(imported.inputs) == inputs

    moved = h.diff(inputs, {}, {**inputs, "gateway_id": "igw-0other"})
    assert moved.replaces == ("gateway_id",) and moved.delete_before_replace
    other = h.diff(inputs, {}, {**inputs, "destination_cidr_block": "10.9.0.0/16"})
    assert other.replaces == ("destination_cidr_block",) and not other.delete_before_replace
    with pytest.raises(InputError):
        h.check({"route_table_id": table, "destination_cidr_block": "1.0.0.0/8"})

    found = h.read(c, None, inputs, {})
    assert found is not None and found.id == created.id
    h.delete(c, created.id, inputs, {})
    assert live_routes(client, table) == {}
    assert h.read(c, created.id, inputs, {}) is None
    assert h.read(c, None, inputs, {}) is None
    h.delete(c, created.id, inputs, {})


def test_route_table_association_lifecycle(handlers: Any, client: Any, vpc_id: str) -> None:
    h = handlers("aws:ec2:RouteTableAssociation")
    table = client.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    subnet = client.create_subnet(VpcId=vpc_id, CidrBlock="10.20.9.0/24")["Subnet"]["SubnetId"]
    c = ctx("aws:ec2:RouteTableAssociation", unique("assoc"))
    inputs = h.check({"route_table_id": table, "subnet_id": subnet})
    created = h.create(c, inputs)
    assert created.id.startswith("rtbassoc-")
    associations = client.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]["Associations"]
    assert [a["SubnetId"] for a in associations] == [subnet]
    assert_round_trip(h, c, created.id, inputs)

    swap = h.diff(inputs, {}, {**inputs, "route_table_id": "rtb-0other"})
    assert swap.replaces == ("route_table_id",) and swap.delete_before_replace
    assert h.diff(inputs, {}, {**inputs, "subnet_id": "subnet-0other"}).replaces == ("subnet_id",)

    found = h.read(c, None, inputs, {})
    assert found is not None and found.id == created.id
    h.delete(c, created.id, inputs, {})
    assert client.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]["Associations"] == []
    assert h.read(c, created.id, inputs, {}) is None
    assert h.read(c, None, inputs, {}) is None
    h.delete(c, created.id, inputs, {})


# --- security groups ----------------------------------------------------------------


def permissions(client: Any, group_id: str, key: str) -> set[tuple[Any, ...]]:
    """(protocol, from, to, source, description) for every source of every rule."""
    group = client.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    found = set()
    for perm in group[key]:
        ports = (perm["IpProtocol"], perm.get("FromPort"), perm.get("ToPort"))
        for r in perm.get("IpRanges", []):
            found.add((*ports, r["CidrIp"], r.get("Description")))
        for g in perm.get("UserIdGroupPairs", []):
            found.add((*ports, g["GroupId"], g.get("Description")))
    return found


def test_security_group_lifecycle(handlers: Any, client: Any, vpc_id: str) -> None:
    h = handlers("aws:ec2:SecurityGroup")
    c = ctx("aws:ec2:SecurityGroup", unique("sg"))
    peer = client.create_security_group(GroupName=unique("peer"), Description="p", VpcId=vpc_id)["GroupId"]
    name = unique("web")
    inputs = h.check({
        "name": name, "description": "web servers", "vpc_id": vpc_id,
        "ingress": [
            {"protocol": "tcp", "from_port": 443, "to_port": 443,
             "cidr_blocks": ["10.0.0.0/8", "0.0.0.0/0"], "description": "https"},
            {"protocol": "6", "from_port": 22, "to_port": 22, "source_security_group_id": peer},
        ],
        "egress": [{"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["10.0.0.0/8"]}],
        "tags": {"app": "web"},
    })
    created = h.create(c, inputs)
    assert created.outputs["arn"].endswith(f":security-group/{created.id}")
    assert permissions(client, created.id, "IpPermissions") == {
        ("tcp", 443, 443, "0.0.0.0/0", "https"), ("tcp", 443, 443, "10.0.0.0/8", "https"),
        ("tcp", 22, 22, peer, None)}
    # AWS's default allow-all egress is gone: egress is managed and does not declare it
    assert {p[3] for p in permissions(client, created.id, "IpPermissionsEgress")} == {"10.0.0.0/8"}
    assert_round_trip(h, c, created.id, inputs)

    new = h.check({**inputs, "ingress": [
        {"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": ["10.0.0.0/8"],
         "description": "internal https"},
        {"protocol": "udp", "from_port": 53, "to_port": 53, "cidr_blocks": ["10.0.0.0/8"]},
    ], "egress": None})
    assert h.diff(inputs, {}, new).replaces == ()
    h.update(c, created.id, inputs, created.outputs, new)
    assert permissions(client, created.id, "IpPermissions") == {
        ("tcp", 443, 443, "10.0.0.0/8", "internal https"), ("udp", 53, 53, "10.0.0.0/8", None)}
    assert {p[3] for p in permissions(client, created.id, "IpPermissionsEgress")} == {"10.0.0.0/8"}
    assert_round_trip(h, c, created.id, new)

    described = h.diff(new, {}, {**new, "description": "other"})
    assert described.replaces == ("description",) and described.delete_before_replace
    assert h.diff(new, {}, {**new, "name": unique("x")}).replaces == ("name",)
    assert h.diff(new, {}, {**new, "vpc_id": "vpc-0other"}).replaces == ("vpc_id",)

    found = h.read(c, None, new, {})
    assert found is not None and found.id == created.id
    assert h.read(ctx("aws:ec2:SecurityGroup", unique("other")), None, new, {}) is None
    h.delete(c, created.id, new, created.outputs)
    assert client.describe_security_groups(
        Filters=[{"Name": "group-id", "Values": [created.id]}])["SecurityGroups"] == []
    assert h.read(c, created.id, new, {}) is None
    assert h.read(c, None, new, {}) is None
    h.delete(c, created.id, new, created.outputs)
    client.delete_security_group(GroupId=peer)


def test_security_group_rule_order_and_grouping_is_not_a_change(handlers: Any) -> None:
    h = handlers("aws:ec2:SecurityGroup")
    base = {"name": "n", "vpc_id": "vpc-1"}
    split = {**base, "ingress": [
        {"protocol": "tcp", "from_port": 80, "to_port": 80, "cidr_blocks": ["10.1.0.0/16"]},
        {"protocol": "tcp", "from_port": 80, "to_port": 80, "cidr_blocks": ["10.0.0.0/16"]}]}
    merged = {**base, "ingress": [
        {"protocol": "TCP", "from_port": 80, "to_port": 80, "cidr_blocks": ["10.0.0.0/16", "10.1.0.0/16"]}]}
    assert h.diff(split, {}, merged).changed == ()
    assert h.check(split) == h.check(merged)


def test_security_group_rule_lifecycle(handlers: Any, client: Any, vpc_id: str) -> None:
    h = handlers("aws:ec2:SecurityGroupRule")
    group = client.create_security_group(GroupName=unique("g"), Description="g", VpcId=vpc_id)["GroupId"]
    c = ctx("aws:ec2:SecurityGroupRule", unique("rule"))
    inputs = h.check({"type": "ingress", "security_group_id": group, "protocol": "tcp",
                      "from_port": 8000, "to_port": 8080, "cidr_blocks": ["10.0.4.0/24", "10.0.3.0/24"],
                      "description": "app"})
    assert inputs["cidr_blocks"] == ["10.0.3.0/24", "10.0.4.0/24"]
    created = h.create(c, inputs)
    assert created.id == f"{group}_ingress_tcp_8000_8080_10.0.3.0/24_10.0.4.0/24"
    assert permissions(client, group, "IpPermissions") == {
        ("tcp", 8000, 8080, "10.0.3.0/24", "app"), ("tcp", 8000, 8080, "10.0.4.0/24", "app")}
    assert_round_trip(h, c, created.id, inputs)
    imported = h.read(c, created.id, {}, {})
    assert imported is not None and dict(imported.inputs) == inputs

    for key, value in (("from_port", 8001), ("cidr_blocks", ["10.0.3.0/24"]), ("description", "x"),
                       ("type", "egress"), ("security_group_id", "sg-0other")):
        assert h.diff(inputs, {}, {**inputs, key: value}).replaces == (key,)
    assert h.diff(inputs, {}, {**inputs, "description": "x"}).delete_before_replace

    found = h.read(c, None, inputs, {})
    assert found is not None and found.id == created.id
    h.delete(c, created.id, inputs, {})
    assert permissions(client, group, "IpPermissions") == set()
    assert h.read(c, created.id, inputs, {}) is None
    assert h.read(c, None, inputs, {}) is None
    h.delete(c, created.id, inputs, {})

    egress = h.check({"type": "egress", "security_group_id": group, "protocol": "-1",
                      "source_security_group_id": group})
    made = h.create(c, egress)
    assert (("-1", None, None, group, None) in permissions(client, group, "IpPermissionsEgress"))
    assert_round_trip(h, c, made.id, egress)
    h.delete(c, made.id, {}, {})  # from the id alone
    assert h.read(c, made.id, egress, {}) is None
    client.delete_security_group(GroupId=group)


def test_security_group_create_adopts_its_own_earlier_attempt(handlers: Any, vpc_id: str) -> None:
    """Group names are unique in a VPC: a retried create finds its own group."""
    h = handlers("aws:ec2:SecurityGroup")
    c = ctx("aws:ec2:SecurityGroup", unique("sg"))
    inputs = h.check({"name": unique("retry"), "vpc_id": vpc_id})
    first = h.create(c, inputs)
    assert h.create(c, inputs).id == first.id
    with pytest.raises(Exception, match="InvalidGroup.Duplicate"):
        h.create(ctx("aws:ec2:SecurityGroup", unique("someone-else")), inputs)
    h.delete(c, first.id, inputs, {})


def test_route_table_create_passes_its_idempotency_token(handlers: Any, client: Any, vpc_id: str) -> None:
    """A create retried with the same token sends the same ClientToken, so AWS returns the
    first table; and since moto ignores the token, the provider itself finds the first."""
    h = handlers("aws:ec2:RouteTable")
    c = ctx("aws:ec2:RouteTable", unique("rt"), token=unique("token"))
    inputs = h.check({"vpc_id": vpc_id})
    sent: list[str] = []
    h.client.meta.events.register(
        "provide-client-params.ec2.CreateRouteTable",
        lambda params, **_: sent.append(params.get("ClientToken", "")))
    first, second = h.create(c, inputs), h.create(c, inputs)
    try:
        assert sent and sent[0] == client_token(c.token)
        assert set(sent) == {sent[0]}
        assert second.id == first.id
    finally:
        h.delete(c, first.id, inputs, {})
