"""The planner as a table: desired program + recorded state → expected steps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
import pytest

import stackwright as sw
from stackwright.cli.render import plan_lines
from stackwright.engine.apply import action_graph
from stackwright.errors import GraphError, PlanError
from stackwright.model.values import UNKNOWN, Secret
from stackwright.plan.plan import Op, Plan, Step
from stackwright.plan.planner import make_plan
from stackwright.state.records import ResourceState, Snapshot
from stackwright.testing import declare
from stackwright.workflow.markdown import render_plan
from unit.fakes import FakeProviders, Thing

P = "dev::test::fake:Thing::"


def record(name: str, id: str | None = None, deps: list[str] = (), protect: bool = False,  # type: ignore[assignment]
           **inputs: Any) -> ResourceState:
    full = {"label": "", "zone": "a", "ref": "", **inputs}
    rid = id or f"{name}-id"
    return ResourceState(urn=P + name, type="fake:Thing", id=rid, inputs=full,
                         outputs={**full, "arn": f"arn:{rid}"}, deps=list(deps), protect=protect)


def plan_for(program: Callable[[], Any], *records: ResourceState) -> Plan:
    snapshot = Snapshot("dev", "lineage", 7, {r.urn: r for r in records}, {})
    return make_plan(declare(program), snapshot, FakeProviders())


def ops(plan: Plan) -> dict[str, str]:
    return {s.urn.removeprefix(P): s.op.value for s in plan.steps}


def test_new_resources_are_created_with_unknown_outputs_downstream() -> None:
    def program() -> None:
        a = Thing("a", label="x")
        Thing("b", ref=a.arn)

    plan = plan_for(program)
    assert ops(plan) == {"a": "create", "b": "create"}
    b = plan.steps[1]
    assert b.inputs is not None and b.inputs["ref"] is UNKNOWN and b.deps == (P + "a",)


def test_unchanged_program_is_a_no_op_and_uses_recorded_outputs() -> None:
    def program() -> None:
        a = Thing("a", label="x")
        Thing("b", ref=a.arn)

    plan = plan_for(program, record("a", label="x"), record("b", ref="arn:a-id", deps=[P + "a"]))
    assert ops(plan) == {"a": "same", "b": "same"} and not plan.has_changes


@pytest.mark.parametrize(("change", "expected", "replace_keys"), [
    ({"label": "y"}, "update", ()),
    ({"zone": "b"}, "replace", ("zone",)),
])
def test_update_or_replace_by_provider_rules(change: dict[str, str], expected: str,
                                             replace_keys: tuple[str, ...]) -> None:
    plan = plan_for(lambda: Thing("a", **{"label": "x", **change}), record("a", label="x"))
    step = plan.steps[0]
    assert step.op.value == expected and step.replace_keys == replace_keys
    assert [d.path for d in step.diffs] == list(change)


def test_update_of_a_dependency_makes_computed_inputs_unknown_only_when_replaced() -> None:
    def program() -> None:
        a = Thing("a", zone="b")
        Thing("b", ref=a.arn)

    plan = plan_for(program, record("a"), record("b", ref="arn:a-id", deps=[P + "a"]))
    assert ops(plan) == {"a": "replace", "b": "update"}
    assert plan.steps[1].inputs is not None and plan.steps[1].inputs["ref"] is UNKNOWN


def test_removed_resources_are_deleted() -> None:
    plan = plan_for(lambda: Thing("a"), record("a"), record("gone"))
    assert ops(plan) == {"a": "same", "gone": "delete"}


def test_protected_resources_refuse_delete_and_replace() -> None:
    with pytest.raises(PlanError, match="protected"):
        plan_for(lambda: None, record("a", protect=True))
    with pytest.raises(PlanError, match="replace"):
        plan_for(lambda: Thing("a", zone="b", opts=sw.ResourceOptions(protect=True)), record("a"))


def test_alias_renames_without_replacement() -> None:
    plan = plan_for(lambda: Thing("new", opts=sw.ResourceOptions(aliases=[sw.Alias(name="old")])),
                    record("old"))
    assert ops(plan) == {"new": "same"}
    assert plan.steps[0].previous_urn == P + "old" and plan.has_changes


def test_ignore_changes_keeps_recorded_value() -> None:
    plan = plan_for(lambda: Thing("a", label="new", opts=sw.ResourceOptions(ignore_changes=["label"])),
                    record("a", label="old"))
    assert ops(plan) == {"a": "same"}
    assert plan.steps[0].notes == ('label: kept at "old", not set to the declared "new": ignore_changes lists it',)
    assert "ignore_changes lists it" in "\n".join(plan_lines(plan)), "shown although unchanged"


def test_a_kept_secret_is_masked_in_the_note() -> None:
    plan = plan_for(lambda: Thing("a", label=sw.secret("new-pw"), opts=sw.ResourceOptions(ignore_changes=["label"])),
                    record("a", label=Secret("old-pw")))
    assert plan.steps[0].notes == ('label: kept at "[secret]", not set to the declared "[secret]": '
                                   "ignore_changes lists it",)


def test_no_note_when_an_ignored_value_matches() -> None:
    plan = plan_for(lambda: Thing("a", label="same", opts=sw.ResourceOptions(ignore_changes=["label"])),
                    record("a", label="same"))
    assert plan.steps[0].notes == ()


def test_delete_before_replace_option_is_carried() -> None:
    plan = plan_for(lambda: Thing("a", zone="b", opts=sw.ResourceOptions(delete_before_replace=True)),
                    record("a"))
    assert plan.steps[0].delete_before_replace


def test_targets_limit_the_plan_to_the_target_and_what_it_needs() -> None:
    def program() -> None:
        a = Thing("a")
        Thing("b", ref=a.arn)
        Thing("c")

    plan = make_plan(declare(program), Snapshot("dev", "l", 1, {}, {}), FakeProviders(),
                     targets=[P + "b"])
    assert ops(plan) == {"a": "create", "b": "create"}
    with pytest.raises(PlanError, match="--target"):
        make_plan(declare(program), Snapshot("dev", "l", 1, {}, {}), FakeProviders(), targets=["x"])


def test_targeted_stack_outputs_read_the_resources_left_out_as_recorded() -> None:
    """As ``up --target`` records them: the target's predicted outputs, the recorded
    ones of resources left alone (even changed ones), unknown for those not recorded."""
    def program() -> None:
        a = Thing("a", label="new")
        kept = Thing("kept", label="changed")
        unborn = Thing("unborn")
        sw.export("a", a.label)
        sw.export("kept", kept.arn)
        sw.export("kept_id", kept.id)
        sw.export("unborn", unborn.arn)
        sw.export("label", kept.label)

    snapshot = Snapshot("dev", "l", 1, {r.urn: r for r in (record("a", label="old"), record("kept"))}, {})
    plan = make_plan(declare(program), snapshot, FakeProviders(), targets=["a"])
    assert ops(plan) == {"a": "update"}
    assert plan.outputs == {"a": "new", "kept": "arn:kept-id", "kept_id": "kept-id", "unborn": UNKNOWN,
                            "label": ""}


def test_a_target_may_be_a_short_name_when_it_names_one_resource() -> None:
    class Box(sw.Component, type="fake:Box"):
        def __init__(self, name: str) -> None:
            super().__init__(name)
            Thing("item", label=name)

    def program() -> None:
        a = Thing("a")
        Thing("b", ref=a.arn)
        Box("left")
        Box("right")

    def targeted(*targets: str) -> dict[str, str]:
        return ops(make_plan(declare(program), Snapshot("dev", "l", 1, {}, {}), FakeProviders(), targets=targets))

    assert targeted("b") == targeted("fake:Thing::b") == targeted("Thing::b") == {"a": "create", "b": "create"}
    assert targeted("left$item") == {"left$item": "create"}
    with pytest.raises(PlanError) as info:
        targeted("item")
    assert "names 2 resources" in info.value.message
    assert P + "left$item" in info.value.message and P + "right$item" in info.value.message


def test_cycle_through_a_component_is_named_in_order() -> None:
    class Group(sw.Component, type="test:Group"):
        def __init__(self, name: str, ref: Any) -> None:
            super().__init__(name)
            self.inner = Thing("inner", ref=ref)

    def program() -> None:
        group = Group("g", "")
        holder = Thing("holder", opts=sw.ResourceOptions(depends_on=[group]))
        Thing("late", ref=holder.arn, opts=sw.ResourceOptions(parent=group))

    with pytest.raises(GraphError) as info:
        plan_for(program)
    message = info.value.message
    assert message.startswith("dependency cycle: ")
    names = message.removeprefix("dependency cycle: ").split(" -> ")
    assert names[0] == names[-1] and set(names) == {"holder", "late"}


def test_plan_view_masks_secrets_and_is_stable() -> None:
    plan = plan_for(lambda: Thing("a", label=sw.secret("hunter2")))
    body = plan.view()
    assert "hunter2" not in str(body)
    assert body["summary"] == {"create": 1} and body["steps"][0]["op"] == "create"
    assert plan.digest() == plan_for(lambda: Thing("a", label=sw.secret("hunter2"))).digest()


def action_order(plan: Plan) -> list[str]:
    """The actions of a plan in an order apply may run them, as "C:name" / "D:name"."""
    graph = action_graph(plan)
    return [f"{kind}:{urn.removeprefix(P)}" for kind, urn in graph.topological_order()]


@pytest.mark.parametrize("dependent_dbr", [False, True])
def test_a_delete_first_replacement_deletes_its_replaced_dependents_first(dependent_dbr: bool) -> None:
    """The issue's chain: a cluster replaced delete-first, and the OIDC provider that uses
    it replaced as a consequence (its own provider would create it first)."""
    def program() -> None:
        cluster = Thing("cluster", zone="b", opts=sw.ResourceOptions(delete_before_replace=True))
        Thing("oidc", zone="b", ref=cluster.arn,
              opts=sw.ResourceOptions(delete_before_replace=dependent_dbr))

    plan = plan_for(program, record("cluster"), record("oidc", ref="arn:cluster-id", deps=[P + "cluster"]))
    assert ops(plan) == {"cluster": "replace", "oidc": "replace"}
    assert all(step.delete_before_replace for step in plan.steps)
    order = action_order(plan)
    assert order.index("D:oidc") < order.index("D:cluster") < order.index("C:cluster") < order.index("C:oidc")


def test_a_chain_of_delete_first_replacements_is_ordered_whole() -> None:
    def program() -> None:
        subnet = Thing("subnet", zone="b")
        cluster = Thing("cluster", zone="b", ref=subnet.arn, opts=sw.ResourceOptions(delete_before_replace=True))
        oidc = Thing("oidc", zone="b", ref=cluster.arn)
        Thing("role", label="r", ref=oidc.arn)

    plan = plan_for(program, record("subnet"), record("cluster", ref="arn:subnet-id", deps=[P + "subnet"]),
                    record("oidc", ref="arn:cluster-id", deps=[P + "cluster"]),
                    record("role", label="r", ref="arn:oidc-id", deps=[P + "oidc"]))
    assert ops(plan) == {"subnet": "replace", "cluster": "replace", "oidc": "replace", "role": "update"}
    dbr = {s.urn.removeprefix(P): s.delete_before_replace for s in plan.steps}
    assert dbr == {"subnet": False, "cluster": True, "oidc": True, "role": False}
    oidc = plan.steps[2]
    assert any("cluster, which is replaced delete-first" in note for note in oidc.notes)
    order = action_order(plan)
    assert order.index("C:subnet") < order.index("C:cluster")
    assert order.index("D:oidc") < order.index("D:cluster") < order.index("C:cluster")
    assert order.index("C:cluster") < order.index("C:oidc") < order.index("C:role")
    assert order.index("D:cluster") < order.index("D:subnet")


def test_a_create_first_replacement_deletes_dependents_after_their_new_halves() -> None:
    def program() -> None:
        a = Thing("a", zone="b")
        Thing("b", zone="b", ref=a.arn)

    plan = plan_for(program, record("a"), record("b", ref="arn:a-id", deps=[P + "a"]))
    assert not any(step.delete_before_replace for step in plan.steps)
    order = action_order(plan)
    assert order.index("C:a") < order.index("C:b") < order.index("D:b") < order.index("D:a")


def test_a_stateful_resource_replaced_as_a_side_effect_is_warned_about_everywhere() -> None:
    def program() -> None:
        subnet = Thing("subnet", zone="b")
        Thing("cluster", zone=subnet.arn)

    providers = FakeProviders()
    providers.thing.stateful = True  # type: ignore[misc]
    snapshot = Snapshot("dev", "lineage", 7, {r.urn: r for r in (
        record("subnet"), record("cluster", zone="arn:subnet-id", deps=[P + "subnet"]))}, {})
    plan = make_plan(declare(program), snapshot, providers)
    subnet, cluster = plan.steps
    assert ops(plan) == {"subnet": "replace", "cluster": "replace"}
    assert subnet.warnings == ()  # its own edit: the reviewer sees it in the diff
    assert len(cluster.warnings) == 1 and "replaced as a side effect: zone changes" in cluster.warnings[0]
    assert plan.to_json()["steps"][1]["warnings"] == list(cluster.warnings)
    assert "⚠️ **stateful fake:Thing is replaced as a side effect" in render_plan(plan)
    assert any("warning: stateful fake:Thing" in click.unstyle(line) for line in plan_lines(plan))


def test_a_stateless_or_directly_edited_replacement_is_not_warned_about() -> None:
    def program() -> None:
        subnet = Thing("subnet", zone="b")
        Thing("cluster", zone=subnet.arn)

    plan = plan_for(program, record("subnet"), record("cluster", zone="arn:subnet-id", deps=[P + "subnet"]))
    assert all(step.warnings == () for step in plan.steps)


def test_a_true_cycle_names_the_resources_and_what_forces_each_replacement() -> None:
    a = Step(urn=P + "a", type="fake:Thing", op=Op.REPLACE, replace_keys=("zone",), deps=(P + "b",), old_id="1")
    b = Step(urn=P + "b", type="fake:Thing", op=Op.REPLACE, replace_keys=("label",), deps=(P + "a",), old_id="2")
    plan = Plan(stack="dev", project="test", lineage="l", base_serial=1, steps=(a, b))
    with pytest.raises(PlanError) as info:
        action_graph(plan)
    message = info.value.message
    assert message.startswith("the plan's deletes and replacements cannot be ordered: create ")
    assert "a is replaced because zone changed" in message and "b is replaced because label changed" in message


# --- secretness through nested inputs ---------------------------------------------------


def nest(value: Any, shape: str) -> Any:
    """``value`` inside lists ("l") and dicts ("d"), outermost first."""
    for kind in reversed(shape):
        value = [value] if kind == "l" else {"k": value}
    return value


@pytest.mark.parametrize("shape", ["", "l", "d", "ll", "dl", "ld", "dd", "ldld", "dldld"])
def test_a_secret_stays_secret_at_any_depth_after_the_providers_check(shape: str) -> None:
    from stackwright.model.values import Secret, is_secret, masked, reveal
    from stackwright.plan.planner import _rewrap_secrets

    original = {"plain": "p", "value": nest(Secret("s3cret"), shape)}
    checked = _rewrap_secrets(original, {**reveal(original), "added": "default"})
    assert checked["value"] == original["value"] and is_secret(checked["value"])
    assert checked["plain"] == "p" and checked["added"] == "default"
    assert "s3cret" not in repr(masked(checked))


def test_a_secret_in_a_value_the_provider_reshaped_makes_the_whole_value_secret() -> None:
    from stackwright.model.values import Secret
    from stackwright.plan.planner import _rewrap_secrets

    original = {"tags": [{"k": Secret("s3cret")}], "names": ["a", Secret("b")]}
    checked = _rewrap_secrets(original, {"tags": {"k": "s3cret"}, "names": ["a", "b", "c"]})
    assert checked == {"tags": Secret({"k": "s3cret"}), "names": Secret(["a", "b", "c"])}


def test_nested_secrets_stay_secret_in_the_plan_of_a_real_provider() -> None:
    from stackwright.model.values import Secret, masked
    from stackwright.providers import local, random
    from stackwright.providers.registry import ProviderRegistry

    def program() -> None:
        password = random.Password("pw")
        local.Command("cmd", create="true", environment={"X": sw.secret("s3cret"), "Y": "plain"},
                      triggers=["t", password.result])
        sw.export("nested", {"a": [{"b": sw.secret("s3cret")}]})

    plan = make_plan(declare(program), Snapshot("dev", "lineage", 7, {}, {}), ProviderRegistry({}))
    [cmd] = [s for s in plan.steps if s.type == "local:Command"]
    assert cmd.inputs is not None
    assert cmd.inputs["environment"] == {"X": Secret("s3cret"), "Y": "plain"}
    assert "s3cret" not in repr(masked(cmd.inputs)) and "s3cret" not in str(plan.view())
    assert plan.outputs["nested"] == {"a": [{"b": Secret("s3cret")}]}


def test_a_cycle_entered_from_outside_names_only_the_resources_in_it() -> None:
    def program() -> None:
        first = Thing("first")
        loop_a = Thing("loop-a", ref=first.arn)
        loop_b = Thing("loop-b", ref=loop_a.arn)
        loop_a.dependencies.append(loop_b)  # what a depends_on on a later resource does

    with pytest.raises(GraphError) as info:
        plan_for(program)
    names = info.value.message.removeprefix("dependency cycle: ").split(" -> ")
    assert names[0] == names[-1] and sorted(names[:-1]) == ["loop-a", "loop-b"]


def test_a_resource_declared_before_what_it_depends_on_is_planned_after_it() -> None:
    class Group(sw.Component, type="test:Group"):
        pass

    def program() -> None:
        group = Group("g")
        Thing("user", opts=sw.ResourceOptions(depends_on=[group]))
        Thing("late", opts=sw.ResourceOptions(parent=group))

    order = [s.urn.rsplit("$", 1)[-1].removeprefix(P) for s in plan_for(program).steps]
    assert order == ["late", "user"]


def test_a_secret_deep_in_a_resolved_input_stays_secret_and_masked() -> None:
    def program() -> None:
        source = Thing("source", label=sw.secret("hunter2"))
        Thing("user", label=source.label.apply(lambda v: f"x-{v}"))

    plan = plan_for(program)
    user = next(s for s in plan.steps if s.urn == P + "user")
    assert isinstance(user.inputs["label"], Secret) and user.inputs["label"].value == "x-hunter2"
    assert "hunter2" not in str(plan.view())


def test_a_no_op_step_of_a_resource_with_an_output_input_is_same() -> None:
    def program() -> None:
        source = Thing("source", label="one")
        Thing("user", label=source.label)

    plan = plan_for(program, record("source", label="one"), record("user", label="one", deps=[P + "source"]))
    assert ops(plan) == {"source": "same", "user": "same"}
    assert not plan.has_changes


def test_a_provider_check_that_quotes_a_secret_value_shows_no_secret() -> None:
    """A provider checks revealed inputs and may quote the value it refuses (as a
    CloudFormation parameter outside its AllowedPattern is quoted): the plan error,
    its hint and what it chains to carry ``[secret]`` instead."""
    from stackwright.errors import InputError

    class Quoting(FakeProviders):
        def __init__(self) -> None:
            super().__init__()
            self.thing.check = self.refuse  # type: ignore[method-assign]

        @staticmethod
        def refuse(inputs: Any) -> dict[str, Any]:
            raise InputError(f"label {inputs['label']!r} does not fit", hint=f"not {inputs['label']}")

    def program() -> None:
        Thing("a", label=sw.secret("hunter2\nx"))

    with pytest.raises(InputError) as err:
        make_plan(declare(program), Snapshot("dev", "lineage", 7, {}, {}), Quoting())
    shown = str(err.value)
    assert "hunter2" not in shown and "hunter2" not in repr(err.value.args)
    assert "[secret]" in err.value.message and err.value.hint == "not [secret]"
    assert err.value.resource == P + "a" and err.value.__cause__ is None
