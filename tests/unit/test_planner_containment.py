"""Deleting an object that holds others (``ResourceProvider.containment``, as a
Kubernetes namespace holds what lives in it) deletes them with it: the planner refuses
a plan that keeps any of them, and otherwise deletes them first."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import pytest

import stackwright as sw

from stackwright.engine.apply import action_graph
from stackwright.errors import PlanError
from stackwright.plan.plan import Plan
from stackwright.plan.planner import make_plan
from stackwright.providers.protocol import Containment
from stackwright.state.records import ResourceState, Snapshot
from stackwright.testing import declare
from unit.fakes import FakeProviders, Thing, ThingProvider
from unit.test_planner import P, ops, record


class Boxes(ThingProvider):
    """A Thing labelled ``box:NAME`` holds the scope NAME; every Thing lives in the
    scope its ``zone`` names (a new zone replaces it)."""

    def containment(self, type_token: str, id: str | None, inputs: Mapping[str, Any],
                    outputs: Mapping[str, Any]) -> Containment:
        label = str(inputs.get("label", ""))
        holds = frozenset({label.removeprefix("box:")}) if label.startswith("box:") else frozenset()
        return Containment(holds=holds, within=frozenset({str(inputs.get("zone"))}))


def boxes() -> FakeProviders:
    providers = FakeProviders()
    providers.thing = Boxes()
    return providers


RECORDS = (record("shop", label="box:shop", zone="cluster"), record("db", zone="shop"),
           record("web", zone="shop", deps=[P + "db"]), record("other", zone="elsewhere"))


def plan_of(program: Callable[[], Any], *records: ResourceState, targets: tuple[str, ...] = ()) -> Plan:
    snapshot = Snapshot("dev", "lineage", 7, {r.urn: r for r in records}, {})
    return make_plan(declare(program), snapshot, boxes(), targets=targets)


def refusal(program: Callable[[], Any], *records: ResourceState, targets: tuple[str, ...] = ()) -> PlanError:
    with pytest.raises(PlanError) as caught:
        plan_of(program, *records, targets=targets)
    return caught.value


def test_deleting_a_holder_while_the_program_keeps_what_it_holds_is_refused() -> None:
    def program() -> None:
        db = Thing("db", zone="shop")
        Thing("web", zone="shop", opts=sw.ResourceOptions(depends_on=[db]))
        Thing("other", zone="elsewhere")

    err = refusal(program, *RECORDS)
    assert err.resource == P + "shop"
    assert err.message == ("the plan deletes it, which destroys what this stack keeps in it: "
                           "db (fake:Thing), web (fake:Thing)")
    assert err.hint is not None and "remove those from the program too" in err.hint and "or keep shop" in err.hint


def test_what_a_deleted_holder_holds_is_deleted_first_when_the_program_drops_it_too() -> None:
    def program() -> None:
        Thing("other", zone="elsewhere")

    # web was recorded without a dependency on shop: the holder's delete still waits for it.
    plan = plan_of(program, *RECORDS)
    assert ops(plan) == {"other": "same", "shop": "delete", "db": "delete", "web": "delete"}
    waits = set(action_graph(plan).deps[("D", P + "shop")])
    assert {("D", P + "db"), ("D", P + "web")} <= waits, waits


def test_a_protected_resource_a_delete_takes_with_it_stops_the_plan() -> None:
    def program() -> None:
        Thing("other", zone="elsewhere")

    protected = replace(RECORDS[1], protect=True)
    err = refusal(program, RECORDS[0], protected, RECORDS[2], RECORDS[3])
    assert err.resource == P + "db" and "protected" in err.message


def test_a_resource_retained_on_delete_would_still_be_destroyed_with_its_holder() -> None:
    def program() -> None:
        Thing("other", zone="elsewhere")

    retained = replace(RECORDS[1], retain_on_delete=True)
    err = refusal(program, RECORDS[0], retained, RECORDS[2], RECORDS[3])
    assert err.resource == P + "shop" and err.message.endswith("keeps in it: db (fake:Thing)")


def test_a_resource_replaced_into_another_scope_leaves_its_old_holder_free_to_go() -> None:
    def program() -> None:
        Thing("db", zone="warehouse")
        Thing("web", zone="warehouse")
        Thing("other", zone="elsewhere")

    plan = plan_of(program, *RECORDS)
    assert ops(plan) == {"db": "replace", "web": "replace", "other": "same", "shop": "delete"}


def test_replacing_a_holder_destroys_what_it_holds_too() -> None:
    def program() -> None:
        Thing("shop", label="box:shop", zone="cluster-2")
        Thing("db", zone="shop")
        Thing("web", zone="shop")
        Thing("other", zone="elsewhere")

    err = refusal(program, *RECORDS)
    assert err.resource == P + "shop"
    assert err.message.startswith("the plan replaces it, and deleting the old one destroys what this stack keeps")


def test_a_target_that_deletes_a_holder_must_name_what_it_holds() -> None:
    def program() -> None:
        Thing("other", zone="elsewhere")

    err = refusal(program, *RECORDS, targets=("shop",))
    assert "db (fake:Thing), web (fake:Thing)" in err.message
    assert err.hint is not None and "with --target, name them too" in err.hint
    plan = plan_of(program, *RECORDS, targets=("shop", "db", "web"))
    assert ops(plan) == {"shop": "delete", "db": "delete", "web": "delete"}


def test_nothing_is_asked_of_a_provider_without_containment() -> None:
    def program() -> None:
        Thing("other", zone="elsewhere")

    snapshot = Snapshot("dev", "lineage", 7, {r.urn: r for r in RECORDS}, {})
    plan = make_plan(declare(program), snapshot, FakeProviders())
    assert ops(plan) == {"other": "same", "shop": "delete", "db": "delete", "web": "delete"}
