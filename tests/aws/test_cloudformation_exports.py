"""CloudFormation on the local cloud: exports and imports through change sets, failed
creates that leave nothing behind, capabilities and "no updates" that are no change.

What the emulator holds is checked through our own boto3 client, not the handler.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from aws.conftest import ctx, unique
from cloudformation_templates import APP, NETWORK
from stackwright.errors import ProviderError
from stackwright.providers.aws.cloudformation import StackProvider

pytestmark = pytest.mark.aws

TYPE = "aws:cloudformation:Stack"
ROLE = """\
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement: [{Effect: Allow, Principal: {Service: ec2.amazonaws.com}, Action: sts:AssumeRole}]
"""


@pytest.fixture
def handler(handlers: Any) -> StackProvider:
    found = handlers(TYPE)
    assert isinstance(found, StackProvider)
    return found


def exports(boto: Any) -> dict[str, str]:
    return {e["Name"]: e["Value"] for e in boto("cloudformation").list_exports()["Exports"]}


def test_a_stack_imports_what_another_exports(handler: StackProvider, boto: Any) -> None:
    net_name, app_name = unique("net"), unique("app")
    net_inputs = handler.check({"name": net_name, "template": NETWORK, "parameters": {"EnvName": "dev"}})
    network = handler.create(ctx(TYPE, net_name, token=f"tok-{net_name}"), net_inputs)
    vpc_id = network.outputs["outputs"]["VpcId"]
    assert vpc_id.startswith("vpc-")
    assert exports(boto)[f"{net_name}-VpcId"] == vpc_id

    app_inputs = handler.check({"name": app_name, "template": APP, "parameters": {"NetworkStack": net_name}})
    app = handler.create(ctx(TYPE, app_name, token=f"tok-{app_name}"), app_inputs)
    group = boto("ec2").describe_security_groups(GroupIds=[app.outputs["outputs"]["GroupId"]])["SecurityGroups"][0]
    assert group["VpcId"] == vpc_id

    with pytest.raises(ProviderError, match="in use by"):  # as in AWS: importers go first
        handler.delete(ctx(TYPE, net_name), network.id, net_inputs, network.outputs)
    handler.delete(ctx(TYPE, app_name), app.id, app_inputs, app.outputs)
    handler.delete(ctx(TYPE, net_name), network.id, net_inputs, network.outputs)
    assert f"{net_name}-VpcId" not in exports(boto)


def test_an_update_through_a_change_set_replaces_the_exports(handler: StackProvider, boto: Any) -> None:
    name = unique("net")
    inputs = handler.check({"name": name, "template": NETWORK, "parameters": {"EnvName": "dev"}})
    created = handler.create(ctx(TYPE, name, token=f"tok-{name}"), inputs)
    renamed = handler.check(dict(inputs, template=NETWORK.replace("-VpcId'", "-Vpc'")))
    handler.update(ctx(TYPE, name, token=f"tok-up-{name}"), created.id, inputs, created.outputs, renamed)
    found = exports(boto)
    assert f"{name}-Vpc" in found and f"{name}-VpcId" not in found
    handler.delete(ctx(TYPE, name), created.id, renamed, created.outputs)


def topic_exporter(export: str, topic: str) -> dict[str, Any]:
    return {"Resources": {"T": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": topic}}},
            "Outputs": {"Name": {"Value": {"Fn::GetAtt": ["T", "TopicName"]}, "Export": {"Name": export}}}}


@pytest.mark.parametrize("change", ["value", "removal"])
def test_an_export_another_stack_imports_can_neither_change_nor_go(handler: StackProvider, boto: Any,
                                                                     change: str) -> None:
    """As in AWS: the update fails and rolls back, the export and the template stay as
    they were; once the importer is gone, the same update goes through."""
    producer, consumer = unique("pe-producer"), unique("pe-consumer")
    export = f"{producer}-Name"
    inputs = handler.check({"name": producer, "template": topic_exporter(export, f"{producer}-one")})
    made = handler.create(ctx(TYPE, producer, token=f"tok-{producer}"), inputs)
    importer = handler.check({"name": consumer, "template": {"Resources": {"T": {
        "Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Fn::Join": ["-", [{"Fn::ImportValue": export}, "c"]]}}}}}})
    user = handler.create(ctx(TYPE, consumer, token=f"tok-{consumer}"), importer)
    changed = topic_exporter(export, f"{producer}-two")
    if change == "removal":
        changed = {"Resources": changed["Resources"]}
    new = handler.check(dict(inputs, template=changed))

    words = "Cannot update export" if change == "value" else "cannot be deleted"
    with pytest.raises(ProviderError, match=f"{words}.*in use by {consumer}"):
        handler.update(ctx(TYPE, producer, token=f"tok-up-{producer}"), made.id, inputs, made.outputs, new)
    assert exports(boto)[export] == f"{producer}-one"
    cfn = boto("cloudformation")
    assert cfn.describe_stacks(StackName=producer)["Stacks"][0]["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert "two" not in str(cfn.get_template(StackName=producer)["TemplateBody"])

    handler.delete(ctx(TYPE, consumer), user.id, importer, user.outputs)
    handler.update(ctx(TYPE, producer, token=f"tok-up2-{producer}"), made.id, inputs, made.outputs, new)
    assert exports(boto).get(export) == (f"{producer}-two" if change == "value" else None)
    handler.delete(ctx(TYPE, producer), made.id, new, made.outputs)


def test_a_create_that_fails_to_execute_leaves_no_stack(handler: StackProvider, boto: Any) -> None:
    """The emulator fails the import of an export nobody made; the stack must not stay."""
    name, missing = unique("app"), unique("nowhere")
    inputs = handler.check({"name": name, "template": APP, "parameters": {"NetworkStack": missing}})
    with pytest.raises(ProviderError) as info:
        handler.create(ctx(TYPE, name, token=f"tok-{name}"), inputs)
    assert f"{missing}-VpcId" in info.value.message and not info.value.retryable
    stacks = [s for s in boto("cloudformation").list_stacks()["StackSummaries"] if s["StackName"] == name]
    assert [s["StackStatus"] for s in stacks] == ["DELETE_COMPLETE"]

    network = handler.check({"name": missing, "template": NETWORK, "parameters": {"EnvName": "dev"}})
    made = handler.create(ctx(TYPE, missing, token=f"tok-{missing}"), network)
    app = handler.create(ctx(TYPE, name, token=f"tok-{name}"), inputs)  # the same create, afresh
    assert app.outputs["status"] == "CREATE_COMPLETE"
    handler.delete(ctx(TYPE, name), app.id, inputs, app.outputs)
    handler.delete(ctx(TYPE, missing), made.id, network, made.outputs)


def test_declared_capabilities_are_no_drift(handler: StackProvider) -> None:
    name = unique("role")
    c = ctx(TYPE, name, token=f"tok-{name}")
    inputs = handler.check({"name": name, "template": ROLE, "capabilities": ["CAPABILITY_IAM"]})
    created = handler.create(c, inputs)
    live = handler.read(c, created.id, inputs, created.outputs)
    assert live is not None and handler.diff(inputs, created.outputs, live.inputs).changed == ()
    imported = handler.read(c, created.id, {}, {})  # nothing declared: the live ones
    assert imported is not None and imported.inputs["capabilities"] == []
    assert handler.explain_update(c, created.id, imported.inputs, inputs) == ["change set: no resource changes"]
    handler.delete(c, created.id, inputs, created.outputs)


def test_no_updates_are_to_be_performed_is_no_change_everywhere(
    handler: StackProvider, boto: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """AWS may refuse the change set itself with this message; preview and update both
    take it for "nothing to do"."""
    name = unique("net")
    c = ctx(TYPE, name, token=f"tok-{name}")
    inputs = handler.check({"name": name, "template": NETWORK, "parameters": {"EnvName": "dev"}, "tags": {"a": "1"}})
    created = handler.create(c, inputs)

    def refuse(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "ValidationError", "Message": "No updates are to be performed."}},
                          "CreateChangeSet")

    monkeypatch.setattr(handler.client, "create_change_set", refuse)
    assert handler.preview_changes(c, created.id, inputs) == []
    retagged = handler.check(dict(inputs, tags={"a": "2"}))
    outputs = handler.update(ctx(TYPE, name, token=f"tok-up-{name}"), created.id, inputs, created.outputs, retagged)
    assert outputs["status"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    tags = boto("cloudformation").describe_stacks(StackName=name)["Stacks"][0]["Tags"]
    assert {"Key": "a", "Value": "2"} in tags  # the tags still changed
    monkeypatch.undo()
    handler.delete(c, created.id, retagged, outputs)


def test_a_create_whose_change_set_cannot_execute_leaves_no_stack(
    handler: StackProvider, boto: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CloudFormation may refuse ExecuteChangeSet itself (a plain moto server does so
    for a template it cannot create); the stack it made for review must go too."""
    def refuse(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "ValidationError", "Message": "Template error: no way"}},
                          "ExecuteChangeSet")

    monkeypatch.setattr(handler.client, "execute_change_set", refuse)
    name = unique("net")
    inputs = handler.check({"name": name, "template": NETWORK, "parameters": {"EnvName": "dev"}})
    with pytest.raises(ProviderError, match="no way") as info:
        handler.create(ctx(TYPE, name, token=f"tok-{name}"), inputs)
    assert not info.value.retryable
    stacks = [s for s in boto("cloudformation").list_stacks()["StackSummaries"] if s["StackName"] == name]
    assert [s["StackStatus"] for s in stacks] == ["DELETE_COMPLETE"]


def test_a_stack_whose_outputs_cannot_be_resolved_is_rolled_back_and_removed(
    handler: StackProvider, boto: Any,
) -> None:
    """moto skips resource types it does not implement; an output reading one of them
    fails the create, and the failed stack must still be deletable."""
    template = """\
Resources:
  Namespace:
    Type: AWS::ServiceDiscovery::PrivateDnsNamespace
    Properties: {Name: example.local, Vpc: vpc-12345678}
Outputs:
  NamespaceId:
    Value: !GetAtt Namespace.Id
    Export: {Name: !Sub '${AWS::StackName}-NamespaceId'}
"""
    name = unique("ns")
    inputs = handler.check({"name": name, "template": template})
    with pytest.raises(ProviderError, match="ROLLBACK_COMPLETE.*Namespace"):
        handler.create(ctx(TYPE, name, token=f"tok-{name}"), inputs)
    stacks = [s for s in boto("cloudformation").list_stacks()["StackSummaries"] if s["StackName"] == name]
    assert [s["StackStatus"] for s in stacks] == ["DELETE_COMPLETE"]
    assert f"{name}-NamespaceId" not in exports(boto)
