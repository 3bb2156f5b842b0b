"""aws:dynamodb:Table against the emulator: create, read round trip, update, replace, delete."""

from __future__ import annotations

from typing import Any

import pytest

from aws.conftest import ctx, tag_map
from stackwright.errors import InputError, ProviderError
from stackwright.providers.aws import dynamodb
from stackwright.providers.aws.base import URN_TAG, AwsResource

pytestmark = pytest.mark.aws

TYPE = "aws:dynamodb:Table"


@pytest.fixture
def handler(handlers: Any) -> AwsResource:
    return handlers(TYPE)


@pytest.fixture
def client(boto: Any) -> Any:
    return boto("dynamodb")


def table_inputs(handler: AwsResource, name: str, **extra: Any) -> dict[str, Any]:
    return handler.check({
        "name": name, "hash_key": "pk", "range_key": "sk",
        "attributes": [{"name": "sk", "type": "N"}, {"name": "pk", "type": "S"}],
        "tags": {"team": "data"}, **extra,
    })


def test_check_keeps_the_resource_class_shape_and_rejects_mistakes(handler: AwsResource) -> None:
    inputs = table_inputs(handler, "shape")
    assert set(inputs) == set(dynamodb.Table.input_specs())
    with pytest.raises(InputError, match="key attributes"):
        handler.check({"name": "x", "hash_key": "pk", "attributes": [{"name": "other", "type": "S"}]})
    with pytest.raises(InputError, match="read_capacity"):
        handler.check({"name": "x", "hash_key": "pk", "attributes": [{"name": "pk", "type": "S"}],
                       "billing_mode": "PROVISIONED"})


def test_lifecycle(handler: AwsResource, client: Any) -> None:
    c = ctx(TYPE, "events")
    inputs = table_inputs(handler, "sw-events", point_in_time_recovery=True, ttl_attribute="expires")
    created = handler.create(c, inputs)
    assert created.id == "sw-events"
    assert created.outputs["arn"].endswith(":table/sw-events")
    desc = client.describe_table(TableName="sw-events")["Table"]
    assert desc["TableStatus"] == "ACTIVE"
    tags = tag_map(client.list_tags_of_resource(ResourceArn=desc["TableArn"])["Tags"])
    assert tags == {"team": "data", URN_TAG: c.urn}

    read = handler.read(c, created.id, inputs, created.outputs)
    assert read is not None
    assert set(read.inputs) == set(dynamodb.Table.input_specs())
    assert handler.diff(inputs, created.outputs, read.inputs).changed == ()

    new = handler.check(dict(inputs, billing_mode="PROVISIONED", read_capacity=5, write_capacity=3,
                             point_in_time_recovery=False, ttl_attribute=None, tags={"team": "ml"}))
    assert handler.diff(inputs, created.outputs, new).replaces == ()
    handler.update(c, created.id, inputs, created.outputs, new)
    desc = client.describe_table(TableName="sw-events")["Table"]
    assert desc["BillingModeSummary"]["BillingMode"] == "PROVISIONED"
    assert desc["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    assert desc["ProvisionedThroughput"]["WriteCapacityUnits"] == 3
    backups = client.describe_continuous_backups(TableName="sw-events")["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "DISABLED"
    assert client.describe_time_to_live(TableName="sw-events")["TimeToLiveDescription"]["TimeToLiveStatus"] \
        == "DISABLED"
    tags = tag_map(client.list_tags_of_resource(ResourceArn=desc["TableArn"])["Tags"])
    assert tags == {"team": "ml", URN_TAG: c.urn}
    read = handler.read(c, created.id, new, created.outputs)
    assert read is not None and handler.diff(new, created.outputs, read.inputs).changed == ()

    rekeyed = handler.check(dict(new, range_key=None, attributes=[{"name": "pk", "type": "S"}]))
    d = handler.diff(new, created.outputs, rekeyed)
    assert d.replaces == ("attributes", "range_key") and d.delete_before_replace
    renamed = handler.diff(new, created.outputs, dict(new, name="sw-events-2"))
    assert renamed.replaces == ("name",) and not renamed.delete_before_replace

    handler.delete(c, created.id, new, created.outputs)
    assert "sw-events" not in client.list_tables()["TableNames"]
    assert handler.read(c, created.id, new, created.outputs) is None
    handler.delete(c, created.id, new, created.outputs)  # idempotent


def test_read_without_id_finds_an_interrupted_create(handler: AwsResource, client: Any) -> None:
    c = ctx(TYPE, "pending")
    inputs = table_inputs(handler, "sw-pending")
    assert handler.read(c, None, inputs, {}) is None
    client.create_table(  # the create call went through, then the process died
        TableName="sw-pending", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "N"}],
        Tags=[{"Key": "team", "Value": "data"}, {"Key": URN_TAG, "Value": c.urn}])
    found = handler.read(c, None, inputs, {})
    assert found is not None and found.id == "sw-pending"
    assert handler.diff(inputs, {}, found.inputs).changed == ()
    assert handler.read(ctx(TYPE, "other"), None, inputs, {}) is None
    created = handler.create(c, inputs)  # a retried create adopts its own table
    assert created.id == "sw-pending"
    with pytest.raises(ProviderError, match="not managed"):
        handler.create(ctx(TYPE, "other"), inputs)
    handler.delete(c, created.id, inputs, created.outputs)
