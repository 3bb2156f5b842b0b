"""How ``--target`` reads a component's short form (``kind:name``), and what
``destroy --target`` selects from the state alone."""

from __future__ import annotations

import pytest

from stackwright.errors import PlanError
from stackwright.operations.update import with_dependents
from stackwright.plan.planner import resolve_targets
from stackwright.state.records import ResourceState, Snapshot

BOX = "dev::p::fake:Box::{}"
THING = "dev::p::fake:Thing::{}"


def test_a_short_form_target_may_name_a_component_whose_name_holds_a_colon() -> None:
    urns = [THING.format("eu:west$item"), THING.format("east$item")]
    components = [BOX.format("eu:west"), BOX.format("east")]
    assert resolve_targets(["box:eu:west"], urns, components) == {THING.format("eu:west$item")}


def test_a_short_form_target_names_a_component_nested_deep_by_its_own_name() -> None:
    urns = [THING.format("rack$top$box$item"), THING.format("rack$top$other")]
    components = ["dev::p::fake:Rack::rack", "dev::p::fake:Shelf::rack$top", BOX.format("rack$top$box")]
    assert resolve_targets(["box:box"], urns, components) == {THING.format("rack$top$box$item")}


def test_a_target_with_a_double_colon_is_a_type_and_name_never_a_short_form() -> None:
    """``box::x`` is not ``kind:name`` for a Box named ``:x``: it names what ends in ``box::x``."""
    urns = [THING.format(":x$item")]
    with pytest.raises(PlanError, match="names no resource of this stack: box::x"):
        resolve_targets(["box::x"], urns, [BOX.format(":x")])


def test_a_short_form_target_may_name_a_component_whose_type_has_no_package() -> None:
    urns = [THING.format("acme$item"), THING.format("other$item")]
    components = ["dev::p::Tenant::acme", "dev::p::Tenant::other"]
    assert resolve_targets(["tenant:acme"], urns, components) == {THING.format("acme$item")}


def record(urn: str, parent: str | None = None, deps: tuple[str, ...] = ()) -> ResourceState:
    return ResourceState(urn=urn, type="fake:Thing", id=urn, inputs={}, outputs={}, parent=parent,
                         deps=list(deps))


def test_destroy_may_target_a_component_known_only_from_the_recorded_parents() -> None:
    inside, user, other = THING.format("left$item"), THING.format("user"), THING.format("other")
    rows = [record(inside, parent=BOX.format("left")), record(user, deps=(inside,)), record(other)]
    snapshot = Snapshot("dev", "l", 1, {r.urn: r for r in rows}, {})
    assert with_dependents(snapshot, ["box:left"]) == {inside, user}
