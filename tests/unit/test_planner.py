"""The planner as a table: desired program + recorded state → expected steps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import stackwright as sw
from stackwright.errors import GraphError, PlanError
from stackwright.model.values import UNKNOWN
from stackwright.plan.plan import Plan
from stackwright.plan.planner import make_plan
from stackwright.state.records import ResourceState, Snapshot
from stackwright.testing import declare
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
