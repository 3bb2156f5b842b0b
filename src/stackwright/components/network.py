"""A VPC across N availability zones: one public and one private subnet per zone,
an internet gateway, and a route table for each tier."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

import stackwright as sw
from stackwright.providers.aws import ec2


class Network(sw.Component, type="stackwright:aws:Network"):
    """Public subnets route to the internet gateway; private ones stay internal.

    Subnets are ``subnet_bits`` smaller than the VPC: public ones carved from the first
    half of ``cidr_block``, private ones from the second half. Each zone has a slot of
    its own, the place of its last letter in the alphabet (``us-east-1a`` is 0,
    ``us-east-1c`` is 2), and its subnets are the pieces of that slot: adding, dropping
    or swapping a zone anywhere in the list never moves another zone's subnets (a new
    subnet cannot collide with one that is still there). ``zone_slots`` sets the slot of
    zones whose names do not end in a letter, or keeps the CIDRs a network had before.
    """

    def __init__(self, name: str, *, availability_zones: Sequence[str],
                 cidr_block: str = "10.0.0.0/16", subnet_bits: int = 4,
                 zone_slots: Mapping[str, int] | None = None,
                 tags: dict[str, str] | None = None, opts: sw.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        tags = dict(tags or {})
        public_cidrs, private_cidrs = _subnets(cidr_block, subnet_bits, availability_zones, zone_slots or {})
        self.vpc = ec2.Vpc("vpc", cidr_block=cidr_block, enable_dns_hostnames=True,
                           enable_dns_support=True, tags={**tags, "Name": name})
        self.internet_gateway = ec2.InternetGateway("igw", vpc_id=self.vpc.id, tags={**tags, "Name": name})
        public_routes = [{"destination_cidr_block": "0.0.0.0/0", "gateway_id": self.internet_gateway.id}]
        self.public_route_table = ec2.RouteTable("public", vpc_id=self.vpc.id, routes=public_routes,
                                                 tags={**tags, "Name": f"{name}-public"})
        self.private_route_table = ec2.RouteTable("private", vpc_id=self.vpc.id, routes=[],
                                                  tags={**tags, "Name": f"{name}-private"})
        self.public_subnets = [
            self._subnet("public", az, public_cidrs[az], self.public_route_table, tags)
            for az in availability_zones]
        self.private_subnets = [
            self._subnet("private", az, private_cidrs[az], self.private_route_table, tags)
            for az in availability_zones]
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


def _subnets(cidr_block: str, bits: int, zones: Sequence[str],
             slots: Mapping[str, int]) -> tuple[dict[str, str], dict[str, str]]:
    """Each zone's public and private CIDR: the piece of its slot in each half of the block."""
    network: Any = ipaddress.ip_network(cidr_block)
    pieces = [str(p) for p in network.subnets(prefixlen_diff=bits)]
    half = len(pieces) // 2
    placed = _slots(zones, slots)
    for zone, slot in placed.items():
        if not 0 <= slot < half:
            raise sw.StackwrightError(
                f"zone {zone} has slot {slot}, but {cidr_block} has room for {half} zones of two "
                f"/{network.prefixlen + bits} subnets (slots 0 to {half - 1})",
                hint="use a larger cidr_block or more subnet_bits, or give the zone a lower slot in zone_slots")
    return ({zone: pieces[slot] for zone, slot in placed.items()},
            {zone: pieces[half + slot] for zone, slot in placed.items()})


def _slots(zones: Sequence[str], slots: Mapping[str, int]) -> dict[str, int]:
    """Each zone's slot: from ``slots``, else its last letter's place in the alphabet.
    Two zones never share one: their subnets would overlap."""
    placed: dict[str, int] = {}
    owner: dict[int, str] = {}
    for zone in zones:
        if zone in placed:
            raise sw.StackwrightError(f"zone {zone} is listed twice", hint="list each zone once")
        slot = slots[zone] if zone in slots else _letter_slot(zone)
        if slot in owner:
            raise sw.StackwrightError(
                f"zones {owner[slot]} and {zone} both have slot {slot}: their subnets would overlap",
                hint="give one of them another slot in zone_slots (a number no other zone uses)")
        owner[slot] = zone
        placed[zone] = slot
    return placed


def _letter_slot(zone: str) -> int:
    letter = zone[-1:]
    if not ("a" <= letter <= "z"):
        raise sw.StackwrightError(
            f"zone {zone!r} does not end in a letter, so it has no slot of its own",
            hint=f"give it one in zone_slots, e.g. zone_slots={{{zone!r}: 5}}")
    return ord(letter) - ord("a")
