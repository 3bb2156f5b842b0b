"""SNS topics and subscriptions.

CreateTopic and Subscribe are idempotent by name and by (topic, protocol, endpoint),
so retried creates converge on one object; a topic is still checked for another
resource's URN tag before it is taken over. A topic without a declared policy has
AWS's default policy, which reads back as ``policy=None``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from stackwright.errors import InputError
from stackwright.model.output import Output
from stackwright.model.resource import Resource
from stackwright.providers.aws.base import AwsResource, call, call_or_none, claim, is_ours, tag_dict, tag_list
from stackwright.providers.aws.common import ArnTags, reject_urn_tag, with_defaults
from stackwright.providers.protocol import Created, OperationContext, ReadResult

__all__ = ["RESOURCE_PROVIDERS", "Subscription", "SubscriptionProvider", "Topic", "TopicProvider"]

TAGS = ArnTags()
DEFAULT_POLICY_ID = "__default_policy_ID"
DEFAULT_ACTIONS = [
    "SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission", "SNS:RemovePermission",
    "SNS:DeleteTopic", "SNS:Subscribe", "SNS:ListSubscriptionsByTopic", "SNS:Publish",
]


class Topic(Resource, type="aws:sns:Topic"):
    """An SNS topic; FIFO topics' names end in ``.fifo``."""

    name: str
    display_name: str = ""
    fifo: bool = False
    policy: dict[str, Any] | None = None
    tags: dict[str, str] = {}
    arn: Output[str]


class Subscription(Resource, type="aws:sns:Subscription"):
    """A subscription of ``endpoint`` (a queue ARN, URL, address...) to a topic."""

    topic_arn: str
    protocol: str
    endpoint: str
    raw_message_delivery: bool = False
    filter_policy: dict[str, Any] | None = None
    arn: Output[str]


def default_topic_policy(arn: str) -> dict[str, Any]:
    """The policy AWS gives a new topic; restoring it is how a declared policy is removed."""
    account = arn.split(":")[4]
    return {
        "Version": "2008-10-17", "Id": DEFAULT_POLICY_ID,
        "Statement": [{
            "Sid": "__default_statement_ID", "Effect": "Allow", "Principal": {"AWS": "*"},
            "Action": DEFAULT_ACTIONS, "Resource": arn,
            "Condition": {"StringEquals": {"AWS:SourceOwner": account}},
        }],
    }


# --- Topic --------------------------------------------------------------------------


class TopicProvider(AwsResource):
    """``aws:sns:Topic``; the id is the topic ARN."""

    service = "sns"
    type_token = "aws:sns:Topic"
    resource_class = Topic
    replace_on = frozenset({"name", "fifo"})

    def check(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        values = with_defaults(Topic, inputs)
        if values["fifo"] != values["name"].endswith(".fifo"):
            raise InputError("a FIFO topic's name ends in '.fifo', and only a FIFO topic's does",
                             prop="name")
        reject_urn_tag(values["tags"])
        return values

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        values = self.check(inputs)
        existing = self._find(values["name"])
        if existing is not None:
            claim("topic", values["name"], self._all_tags(existing), ctx)
        attributes = {"DisplayName": values["display_name"]}
        if values["fifo"]:
            attributes["FifoTopic"] = "true"
        if values["policy"] is not None:
            attributes["Policy"] = json.dumps(values["policy"])
        got = call(f"create topic {values['name']}", self.client.create_topic, Name=values["name"],
                   Attributes=attributes, Tags=tag_list(values["tags"], ctx))
        return Created(got["TopicArn"], {"arn": got["TopicArn"]})

    def _topics(self) -> Iterator[str]:
        kwargs: dict[str, Any] = {}
        while True:
            page = call("list topics", self.client.list_topics, **kwargs)
            yield from (t["TopicArn"] for t in page.get("Topics") or [])
            if not page.get("NextToken"):
                return
            kwargs["NextToken"] = page["NextToken"]

    def _find(self, name: str) -> str | None:
        return next((arn for arn in self._topics() if arn.rsplit(":", 1)[-1] == name), None)

    def _all_tags(self, arn: str) -> dict[str, str]:
        return TAGS.read(self.client, arn)

    def read(
        self, ctx: OperationContext, id: str | None, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> ReadResult | None:
        arn = id or self._find(str(inputs.get("name", "")))
        got = call_or_none(f"get topic {arn}", self.client.get_topic_attributes, TopicArn=arn) if arn else None
        if arn is None or got is None:
            return None
        tags = self._all_tags(arn)
        if id is None and not is_ours(tags, ctx):
            return None
        attrs = got.get("Attributes") or {}
        policy = json.loads(attrs["Policy"]) if attrs.get("Policy") else None
        live = {
            "name": arn.rsplit(":", 1)[-1],
            "display_name": attrs.get("DisplayName", ""),
            "fifo": attrs.get("FifoTopic") == "true",
            "policy": None if policy is None or policy.get("Id") == DEFAULT_POLICY_ID else policy,
            "tags": tag_dict(tag_list(tags)),
        }
        return ReadResult(arn, live, {"arn": arn})

    def update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        old, new = with_defaults(Topic, old_inputs), self.check(new_inputs)
        if old["display_name"] != new["display_name"]:
            self._set(id, "DisplayName", new["display_name"])
        if old["policy"] != new["policy"]:
            self._set(id, "Policy", json.dumps(new["policy"] or default_topic_policy(id)))
        if old["tags"] != new["tags"]:
            stale = [k for k in old["tags"] if k not in new["tags"]]
            TAGS.write(self.client, id, stale, new["tags"], ctx)
        return {"arn": id}

    def _set(self, arn: str, name: str, value: str) -> None:
        call(f"set {name} of {arn}", self.client.set_topic_attributes, TopicArn=arn,
             AttributeName=name, AttributeValue=value)

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        call_or_none(f"delete topic {id}", self.client.delete_topic, TopicArn=id)


# --- Subscription -------------------------------------------------------------------


class SubscriptionProvider(AwsResource):
    """``aws:sns:Subscription``; the id is the subscription ARN."""

    service = "sns"
    type_token = "aws:sns:Subscription"
    resource_class = Subscription
    replace_on = frozenset({"topic_arn", "protocol", "endpoint"})

    def check(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        values = with_defaults(Subscription, inputs)
        if values["filter_policy"] == {}:
            values["filter_policy"] = None  # AWS treats an empty filter as none
        return values

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        values = self.check(inputs)
        attributes: dict[str, str] = {}
        if values["raw_message_delivery"]:
            attributes["RawMessageDelivery"] = "true"
        if values["filter_policy"] is not None:
            attributes["FilterPolicy"] = json.dumps(values["filter_policy"])
        got = call(f"subscribe {values['endpoint']} to {values['topic_arn']}", self.client.subscribe,
                   TopicArn=values["topic_arn"], Protocol=values["protocol"],
                   Endpoint=values["endpoint"], Attributes=attributes, ReturnSubscriptionArn=True)
        return Created(got["SubscriptionArn"], {"arn": got["SubscriptionArn"]})

    def _find(self, topic_arn: str, protocol: str, endpoint: str) -> str | None:
        kwargs: dict[str, Any] = {"TopicArn": topic_arn}
        while True:
            page = call_or_none(f"list subscriptions of {topic_arn}",
                                self.client.list_subscriptions_by_topic, **kwargs)
            for sub in (page or {}).get("Subscriptions") or []:
                if sub.get("Protocol") == protocol and sub.get("Endpoint") == endpoint \
                        and str(sub.get("SubscriptionArn", "")).startswith("arn:"):
                    return str(sub["SubscriptionArn"])
            if not page or not page.get("NextToken"):
                return None
            kwargs["NextToken"] = page["NextToken"]

    def read(
        self, ctx: OperationContext, id: str | None, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> ReadResult | None:
        if id is None:
            id = self._find(str(inputs.get("topic_arn", "")), str(inputs.get("protocol", "")),
                            str(inputs.get("endpoint", "")))
        got = call_or_none(f"get subscription {id}", self.client.get_subscription_attributes,
                           SubscriptionArn=id) if id else None
        if id is None or got is None:
            return None
        attrs = got.get("Attributes") or {}
        filter_policy = json.loads(attrs["FilterPolicy"]) if attrs.get("FilterPolicy") else None
        live = {
            "topic_arn": attrs.get("TopicArn"), "protocol": attrs.get("Protocol"),
            "endpoint": attrs.get("Endpoint"),
            "raw_message_delivery": attrs.get("RawMessageDelivery") == "true",
            "filter_policy": filter_policy or None,
        }
        return ReadResult(id, live, {"arn": id})

    def update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        old, new = with_defaults(Subscription, old_inputs), self.check(new_inputs)
        if old["raw_message_delivery"] != new["raw_message_delivery"]:
            self._set(id, "RawMessageDelivery", "true" if new["raw_message_delivery"] else "false")
        if old["filter_policy"] != new["filter_policy"]:
            policy = new["filter_policy"]
            self._set(id, "FilterPolicy", json.dumps(policy) if policy is not None else "")
        return {"arn": id}

    def _set(self, arn: str, name: str, value: str) -> None:
        call(f"set {name} of {arn}", self.client.set_subscription_attributes, SubscriptionArn=arn,
             AttributeName=name, AttributeValue=value)

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        call_or_none(f"unsubscribe {id}", self.client.unsubscribe, SubscriptionArn=id)


RESOURCE_PROVIDERS: list[type[AwsResource]] = [TopicProvider, SubscriptionProvider]
