"""The planner's refusals as a user reads them: a dependency cycle (with the imports of
exported names that close it), and a protected resource a change would replace."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

import stackwright as sw
from stackwright.errors import GraphError, PlanError
from stackwright.plan.planner import make_plan
from stackwright.providers.protocol import Links
from stackwright.state.records import Snapshot
from stackwright.testing import declare
from unit.fakes import FakeProviders, Thing, ThingProvider
from unit.test_planner import P, plan_for, record

HERE = Path(__file__).name


def line_of(marker: str) -> int:
    """The line of this file holding ``marker``."""
    lines = Path(__file__).read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if marker in text and "line_of" not in text)


class LinkingThings(ThingProvider):
    """A Thing exports the names in its label and imports the names in its ref."""

    def links(self, inputs: Mapping[str, Any]) -> Links:
        return Links(exports=frozenset(inputs["label"].split()), imports=frozenset(inputs["ref"].split()))


def cycle_of(program: Callable[[], Any], providers: FakeProviders | None = None) -> GraphError:
    with pytest.raises(GraphError) as info:
        make_plan(declare(program), Snapshot("dev", "l", 1, {}, {}), providers or FakeProviders())
    return info.value


def linking() -> FakeProviders:
    providers = FakeProviders()
    providers.thing = LinkingThings()
    return providers


def test_a_cycle_of_imports_names_each_import_and_where_its_first_resource_is_declared() -> None:
    def program() -> None:
        Thing("a", label="from-a", ref="from-b")  # first-in-import-cycle
        Thing("b", label="from-b", ref="from-a")

    err = cycle_of(program, linking())
    assert err.message == ("dependency cycle: a -> b -> a (a imports 'from-b' exported by b; "
                           "b imports 'from-a' exported by a)")
    assert err.file is not None and err.file.endswith(HERE) and err.line == line_of("# first-in-import-cycle")
    assert err.hint == "remove one of these dependencies (depends_on, an Output passed as input, or one of the imports)"


def test_a_cycle_closed_by_one_import_explains_only_that_edge() -> None:
    def program() -> None:
        a = Thing("a", ref="from-b")
        Thing("b", label="from-b", zone=a.arn)

    err = cycle_of(program, linking())
    assert err.message == "dependency cycle: a -> b -> a (a imports 'from-b' exported by b)"


def test_a_cycle_without_imports_says_where_its_first_resource_is_declared() -> None:
    def program() -> None:
        first = Thing("first")
        loop_a = Thing("loop-a", ref=first.arn)  # first-in-plain-cycle
        loop_b = Thing("loop-b", ref=loop_a.arn)
        loop_a.dependencies.append(loop_b)

    err = cycle_of(program)
    assert err.message == "dependency cycle: loop-a -> loop-b -> loop-a"
    assert err.file is not None and err.file.endswith(HERE) and err.line == line_of("# first-in-plain-cycle")
    assert err.hint == "remove one of these dependencies (depends_on, an Output passed as input)"


def test_a_protected_replacement_forced_by_several_properties_names_them_all() -> None:
    providers = FakeProviders()
    providers.thing.replace_on = frozenset({"zone", "label"})  # type: ignore[misc]
    snapshot = Snapshot("dev", "l", 1, {P + "a": record("a", protect=True)}, {})
    with pytest.raises(PlanError) as info:
        make_plan(declare(lambda: Thing("a", label="new", zone="b")), snapshot, providers)
    assert info.value.message == "resource is protected; the plan would replace it (because label, zone changed)"


def test_a_protected_replacement_says_where_the_resource_is_declared() -> None:
    with pytest.raises(PlanError) as info:
        plan_for(lambda: Thing("a", zone="b", opts=sw.ResourceOptions(protect=True)),  # declared-protected
                 record("a"))
    assert info.value.file is not None and info.value.file.endswith(HERE)
    assert info.value.line == line_of("# declared-protected")
