"""aws:s3:Bucket against the emulator: create, read round trip, update, replace, delete."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aws.conftest import ctx, tag_map
from stackwright.errors import ProviderError
from stackwright.providers.aws import s3
from stackwright.providers.aws.base import URN_TAG, AwsResource

pytestmark = pytest.mark.aws

TYPE = "aws:s3:Bucket"


@pytest.fixture
def handler(handlers: Any) -> AwsResource:
    return handlers(TYPE)


@pytest.fixture
def client(boto: Any) -> Any:
    return boto("s3")


def full_inputs(handler: AwsResource, bucket: str) -> dict[str, Any]:
    return handler.check({
        "bucket": bucket, "versioning": True, "encryption": "aws:kms", "kms_key_id": "alias/k",
        "block_public_access": True,
        "lifecycle_rules": [
            {"id": "old-logs", "prefix": "logs/", "expiration_days": 30},
            {"id": "a-versions", "noncurrent_version_expiration_days": 7, "enabled": False},
        ],
        "policy": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket",
            "Resource": f"arn:aws:s3:::{bucket}"}]},
        "tags": {"team": "data"},
    })


def test_read_inputs_match_the_resource_class(handler: AwsResource) -> None:
    inputs = handler.check({"bucket": "shape-check"})
    assert set(inputs) == set(s3.Bucket.input_specs())


def test_lifecycle(handler: AwsResource, client: Any) -> None:
    c = ctx(TYPE, "logs")
    inputs = full_inputs(handler, "sw-logs-1")
    created = handler.create(c, inputs)
    assert created.id == "sw-logs-1"
    assert created.outputs == {"arn": "arn:aws:s3:::sw-logs-1",
                               "bucket_domain_name": "sw-logs-1.s3.amazonaws.com",
                               "region": "us-east-1"}
    tags = tag_map(client.get_bucket_tagging(Bucket="sw-logs-1")["TagSet"])
    assert tags == {"team": "data", URN_TAG: c.urn}

    read = handler.read(c, created.id, inputs, created.outputs)
    assert read is not None
    assert handler.diff(inputs, created.outputs, read.inputs).changed == ()
    assert set(read.inputs) == set(s3.Bucket.input_specs())

    new = dict(inputs, versioning=False, encryption=None, kms_key_id=None, block_public_access=False,
               lifecycle_rules=[], policy=None, tags={"team": "ml"})
    new = handler.check(new)
    d = handler.diff(inputs, created.outputs, new)
    assert d.replaces == ()
    handler.update(c, created.id, inputs, created.outputs, new)
    assert client.get_bucket_versioning(Bucket="sw-logs-1")["Status"] == "Suspended"
    with pytest.raises(client.exceptions.ClientError):
        client.get_bucket_policy(Bucket="sw-logs-1")
    with pytest.raises(client.exceptions.ClientError):
        client.get_bucket_lifecycle_configuration(Bucket="sw-logs-1")
    with pytest.raises(client.exceptions.ClientError):
        client.get_public_access_block(Bucket="sw-logs-1")
    tags = tag_map(client.get_bucket_tagging(Bucket="sw-logs-1")["TagSet"])
    assert tags == {"team": "ml", URN_TAG: c.urn}
    read = handler.read(c, created.id, new, created.outputs)
    assert read is not None and handler.diff(new, created.outputs, read.inputs).changed == ()

    assert handler.diff(new, created.outputs, dict(new, bucket="sw-logs-2")).replaces == ("bucket",)

    handler.delete(c, created.id, new, created.outputs)
    assert "sw-logs-1" not in [b["Name"] for b in client.list_buckets()["Buckets"]]
    assert handler.read(c, created.id, new, created.outputs) is None
    handler.delete(c, created.id, new, created.outputs)  # idempotent


def test_encryption_default_and_aes256_round_trip(handler: AwsResource) -> None:
    for bucket, encryption in (("sw-enc-none", None), ("sw-enc-aes", "AES256")):
        c = ctx(TYPE, bucket)
        inputs = handler.check({"bucket": bucket, "encryption": encryption})
        created = handler.create(c, inputs)
        read = handler.read(c, created.id, inputs, created.outputs)
        assert read is not None and read.inputs["encryption"] == encryption
        handler.delete(c, created.id, inputs, created.outputs)


def test_non_empty_bucket_delete_needs_force_destroy(handler: AwsResource, client: Any) -> None:
    c = ctx(TYPE, "data")
    inputs = handler.check({"bucket": "sw-data-1", "versioning": True})
    created = handler.create(c, inputs)
    client.put_object(Bucket="sw-data-1", Key="a.txt", Body=b"1")
    client.put_object(Bucket="sw-data-1", Key="a.txt", Body=b"2")
    client.delete_object(Bucket="sw-data-1", Key="a.txt")
    with pytest.raises(ProviderError) as info:
        handler.delete(c, created.id, inputs, created.outputs)
    assert not info.value.retryable and "force_destroy" in info.value.message
    forced = dict(inputs, force_destroy=True)
    handler.delete(c, created.id, forced, created.outputs)
    assert handler.read(c, created.id, forced, created.outputs) is None


def test_read_without_id_finds_an_interrupted_create(handler: AwsResource, client: Any) -> None:
    c = ctx(TYPE, "pending")
    inputs = handler.check({"bucket": "sw-pending-1"})
    assert handler.read(c, None, inputs, {}) is None
    client.create_bucket(Bucket="sw-pending-1")  # crashed right after CreateBucket
    found = handler.read(c, None, inputs, {})
    assert found is not None and found.id == "sw-pending-1"
    created = handler.create(c, inputs)  # a retried create adopts it
    assert created.id == "sw-pending-1"
    assert handler.read(ctx(TYPE, "someone-else"), None, inputs, {}) is None
    handler.delete(c, created.id, inputs, created.outputs)


def test_create_refuses_a_bucket_managed_elsewhere(handler: AwsResource, client: Any) -> None:
    client.create_bucket(Bucket="sw-foreign-1")
    client.put_bucket_tagging(Bucket="sw-foreign-1", Tagging={"TagSet": [{"Key": "owner", "Value": "x"}]})
    with pytest.raises(ProviderError, match="already exists"):
        handler.create(ctx(TYPE, "foreign"), handler.check({"bucket": "sw-foreign-1"}))


def test_policy_is_compared_as_a_document(handler: AwsResource, client: Any) -> None:
    c = ctx(TYPE, "pol")
    inputs = full_inputs(handler, "sw-pol-1")
    created = handler.create(c, inputs)
    stored = json.loads(client.get_bucket_policy(Bucket="sw-pol-1")["Policy"])
    assert stored == inputs["policy"]
    handler.delete(c, created.id, dict(inputs, force_destroy=True), created.outputs)
