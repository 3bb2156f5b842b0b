"""CloudFormation at plan time, without a cloud: parameters checked against the
template, and stacks ordered by the exports they import."""

from __future__ import annotations

from typing import Any

import pytest

from stackwright.errors import GraphError, InputError, PlanError
from stackwright.plan.plan import Plan
from stackwright.plan.planner import make_plan
from stackwright.providers.aws.base import AwsClients
from stackwright.providers.aws.cloudformation import Stack, StackProvider, template_links
from stackwright.providers.protocol import ResourceProvider
from stackwright.state.records import Snapshot
from stackwright.testing import declare
from cloudformation_templates import APP, NETWORK

class Providers:
    """The real CloudFormation handler; planning makes no AWS call."""

    def __init__(self) -> None:
        self.stack = StackProvider(AwsClients({"region": "eu-west-1"}))

    def resource(self, type_token: str) -> ResourceProvider:
        assert type_token == "aws:cloudformation:Stack"
        return self.stack

    def versions(self) -> dict[str, str]:
        return {"aws": "test"}


def plan_of(program: Any) -> Plan:
    return make_plan(declare(program), Snapshot("dev", "lineage", 0, {}, {}), Providers())


def names(plan: Plan) -> list[str]:
    return [s.urn.rsplit("::", 1)[1] for s in plan.steps]


def test_exports_and_imports_resolve_parameters_defaults_and_the_stack_name() -> None:
    network = template_links(NETWORK, {"EnvName": "dev"}, "dev-network", "eu-west-1")
    assert network.exports == {"dev-network-VpcId", "dev-network:dev"} and network.imports == frozenset()
    app = template_links(APP, {"NetworkStack": "dev-network"}, "dev-app")
    assert app.imports == {"dev-network-VpcId"} and app.exports == {"dev-app-GroupId"}
    assert template_links(APP, {}, "dev-app").imports == frozenset()  # NetworkStack unknown: left out


def test_an_importing_stack_is_created_after_the_exporting_one_without_depends_on() -> None:
    def program() -> None:
        Stack("app", name="dev-app", template=APP, parameters={"NetworkStack": "dev-network"})
        Stack("network", name="dev-network", template=NETWORK, parameters={"EnvName": "dev"})

    plan = plan_of(program)
    assert names(plan) == ["network", "app"]
    assert [d.rsplit("::", 1)[1] for d in plan.steps[1].deps] == ["network"]


def test_stacks_importing_each_other_are_a_cycle_naming_both() -> None:
    back = NETWORK.replace("Properties: {CidrBlock: !Ref Cidr}",
                           "Properties: {CidrBlock: !Ref Cidr, Tags: [{Key: g, Value: !ImportValue dev-app-GroupId}]}")

    def program() -> None:
        Stack("network", name="dev-network", template=back, parameters={"EnvName": "dev"})
        Stack("app", name="dev-app", template=APP, parameters={"NetworkStack": "dev-network"})

    with pytest.raises(GraphError) as info:
        plan_of(program)
    message = info.value.message
    assert "network imports 'dev-app-GroupId' exported by app" in message
    assert "app imports 'dev-network-VpcId' exported by network" in message


def test_two_stacks_exporting_one_name_is_an_error() -> None:
    def program() -> None:
        Stack("a", name="dev-app", template=APP, parameters={"NetworkStack": "x"})
        Stack("b", name="dev-app", template=APP, parameters={"NetworkStack": "y"})

    with pytest.raises(PlanError, match="a and b both export 'dev-app-GroupId'"):
        plan_of(program)


@pytest.mark.parametrize(("parameters", "problem"), [
    ({"EnvName": "dev", "Colour": "red"}, "declares no parameter 'Colour'"),
    ({}, "requires parameter 'EnvName', which has no Default"),
    ({"EnvName": "qa"}, "'EnvName' = 'qa' is not one of the AllowedValues"),
    ({"EnvName": "dev", "Cidr": "ten"}, "'Cidr' = 'ten' does not match the AllowedPattern"),
])
def test_parameters_that_do_not_fit_the_template_fail_the_plan(parameters: dict[str, str], problem: str) -> None:
    def program() -> None:
        Stack("network", name="dev-network", template=NETWORK, parameters=parameters)

    with pytest.raises(InputError) as info:
        plan_of(program)
    err = info.value
    assert problem in err.message and "stack 'dev-network'" in err.message
    assert err.prop is not None and err.prop.startswith("parameters.")
    assert err.resource is not None and err.resource.endswith("::network")


def test_stacks_of_a_workspace_are_ordered_by_their_recorded_templates() -> None:
    """What the workspace order gets: names per stack, then importer -> exporter edges."""
    from stackwright.plan.links import stack_edges, stack_links

    providers = Providers()
    network = stack_links([("dev::net::aws:cloudformation:Stack::network", "aws:cloudformation:Stack",
                            {"name": "dev-network", "template": NETWORK, "parameters": {"EnvName": "dev"}})],
                          providers)
    app = stack_links([("dev::apps::aws:cloudformation:Stack::app", "aws:cloudformation:Stack",
                        {"name": "dev-app", "template": APP, "parameters": {"NetworkStack": "dev-network"}})],
                      providers)
    edges = stack_edges({"apps/dev": app, "net/dev": network})
    assert [(e.importer, e.exporter, e.name) for e in edges] == [("apps/dev", "net/dev", "dev-network-VpcId")]
    assert edges[0].explain() == "apps/dev (app) imports 'dev-network-VpcId' exported by net/dev (network)"


def test_a_template_folder_deploys_what_the_environment_lists_in_export_order(tmp_path: Any) -> None:
    """TemplateFolder: templates by the name before their first dot, parameters inline or
    from a parameter file, ordered by their exports with no depends_on."""
    import json

    from stackwright.components import TemplateFolder

    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "network.cfn.yml").write_text(NETWORK)
    (tmp_path / "templates" / "app.cfn.yml").write_text(APP)
    (tmp_path / "templates" / "unused.json").write_text("{}")
    (tmp_path / "network.json").write_text(json.dumps([{"ParameterKey": "EnvName", "ParameterValue": "dev"}]))

    def program() -> None:
        TemplateFolder("infra", folder=tmp_path / "templates",
                       parameters={"app": {"NetworkStack": "dev-network"}, "network": "network.json"})

    plan = plan_of(program)
    assert names(plan) == ["infra$network", "infra$app"]
    assert plan.steps[0].inputs is not None and plan.steps[0].inputs["parameters"] == {"EnvName": "dev"}
    assert plan.steps[1].inputs is not None and plan.steps[1].inputs["name"] == "dev-app"


def test_a_template_folder_names_an_unknown_template_and_lists_the_known(tmp_path: Any) -> None:
    from stackwright.components import TemplateFolder
    from stackwright.errors import ProgramError

    (tmp_path / "network.yaml").write_text(NETWORK)

    def program() -> None:
        TemplateFolder("infra", folder=tmp_path, parameters={"netwrok": {}})

    with pytest.raises(ProgramError) as info:
        plan_of(program)
    assert "no template 'netwrok'" in info.value.message and info.value.hint == "its templates: network"
    assert info.value.file == __file__


def test_a_secret_parameter_from_config_stays_secret_in_a_template_folder(tmp_path: Any) -> None:
    from stackwright.components import TemplateFolder
    from stackwright.model.values import Secret, is_secret

    (tmp_path / "network.yaml").write_text(NETWORK)

    def program() -> None:  # what sw.Config().require_object(...) gives for a `config set --secret` value
        TemplateFolder("infra", folder=tmp_path, parameters={"network": {"EnvName": Secret("dev")}})

    step = plan_of(program).steps[0]
    assert step.inputs is not None and is_secret(step.inputs["parameters"]["EnvName"])


QUEUE = """\
Parameters:
  Retention: {Type: Number, MinValue: 60, MaxValue: 1209600}
  Ratio: {Type: Number, Default: 1}
  Fifo: {Type: String, AllowedValues: ["true", "false"]}
Resources:
  Q: {Type: AWS::SQS::Queue, Properties: {MessageRetentionPeriod: !Ref Retention}}
"""


def test_a_template_folder_passes_numbers_and_booleans_from_config_as_text(tmp_path: Any) -> None:
    """`config set templates.queue.Retention 345600` stores a number, as YAML does for
    `Retention: 345600`; CloudFormation takes it as text, as from a parameter file."""
    import json

    from stackwright.components import TemplateFolder

    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "queue.yaml").write_text(QUEUE)
    (tmp_path / "templates" / "other.yaml").write_text(QUEUE)
    (tmp_path / "other.json").write_text(json.dumps([{"ParameterKey": "Retention", "ParameterValue": 60},
                                                     {"ParameterKey": "Fifo", "ParameterValue": False}]))

    def program() -> None:
        TemplateFolder("infra", folder=tmp_path / "templates",
                       parameters={"queue": {"Retention": 345600, "Ratio": 0.5, "Fifo": True}, "other": "other.json"})

    inputs = {s.urn.rsplit("$", 1)[1]: s.inputs for s in plan_of(program).steps}
    assert inputs["queue"] is not None and inputs["queue"]["parameters"] == \
        {"Retention": "345600", "Ratio": "0.5", "Fifo": "true"}
    assert inputs["other"] is not None and inputs["other"]["parameters"] == {"Retention": "60", "Fifo": "false"}


@pytest.mark.parametrize("value", [[60, 120], {"days": 4}, None])
def test_a_template_folder_names_the_template_and_parameter_of_a_value_that_is_not_text(
        tmp_path: Any, value: Any) -> None:
    from stackwright.components import TemplateFolder
    from stackwright.errors import ProgramError

    (tmp_path / "queue.yaml").write_text(QUEUE)

    def program() -> None:
        TemplateFolder("infra", folder=tmp_path, parameters={"queue": {"Retention": value}})

    with pytest.raises(ProgramError) as info:
        plan_of(program)
    assert f"parameter 'Retention' of 'queue' must be text, a number or a boolean, not {type(value).__name__}" \
        in info.value.message
    assert info.value.file == __file__
