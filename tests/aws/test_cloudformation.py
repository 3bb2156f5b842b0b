"""aws:cloudformation:Stack against the emulator: change sets, round trip, preview, delete."""

from __future__ import annotations

from typing import Any

import pytest

from aws.conftest import ctx, tag_map
from stackwright.errors import InputError, ProviderError
from stackwright.providers.aws import cloudformation
from stackwright.providers.aws.base import URN_TAG
from stackwright.providers.aws.cloudformation import StackProvider, parse_template

pytestmark = pytest.mark.aws

TYPE = "aws:cloudformation:Stack"
YAML_TEMPLATE = """\
AWSTemplateFormatVersion: 2010-09-09
Parameters:
  QueueName:
    Type: String
  Retention:
    Type: String
    Default: "345600"
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Ref QueueName
      MessageRetentionPeriod: !Ref Retention
Outputs:
  QueueArn:
    Value: !GetAtt Queue.Arn
  QueueUrl:
    Value: !Ref Queue
"""
WITH_DEAD_LETTERS = YAML_TEMPLATE.replace("Outputs:", """\
  Dead:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: sw-dead
Outputs:""")


def json_template(*queues: str) -> dict[str, Any]:
    return {
        "Resources": {q: {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"sw-{q.lower()}"}}
                      for q in queues},
        "Outputs": {f"{q}Arn": {"Value": {"Fn::GetAtt": [q, "Arn"]}} for q in queues},
    }


@pytest.fixture
def handler(handlers: Any) -> StackProvider:
    """The handler as the engine gets it."""
    handler = handlers(TYPE)
    assert isinstance(handler, StackProvider)
    return handler


@pytest.fixture
def client(boto: Any) -> Any:
    return boto("cloudformation")


def test_yaml_short_forms_parse_like_their_json_forms() -> None:
    parsed = parse_template(YAML_TEMPLATE)
    assert parsed["AWSTemplateFormatVersion"] == "2010-09-09"
    assert parsed["Resources"]["Queue"]["Properties"]["QueueName"] == {"Ref": "QueueName"}
    assert parsed["Outputs"]["QueueArn"]["Value"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert parse_template("!Sub 'a-${X}'") == {"Fn::Sub": "a-${X}"}
    with pytest.raises(InputError):
        StackProvider.check(StackProvider.__new__(StackProvider), {"name": "x", "template": "a: [1"})


def test_template_is_compared_as_a_document(handler: StackProvider) -> None:
    as_dict = {"name": "s", "template": parse_template(YAML_TEMPLATE)}
    as_text = {"name": "s", "template": YAML_TEMPLATE}
    assert handler.diff(as_dict, {}, as_text).changed == ()
    changed = dict(as_text, template=YAML_TEMPLATE.replace("QueueUrl", "Url"))
    assert handler.diff(as_dict, {}, changed).changed == ("template",)


def test_lifecycle(handler: StackProvider, client: Any, boto: Any) -> None:
    c = ctx(TYPE, "queues", token="tok-create-queues")
    inputs = handler.check({"name": "sw-queues", "template": YAML_TEMPLATE,
                            "parameters": {"QueueName": "sw-jobs"}, "tags": {"team": "jobs"}})
    assert set(inputs) == set(cloudformation.Stack.input_specs())
    created = handler.create(c, inputs)
    assert created.id.startswith("arn:aws:cloudformation:") and created.outputs["stack_id"] == created.id
    assert created.outputs["status"] == "CREATE_COMPLETE"
    stack = client.describe_stacks(StackName="sw-queues")["Stacks"][0]
    assert tag_map(stack["Tags"]) == {"team": "jobs", URN_TAG: c.urn}

    read = handler.read(c, created.id, inputs, created.outputs)
    assert read is not None
    assert set(read.inputs) == set(cloudformation.Stack.input_specs())
    assert read.inputs["template"] == YAML_TEMPLATE
    assert handler.diff(inputs, created.outputs, read.inputs).changed == ()
    # import: nothing declared, the live template and the non-default parameters come back
    imported = handler.read(c, created.id, {}, {})
    assert imported is not None and handler.diff(inputs, {}, imported.inputs).changed == ()

    assert handler.preview_changes(c, created.id, inputs) == []  # "didn't contain changes"

    new = handler.check(dict(inputs, template=WITH_DEAD_LETTERS, parameters={"QueueName": "sw-work"}))
    preview = handler.preview_changes(c, created.id, new)
    assert ("Add", "Dead", "AWS::SQS::Queue") in {(p["action"], p["logical_id"], p["type"]) for p in preview}
    assert [s for s in client.list_change_sets(StackName=created.id)["Summaries"]
            if s["ChangeSetName"].startswith("stackwright-preview")] == []
    assert handler.diff(inputs, created.outputs, new).replaces == ()
    outputs = handler.update(ctx(TYPE, "queues", token="tok-update-queues"), created.id, inputs, created.outputs, new)
    assert outputs["status"] == "UPDATE_COMPLETE"
    sqs = boto("sqs")
    assert "sw-dead" in {u.rsplit("/", 1)[-1] for u in sqs.list_queues()["QueueUrls"]}
    stack = client.describe_stacks(StackName=created.id)["Stacks"][0]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}["QueueName"] == "sw-work"
    assert client.get_template(StackName=created.id)["TemplateBody"] == WITH_DEAD_LETTERS
    read = handler.read(c, created.id, new, outputs)
    assert read is not None and handler.diff(new, outputs, read.inputs).changed == ()

    assert handler.diff(new, outputs, dict(new, name="sw-other")).replaces == ("name",)

    handler.delete(c, created.id, new, outputs)
    status = client.describe_stacks(StackName=created.id)["Stacks"][0]["StackStatus"]
    assert status == "DELETE_COMPLETE"
    assert handler.read(c, created.id, new, outputs) is None
    handler.delete(c, created.id, new, outputs)  # idempotent


def test_tag_only_update(handler: StackProvider, client: Any) -> None:
    c = ctx(TYPE, "tagged", token="tok-create-tagged")
    inputs = handler.check({"name": "sw-tagged", "template": json_template("Tagged"), "tags": {"a": "1"}})
    created = handler.create(c, inputs)
    new = handler.check(dict(inputs, tags={"a": "2"}))
    handler.update(ctx(TYPE, "tagged", token="tok-update-tagged"), created.id, inputs, created.outputs, new)
    stack = client.describe_stacks(StackName=created.id)["Stacks"][0]
    assert tag_map(stack["Tags"]) == {"a": "2", URN_TAG: c.urn}
    handler.delete(c, created.id, new, created.outputs)


def test_read_without_id_finds_an_interrupted_create(handler: StackProvider, client: Any) -> None:
    c = ctx(TYPE, "pending", token="tok-create-pending")
    inputs = handler.check({"name": "sw-pending", "template": json_template("Pending")})
    assert handler.read(c, None, inputs, {}) is None
    # the change set was made and executed, then the process died before recording the id
    made = client.create_change_set(StackName="sw-pending", ChangeSetName="earlier", ChangeSetType="CREATE",
                                    TemplateBody=cloudformation.template_body(inputs["template"]),
                                    Tags=[{"Key": URN_TAG, "Value": c.urn}])
    assert handler.read(c, None, inputs, {}) is None  # under review: nothing exists yet
    client.execute_change_set(ChangeSetName=made["Id"])
    found = handler.read(c, None, inputs, {})
    assert found is not None and found.id == made["StackId"]
    assert handler.diff(inputs, {}, found.inputs).changed == ()
    assert handler.read(ctx(TYPE, "other"), None, inputs, {}) is None
    assert handler.create(c, inputs).id == made["StackId"]  # a retried create adopts its own stack
    with pytest.raises(ProviderError, match="not managed"):
        handler.create(ctx(TYPE, "other"), inputs)
    handler.delete(c, made["StackId"], inputs, {})


def test_retried_create_executes_the_change_set_it_made(handler: StackProvider, client: Any) -> None:
    c = ctx(TYPE, "retried", token="tok-create-retried")
    inputs = handler.check({"name": "sw-retried", "template": json_template("Retried")})
    real_execute = handler.client.execute_change_set

    def crash(**kwargs: Any) -> None:
        raise ConnectionError("process died before executing")

    handler.client.execute_change_set = crash
    try:
        with pytest.raises(ProviderError):
            handler.create(c, inputs)
    finally:
        handler.client.execute_change_set = real_execute
    created = handler.create(c, inputs)
    stacks = [s for s in client.list_stacks()["StackSummaries"] if s["StackName"] == "sw-retried"]
    assert [s["StackId"] for s in stacks] == [created.id]
    assert created.outputs["status"] == "CREATE_COMPLETE"
    handler.delete(c, created.id, inputs, created.outputs)


def test_stack_outputs_are_reported(handler: StackProvider, client: Any) -> None:
    c = ctx(TYPE, "outputs", token="tok-create-outputs")
    inputs = handler.check({"name": "sw-outputs", "template": json_template("Out")})
    created = handler.create(c, inputs)
    assert created.outputs["outputs"]["OutArn"].endswith(":sw-out")
    handler.delete(c, created.id, inputs, created.outputs)


def test_a_rolled_back_create_is_a_permanent_error_naming_the_reason(
    handler: StackProvider, client: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """moto never fails a stack, so its answers are rewritten as a rollback would read."""
    real_describe = handler.client.describe_stacks

    def rolled_back(**kwargs: Any) -> dict[str, Any]:
        got: dict[str, Any] = real_describe(**kwargs)
        for stack in got["Stacks"]:
            if stack["StackStatus"] == "CREATE_COMPLETE":
                stack["StackStatus"] = "ROLLBACK_COMPLETE"
                stack["StackStatusReason"] = "The following resource(s) failed to create: [Broken]."
        return got

    def events(**kwargs: Any) -> dict[str, Any]:
        return {"StackEvents": [
            {"LogicalResourceId": "sw-broken", "ResourceStatus": "ROLLBACK_COMPLETE"},
            {"LogicalResourceId": "Broken", "ResourceStatus": "CREATE_FAILED",
             "ResourceStatusReason": "Queue name is invalid"},
            {"LogicalResourceId": "sw-broken", "ResourceStatus": "CREATE_IN_PROGRESS",
             "ResourceStatusReason": "User Initiated"},
            {"LogicalResourceId": "Old", "ResourceStatus": "CREATE_FAILED", "ResourceStatusReason": "older"},
        ]}

    monkeypatch.setattr(handler.client, "describe_stacks", rolled_back)
    monkeypatch.setattr(handler.client, "describe_stack_events", events)
    inputs = handler.check({"name": "sw-broken", "template": json_template("Broken")})
    with pytest.raises(ProviderError) as info:
        handler.create(ctx(TYPE, "broken", token="tok-create-broken"), inputs)
    message = info.value.message
    assert not info.value.retryable
    assert "ROLLBACK_COMPLETE" in message and "failed to create: [Broken]" in message
    assert "Broken: Queue name is invalid" in message and "older" not in message
    monkeypatch.undo()
    stacks = [s for s in client.list_stacks()["StackSummaries"] if s["StackName"] == "sw-broken"]
    assert [s["StackStatus"] for s in stacks] == ["DELETE_COMPLETE"]  # cleaned up for the next attempt
    retried = handler.create(ctx(TYPE, "broken", token="tok-create-broken"), inputs)  # nothing blocks a new try
    assert retried.outputs["status"] == "CREATE_COMPLETE"
    handler.delete(ctx(TYPE, "broken"), retried.id, inputs, retried.outputs)
