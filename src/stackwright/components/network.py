"""A VPC across N availability zones: one public and one private subnet per zone,
an internet gateway, and a route table for each tier."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

import stackwright as sw
from stackwright.providers.aws import ec2


class Network(sw.Component, type="stackwright:aws:Network"):
    """Public subnets route to the internet gateway; private ones stay internal.

    Subnets are ``subnet_bits`` smaller than the VPC: public ones carved in zone order
    from the first half of ``cidr_block``, private ones from the second half, so adding
    a zone at the end of the list never renumbers an existing subnet.
    """

    def __init__(self, name: str, *, availability_zones: Sequence[str],
                 cidr_block: str = "10.0.0.0/16", subnet_bits: int = 4,
                 tags: dict[str, str] | None = None, opts: sw.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        tags = dict(tags or {})
        public_cidrs, private_cidrs = _subnets(cidr_block, subnet_bits, len(availability_zones))
        self.vpc = ec2.Vpc("vpc", cidr_block=cidr_block, enable_dns_hostnames=True,
                           enable_dns_support=True, tags={**tags, "Name": name})
        self.internet_gateway = ec2.InternetGateway("igw", vpc_id=self.vpc.id, tags={**tags, "Name": name})
        public_routes = [{"destination_cidr_block": "0.0.0.0/0", "gateway_id": self.internet_gateway.id}]
        self.public_route_table = ec2.RouteTable("public", vpc_id=self.vpc.id, routes=public_routes,
                                                 tags={**tags, "Name": f"{name}-public"})
        self.private_route_table = ec2.RouteTable("private", vpc_id=self.vpc.id, routes=[],
                                                  tags={**tags, "Name": f"{name}-private"})
        self.public_subnets = [
            self._subnet("public", az, public_cidrs[i], self.public_route_table, tags)
            for i, az in enumerate(availability_zones)]
        self.private_subnets = [
            self._subnet("private", az, private_cidrs[i], self.private_route_table, tags)
            for i, az in enumerate(availability_zones)]
        self.vpc_id = self.vpc.id
        self.public_subnet_ids: list[sw.Output[str]] = [s.id for s in self.public_subnets]
        self.private_subnet_ids: list[sw.Output[str]] = [s.id for s in self.private_subnets]

    def _subnet(self, tier: str, zone: str, cidr: str, table: ec2.RouteTable,
                tags: dict[str, str]) -> ec2.Subnet:
        subnet = ec2.Subnet(f"{tier}-{zone}", vpc_id=self.vpc.id, cidr_block=cidr,
                            availability_zone=zone, map_public_ip_on_launch=tier == "public",
                            tags={**tags, "Name": f"{self.resource_name}-{tier}-{zone}", "tier": tier})
        ec2.RouteTableAssociation(f"{tier}-{zone}", route_table_id=table.id, subnet_id=subnet.id)
        return subnet


def _subnets(cidr_block: str, bits: int, zones: int) -> tuple[list[str], list[str]]:
    """``zones`` public and ``zones`` private CIDRs: each from its own half of the block."""
    network: Any = ipaddress.ip_network(cidr_block)
    pieces = [str(p) for p in network.subnets(prefixlen_diff=bits)]
    half = len(pieces) // 2
    if zones > half:
        raise sw.StackwrightError(
            f"{cidr_block} has room for {half} zones of two /{network.prefixlen + bits} subnets, "
            f"{zones} were asked for", hint="use a larger cidr_block or more subnet_bits")
    return pieces[:zones], pieces[half:half + zones]
