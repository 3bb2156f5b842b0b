"""A saved plan against the plan made when it is applied (``plan.compare`` through
``plan_file.check_same_plan``), when the saved plan left values unknown because the
stack it reads them from was not applied yet.

A value left unknown may be known now; every value the plan knew must come out the
same, and so must the steps, but for a change that turned out unneeded: a step the
plan changes only for values it left unknown, which came out as recorded, is left
unchanged and says so. A value known now never adds a replacement, and a refusal
names the stack and output read. Each case plans one program twice against the same
recorded state: once as the plan was saved, once as it is applied.
(tests/workflow/test_saved_plans_across_stacks.py runs the flow through the CLI.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

import stackwright as sw
from stackwright.errors import StackNotApplied
from stackwright.model import context
from stackwright.model.context import ConfigSource, ProgramContext
from stackwright.model.values import UNKNOWN, is_unknown
from stackwright.plan.compare import differences, reads_of
from stackwright.plan.plan import Op, Plan
from stackwright.plan.planner import make_plan
from stackwright.program.runner import desired_graph
from stackwright.providers.protocol import DiffResult
from stackwright.state.records import ResourceState, Snapshot
from stackwright.workflow.plan_file import PlanDiffers, check_same_plan
from unit.fakes import FakeProviders, Thing, ThingProvider

APP = "dev::test::fake:Thing::app"
RECORDED = {"label": "old", "zone": "a", "ref": ""}


class Cautious(ThingProvider):
    """``zone`` replaces the object, but only a zone it can compare: one not known yet
    is planned as an update (the plan does not show the replacement a known one forces)."""

    def diff(self, old_inputs: Mapping[str, Any], old_outputs: Mapping[str, Any],
             new_inputs: Mapping[str, Any]) -> DiffResult:
        result = super().diff(old_inputs, old_outputs, new_inputs)
        if is_unknown(new_inputs.get("zone")):
            return DiffResult(changed=result.changed, replaces=tuple(k for k in result.replaces if k != "zone"))
        return result


def program() -> None:
    base = sw.StackReference("base")
    Thing("app", label=base.output("label"), zone=base.output("zone"))
    sw.export("label", base.output("label"))


def planned(base: Mapping[str, Any] | None, provider: ThingProvider | None = None) -> tuple[Plan, Any]:
    """The plan of ``program`` and its graph, with ``base``'s recorded outputs (None: not applied)."""
    def read(name: str) -> Mapping[str, Any]:
        if base is None:
            raise StackNotApplied(f"{name} was never applied")
        return base

    ctx = ProgramContext(stack="dev", project="test", config=ConfigSource(data={}, file="stacks/dev.yaml"),
                         read_stack_outputs=read)
    with context.activate(ctx):
        program()
        ctx.finish()
    desired = desired_graph(ctx)
    snapshot = Snapshot("dev", "lineage", 3, {APP: ResourceState(
        urn=APP, type="fake:Thing", id="app-id", inputs=dict(RECORDED), outputs={"arn": "arn:app-id"})},
        {"label": "old"}, [])
    providers = FakeProviders()
    if provider is not None:
        providers.thing = provider
    return make_plan(desired, snapshot, providers), desired


def step(plan: Plan) -> Any:
    return next(s for s in plan.steps if s.urn == APP)


def test_values_the_plan_left_unknown_may_be_known_at_apply() -> None:
    saved, _ = planned(None, Cautious())
    assert step(saved).op is Op.UPDATE and step(saved).inputs["label"] is UNKNOWN
    assert saved.outputs["label"] is UNKNOWN
    now, desired = planned({"label": "new", "zone": "a"}, Cautious())
    assert differences(saved, now) == []
    assert check_same_plan(saved, now, reads_of(desired)) is saved, "the saved plan itself is applied"


def test_a_replacement_the_plan_did_not_show_is_refused_naming_the_stack_read() -> None:
    saved, _ = planned(None, Cautious())
    now, desired = planned({"label": "old", "zone": "b"}, Cautious())
    assert step(now).op is Op.REPLACE
    with pytest.raises(PlanDiffers) as caught:
        check_same_plan(saved, now, reads_of(desired))
    assert caught.value.message == (
        "applying would do something the plan did not say: it would now replace fake:Thing app (the plan "
        "says update): label, zone, left unknown by the plan, are known now (read from stack test/base "
        "output label, stack test/base output zone)")


def test_a_value_the_plan_knew_must_come_out_the_same_and_the_refusal_names_the_stack_read() -> None:
    saved, _ = planned({"label": "one", "zone": "a"})
    now, desired = planned({"label": "two", "zone": "a"})
    with pytest.raises(PlanDiffers) as caught:
        check_same_plan(saved, now, reads_of(desired))
    assert caught.value.message == (
        "applying would do something the plan did not say: fake:Thing app: inputs differ at label (read from "
        "stack test/base output label) (and 1 more difference(s))")
    assert differences(saved, now)[1] == "stack output label would now differ"


@pytest.mark.parametrize("provider", [Cautious(), ThingProvider()], ids=["update", "replace"])
def test_a_change_only_awaiting_values_that_came_out_as_recorded_is_left_unchanged(provider: ThingProvider) -> None:
    saved, _ = planned(None, provider)
    assert step(saved).op is (Op.UPDATE if isinstance(provider, Cautious) else Op.REPLACE)
    now, desired = planned({"label": "old", "zone": "a"}, provider)
    assert step(now).op is Op.SAME
    verb = "update" if isinstance(provider, Cautious) else "replace"
    assert differences(saved, now) == [
        f"it would now leave unchanged fake:Thing app (the plan says {verb}): label, zone, left unknown by the "
        "plan, are known now"], "a plan confirmed at a prompt gets no leeway"
    applied = check_same_plan(saved, now, reads_of(desired))
    assert step(applied).op is Op.SAME and not applied.has_changes
    assert step(applied).notes[-1] == (
        f"left unchanged, although the plan says {verb}: label, zone, left unknown by the plan, are known now "
        "(read from stack test/base output label, stack test/base output zone) and came out as recorded")
    assert dict(applied.outputs) == {"label": "old"}
