"""The Network component's subnets: each zone keeps its CIDRs whatever else the list holds.

A zones edit that moved another zone's subnet would make its replacement collide with
the subnet still there (AWS refuses overlapping subnets), halfway through an `up`.
"""

from __future__ import annotations

import pytest

import stackwright as sw
from stackwright.components import Network
from stackwright.testing import declare


def cidrs(zones: list[str], **kwargs: object) -> dict[str, str]:
    """``tier-zone`` -> CIDR of each subnet the component declares."""
    graph = declare(lambda: Network("main", availability_zones=zones, **kwargs))  # type: ignore[arg-type]
    return {urn.rsplit("$", 1)[1]: str(r.inputs["cidr_block"])
            for urn, r in graph.resources.items() if r.type_token == "aws:ec2:Subnet"}


ABC = {"public-us-east-1a": "10.0.0.0/20", "public-us-east-1b": "10.0.16.0/20",
       "public-us-east-1c": "10.0.32.0/20", "private-us-east-1a": "10.0.128.0/20",
       "private-us-east-1b": "10.0.144.0/20", "private-us-east-1c": "10.0.160.0/20"}


def test_zones_a_b_c_keep_the_cidrs_they_had_in_list_order() -> None:
    assert cidrs(["us-east-1a", "us-east-1b", "us-east-1c"]) == ABC


@pytest.mark.parametrize("zones", [
    ["us-east-1a", "us-east-1c"],                # the middle zone dropped
    ["us-east-1c", "us-east-1a"],                # reordered
    ["us-east-1a", "us-east-1c", "us-east-1d"],  # b swapped for d
    ["us-east-1b", "us-east-1c", "us-east-1a"],
])
def test_a_zone_keeps_its_subnets_whatever_the_other_zones(zones: list[str]) -> None:
    got = cidrs(zones)
    assert {k: v for k, v in got.items() if k in ABC} == {k: v for k, v in ABC.items() if k in got}
    assert len(set(got.values())) == len(got)


def test_a_new_zone_never_takes_the_cidr_of_one_it_replaces() -> None:
    before, after = cidrs(["us-east-1a", "us-east-1b"]), cidrs(["us-east-1a", "us-east-1d"])
    assert after["public-us-east-1d"] not in before.values()
    assert after["private-us-east-1d"] not in before.values()


def test_zone_slots_place_zones_without_a_letter_or_keep_older_cidrs() -> None:
    got = cidrs(["us-east-1b", "us-east-1d"], zone_slots={"us-east-1b": 0, "us-east-1d": 1})
    assert got["public-us-east-1b"] == "10.0.0.0/20" and got["public-us-east-1d"] == "10.0.16.0/20"
    assert cidrs(["use1-az4"], zone_slots={"use1-az4": 3})["private-use1-az4"] == "10.0.176.0/20"


@pytest.mark.parametrize(("zones", "kwargs", "message"), [
    (["use1-az4"], {}, "does not end in a letter"),
    (["us-west-2a", "us-west-2-lax-1a"], {}, "both have slot 0"),
    (["us-east-1a", "us-east-1a"], {}, "listed twice"),
    (["us-east-1i"], {}, "has room for 8 zones"),
    (["us-east-1c"], {"cidr_block": "10.0.0.0/24", "subnet_bits": 2}, "has room for 2 zones"),
])
def test_zones_without_a_slot_of_their_own_are_refused(zones: list[str], kwargs: dict[str, object],
                                                       message: str) -> None:
    with pytest.raises(sw.StackwrightError, match=message):
        cidrs(zones, **kwargs)
