"""aws:route53:Zone and aws:route53:Record against the emulator."""

from __future__ import annotations

from typing import Any

import pytest

from aws.conftest import ctx, tag_map
from stackwright.errors import InputError, ProviderError
from stackwright.providers.aws import route53
from stackwright.providers.aws.base import URN_TAG, AwsResource

pytestmark = pytest.mark.aws

ZONE = "aws:route53:Zone"
RECORD = "aws:route53:Record"


@pytest.fixture
def zones(handlers: Any) -> AwsResource:
    return handlers(ZONE)


@pytest.fixture
def records(handlers: Any) -> AwsResource:
    return handlers(RECORD)


@pytest.fixture
def client(boto: Any) -> Any:
    return boto("route53")


def zone_tags(client: Any, zone_id: str) -> dict[str, str]:
    got = client.list_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id)
    return tag_map(got["ResourceTagSet"]["Tags"])


def test_zone_lifecycle(zones: AwsResource, client: Any) -> None:
    c = ctx(ZONE, "main", token="tok-zone-main")
    inputs = zones.check({"name": "Example.COM.", "comment": "main zone", "tags": {"team": "dns"}})
    assert inputs["name"] == "example.com"
    assert set(inputs) == set(route53.Zone.input_specs())
    created = zones.create(c, inputs)
    assert created.outputs["zone_id"] == created.id and created.outputs["name_servers"]
    assert zone_tags(client, created.id) == {"team": "dns", URN_TAG: c.urn}
    assert zones.create(c, inputs).id == created.id  # same token: the same zone

    read = zones.read(c, created.id, inputs, created.outputs)
    assert read is not None
    assert set(read.inputs) == set(route53.Zone.input_specs())
    assert zones.diff(inputs, created.outputs, read.inputs).changed == ()

    new = zones.check(dict(inputs, comment="renamed", tags={"team": "net"}))
    assert zones.diff(inputs, created.outputs, new).replaces == ()
    zones.update(c, created.id, inputs, created.outputs, new)
    assert client.get_hosted_zone(Id=created.id)["HostedZone"]["Config"]["Comment"] == "renamed"
    assert zone_tags(client, created.id) == {"team": "net", URN_TAG: c.urn}
    read = zones.read(c, created.id, new, created.outputs)
    assert read is not None and zones.diff(new, created.outputs, read.inputs).changed == ()

    assert zones.diff(new, created.outputs, dict(new, name="example.org")).replaces == ("name",)
    assert zones.diff(new, created.outputs, dict(new, private=True, vpc_id="vpc-1")).replaces \
        == ("private", "vpc_id")

    zones.delete(c, created.id, new, created.outputs)
    assert created.id not in [z["Id"].rsplit("/", 1)[-1] for z in client.list_hosted_zones()["HostedZones"]]
    assert zones.read(c, created.id, new, created.outputs) is None
    zones.delete(c, created.id, new, created.outputs)  # idempotent


def test_private_zone_round_trip(zones: AwsResource, boto: Any) -> None:
    vpc_id = boto("ec2").create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    c = ctx(ZONE, "internal", token="tok-zone-internal")
    with pytest.raises(InputError):
        zones.check({"name": "internal.test", "private": True})
    inputs = zones.check({"name": "internal.test", "private": True, "vpc_id": vpc_id})
    created = zones.create(c, inputs)
    read = zones.read(c, created.id, inputs, created.outputs)
    assert read is not None and zones.diff(inputs, created.outputs, read.inputs).changed == ()
    zones.delete(c, created.id, inputs, created.outputs)


def test_zone_read_without_id_finds_an_interrupted_create(zones: AwsResource, client: Any) -> None:
    c = ctx(ZONE, "pending", token="tok-zone-pending")
    inputs = zones.check({"name": "pending.test"})
    assert zones.read(c, None, inputs, {}) is None
    # the create call went through (untagged), then the process died
    client.create_hosted_zone(Name="pending.test", CallerReference=c.token)
    found = zones.read(c, None, inputs, {})
    assert found is not None
    assert zones.read(ctx(ZONE, "other", token="tok-other"), None, inputs, {}) is None
    created = zones.create(c, inputs)  # a retried create finds it by its CallerReference
    assert created.id == found.id
    zones.delete(c, created.id, inputs, created.outputs)


def test_records_and_zone_force_destroy(zones: AwsResource, records: AwsResource, client: Any) -> None:
    zc = ctx(ZONE, "apps", token="tok-zone-apps")
    zone_inputs = zones.check({"name": "apps.test"})
    zone = zones.create(zc, zone_inputs)
    rc = ctx(RECORD, "www")
    inputs = records.check({"zone_id": zone.id, "name": "WWW.apps.test.", "type": "a",
                            "records": ["10.0.0.2", "10.0.0.1"]})
    assert set(inputs) == set(route53.Record.input_specs())
    created = records.create(rc, inputs)
    assert created.id == f"{zone.id}/www.apps.test/A"

    read = records.read(rc, created.id, inputs, created.outputs)
    assert read is not None
    assert set(read.inputs) == set(route53.Record.input_specs())
    assert records.diff(inputs, created.outputs, read.inputs).changed == ()

    new = records.check(dict(inputs, ttl=60, records=["10.0.0.3"]))
    assert records.diff(inputs, created.outputs, new).replaces == ()
    records.update(rc, created.id, inputs, created.outputs, new)
    live = client.list_resource_record_sets(HostedZoneId=zone.id, StartRecordName="www.apps.test",
                                            StartRecordType="A", MaxItems="1")["ResourceRecordSets"][0]
    assert live["TTL"] == 60 and live["ResourceRecords"] == [{"Value": "10.0.0.3"}]
    for key, value in (("zone_id", "Z999"), ("name", "api.apps.test"), ("type", "AAAA")):
        assert records.diff(new, created.outputs, dict(new, **{key: value})).replaces == (key,)

    alias = records.check({"zone_id": zone.id, "name": "apps.test", "type": "A",
                           "alias": {"name": "lb-1.elb.amazonaws.com.", "zone_id": "Z35SXDOTRQ7X7K"}})
    assert alias["ttl"] is None
    made = records.create(ctx(RECORD, "apex"), alias)
    read = records.read(ctx(RECORD, "apex"), made.id, alias, {})
    assert read is not None and records.diff(alias, {}, read.inputs).changed == ()

    records.delete(rc, created.id, new, created.outputs)
    assert records.read(rc, created.id, new, created.outputs) is None
    records.delete(rc, created.id, new, created.outputs)  # idempotent

    # read(None): a record is found by zone, name and type
    client.change_resource_record_sets(HostedZoneId=zone.id, ChangeBatch={"Changes": [{
        "Action": "CREATE", "ResourceRecordSet": {"Name": "www.apps.test", "Type": "A", "TTL": 60,
                                                  "ResourceRecords": [{"Value": "10.0.0.3"}]}}]})
    found = records.read(rc, None, new, {})
    assert found is not None and found.id == created.id
    assert records.diff(new, {}, found.inputs).changed == ()

    with pytest.raises(ProviderError, match="force_destroy"):
        zones.delete(zc, zone.id, zone_inputs, zone.outputs)
    zones.delete(zc, zone.id, dict(zone_inputs, force_destroy=True), zone.outputs)
    assert zones.read(zc, zone.id, zone_inputs, zone.outputs) is None
