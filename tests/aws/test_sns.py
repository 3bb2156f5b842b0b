"""aws:sns:Topic and aws:sns:Subscription against the emulator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aws.conftest import ctx, tag_map
from stackwright.errors import InputError, ProviderError
from stackwright.providers.aws import sns
from stackwright.providers.aws.base import URN_TAG, AwsResource

pytestmark = pytest.mark.aws

TOPIC = "aws:sns:Topic"
SUBSCRIPTION = "aws:sns:Subscription"


@pytest.fixture
def topics(handlers: Any) -> AwsResource:
    return handlers(TOPIC)


@pytest.fixture
def subscriptions(handlers: Any) -> AwsResource:
    return handlers(SUBSCRIPTION)


@pytest.fixture
def client(boto: Any) -> Any:
    return boto("sns")


def tags_of(client: Any, arn: str) -> dict[str, str]:
    return tag_map(client.list_tags_for_resource(ResourceArn=arn)["Tags"])


def policy_for(arn: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "events", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sns:Publish", "Resource": arn}]}


def test_topic_lifecycle(topics: AwsResource, client: Any) -> None:
    c = ctx(TOPIC, "alerts")
    inputs = topics.check({"name": "sw-alerts", "display_name": "Alerts", "tags": {"team": "ops"}})
    assert set(inputs) == set(sns.Topic.input_specs())
    created = topics.create(c, inputs)
    assert created.id.endswith(":sw-alerts") and created.outputs == {"arn": created.id}
    assert tags_of(client, created.id) == {"team": "ops", URN_TAG: c.urn}

    read = topics.read(c, created.id, inputs, created.outputs)
    assert read is not None
    assert set(read.inputs) == set(sns.Topic.input_specs())
    assert topics.diff(inputs, created.outputs, read.inputs).changed == ()

    new = topics.check(dict(inputs, display_name="Ops alerts", policy=policy_for(created.id),
                            tags={"team": "sre"}))
    assert topics.diff(inputs, created.outputs, new).replaces == ()
    topics.update(c, created.id, inputs, created.outputs, new)
    attrs = client.get_topic_attributes(TopicArn=created.id)["Attributes"]
    assert attrs["DisplayName"] == "Ops alerts"
    assert json.loads(attrs["Policy"]) == policy_for(created.id)
    assert tags_of(client, created.id) == {"team": "sre", URN_TAG: c.urn}
    read = topics.read(c, created.id, new, created.outputs)
    assert read is not None and topics.diff(new, created.outputs, read.inputs).changed == ()

    back = topics.check(dict(new, policy=None))
    topics.update(c, created.id, new, created.outputs, back)
    attrs = client.get_topic_attributes(TopicArn=created.id)["Attributes"]
    assert json.loads(attrs["Policy"])["Id"] == sns.DEFAULT_POLICY_ID
    read = topics.read(c, created.id, back, created.outputs)
    assert read is not None and read.inputs["policy"] is None

    assert topics.diff(back, created.outputs, dict(back, name="sw-other")).replaces == ("name",)
    fifo = topics.diff(back, created.outputs, dict(back, name="sw-alerts.fifo", fifo=True))
    assert fifo.replaces == ("fifo", "name")

    topics.delete(c, created.id, back, created.outputs)
    assert created.id not in [t["TopicArn"] for t in client.list_topics()["Topics"]]
    assert topics.read(c, created.id, back, created.outputs) is None
    topics.delete(c, created.id, back, created.outputs)  # idempotent


def test_fifo_topic_round_trip(topics: AwsResource) -> None:
    with pytest.raises(InputError):
        topics.check({"name": "sw-orders", "fifo": True})
    c = ctx(TOPIC, "orders")
    inputs = topics.check({"name": "sw-orders.fifo", "fifo": True})
    created = topics.create(c, inputs)
    read = topics.read(c, created.id, inputs, created.outputs)
    assert read is not None and topics.diff(inputs, created.outputs, read.inputs).changed == ()
    topics.delete(c, created.id, inputs, created.outputs)


def test_topic_read_without_id_finds_an_interrupted_create(topics: AwsResource, client: Any) -> None:
    c = ctx(TOPIC, "pending")
    inputs = topics.check({"name": "sw-pending"})
    assert topics.read(c, None, inputs, {}) is None
    arn = client.create_topic(Name="sw-pending", Tags=[{"Key": URN_TAG, "Value": c.urn}])["TopicArn"]
    found = topics.read(c, None, inputs, {})
    assert found is not None and found.id == arn
    assert topics.diff(inputs, {}, found.inputs).changed == ()
    assert topics.read(ctx(TOPIC, "other"), None, inputs, {}) is None
    assert topics.create(c, inputs).id == arn  # a retried create converges on the same topic
    with pytest.raises(ProviderError, match="not managed"):
        topics.create(ctx(TOPIC, "other"), inputs)
    topics.delete(c, arn, inputs, {})


def test_subscription_lifecycle(topics: AwsResource, subscriptions: AwsResource, client: Any,
                                boto: Any) -> None:
    topic = topics.create(ctx(TOPIC, "jobs"), topics.check({"name": "sw-jobs"}))
    sqs = boto("sqs")
    queue_url = sqs.create_queue(QueueName="sw-jobs-q")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    c = ctx(SUBSCRIPTION, "jobs-q")
    inputs = subscriptions.check({"topic_arn": topic.id, "protocol": "sqs", "endpoint": queue_arn,
                                  "raw_message_delivery": True, "filter_policy": {"kind": ["build"]}})
    assert set(inputs) == set(sns.Subscription.input_specs())
    created = subscriptions.create(c, inputs)
    assert created.outputs == {"arn": created.id}

    read = subscriptions.read(c, created.id, inputs, created.outputs)
    assert read is not None
    assert set(read.inputs) == set(sns.Subscription.input_specs())
    assert subscriptions.diff(inputs, created.outputs, read.inputs).changed == ()

    new = subscriptions.check(dict(inputs, raw_message_delivery=False, filter_policy={"kind": ["deploy"]}))
    assert subscriptions.diff(inputs, created.outputs, new).replaces == ()
    subscriptions.update(c, created.id, inputs, created.outputs, new)
    attrs = client.get_subscription_attributes(SubscriptionArn=created.id)["Attributes"]
    assert attrs["RawMessageDelivery"] == "false"
    assert json.loads(attrs["FilterPolicy"]) == {"kind": ["deploy"]}
    read = subscriptions.read(c, created.id, new, created.outputs)
    assert read is not None and subscriptions.diff(new, created.outputs, read.inputs).changed == ()

    cleared = subscriptions.check(dict(new, filter_policy=None))
    subscriptions.update(c, created.id, new, created.outputs, cleared)
    read = subscriptions.read(c, created.id, cleared, created.outputs)
    assert read is not None and read.inputs["filter_policy"] is None

    for key in ("topic_arn", "protocol", "endpoint"):
        assert subscriptions.diff(cleared, {}, dict(cleared, **{key: "x"})).replaces == (key,)

    # read(None): an interrupted create is found by topic, protocol and endpoint
    found = subscriptions.read(c, None, cleared, {})
    assert found is not None and found.id == created.id

    subscriptions.delete(c, created.id, cleared, created.outputs)
    listed = client.list_subscriptions_by_topic(TopicArn=topic.id)["Subscriptions"]
    assert created.id not in [s["SubscriptionArn"] for s in listed]
    assert subscriptions.read(c, created.id, cleared, created.outputs) is None
    assert subscriptions.read(c, None, cleared, {}) is None
    subscriptions.delete(c, created.id, cleared, created.outputs)  # idempotent
    topics.delete(ctx(TOPIC, "jobs"), topic.id, {}, {})
