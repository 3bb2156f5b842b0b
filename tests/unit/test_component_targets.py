"""``--target`` naming a component selects every resource under it (pure, no I/O)."""

from __future__ import annotations

import pytest

from stackwright.errors import PlanError
from stackwright.plan.planner import make_plan, resolve_targets
from stackwright.state.records import ResourceState, Snapshot
from stackwright.testing import declare
from unit.fakes import FakeProviders, Thing

TENANT = "dev::p::stackwright:k8s:Tenant::{}"
URNS = [
    "dev::p::k8s:index:Provider::cluster",
    "dev::p::k8s:core/v1:Namespace::acme$namespace",
    "dev::p::k8s:apps/v1:Deployment::acme$acme$acme/acme-app",
    "dev::p::k8s:core/v1:Namespace::acmesoft$namespace",
    "dev::p::k8s:core/v1:Namespace::bobs$namespace",
    "dev::p::k8s:core/v1:ConfigMap::acme",
]
COMPONENTS = [TENANT.format("acme"), TENANT.format("acmesoft"), TENANT.format("bobs"),
              "dev::p::k8s:helm:Chart::acme$acme"]


@pytest.mark.parametrize(("target", "expected"), [
    ("tenant:acme", {URNS[1], URNS[2]}),
    ("Tenant::acme", {URNS[1], URNS[2]}),
    (TENANT.format("bobs"), {URNS[4]}),
    ("chart:acme", {URNS[2]}),
    ("acme", {URNS[5]}),  # a resource's own name wins over a component's
])
def test_a_component_target_selects_its_descendants_only(target: str, expected: set[str]) -> None:
    assert resolve_targets([target], URNS, COMPONENTS) == expected


def test_a_component_target_that_names_nothing_is_an_error() -> None:
    with pytest.raises(PlanError, match="tenant:nobody"):
        resolve_targets(["tenant:nobody"], URNS, COMPONENTS)


def _recorded(name: str, protect: bool = False) -> ResourceState:
    inputs = {"label": "", "zone": "a", "ref": ""}
    return ResourceState(urn=THING + name, type="fake:Thing", id=f"{name}-id", inputs=inputs,
                         outputs={**inputs, "arn": f"arn:{name}"}, protect=protect)


THING = "dev::test::fake:Thing::"


def test_a_targeted_plan_leaves_protected_resources_outside_the_targets_alone() -> None:
    snapshot = Snapshot("dev", "l", 1, {r.urn: r for r in (_recorded("a"), _recorded("kept", protect=True))}, {})

    plan = make_plan(declare(lambda: Thing("a")), snapshot, FakeProviders(), targets=[THING + "a"])

    assert {s.urn: s.op.value for s in plan.steps} == {THING + "a": "same"}
    with pytest.raises(PlanError, match="protected"):
        make_plan(declare(lambda: Thing("a")), snapshot, FakeProviders(), targets=[THING + "kept"])
