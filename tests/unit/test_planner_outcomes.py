"""What a user reads in a plan or a refusal: the error messages, hints and locations the
planner gives, data lookups planned and applied, and what ``--target`` leaves out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import stackwright as sw
from stackwright.errors import PlanError
from stackwright.model.values import UNKNOWN
from stackwright.plan.planner import make_plan
from stackwright.state.records import Snapshot
from stackwright.testing import declare
from unit.fakes import FakeProviders, Thing
from unit.test_engine import P, Harness, h  # noqa: F401 - the fixture
from unit.test_planner import ops, plan_for, record

HERE = Path(__file__).name


def line_of(marker: str) -> int:
    """The line of this file holding ``marker`` (a declaration the test refers to)."""
    lines = Path(__file__).read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if marker in text and "line_of" not in text)


def test_a_protected_replacement_names_the_resource_its_line_the_cause_and_the_way_out() -> None:
    with pytest.raises(PlanError) as info:
        plan_for(lambda: Thing("a", zone="b", opts=sw.ResourceOptions(protect=True)),  # protected-replace
                 record("a"))
    err = info.value
    assert err.message == "resource is protected; the plan would replace it (because zone changed)"
    assert err.resource == P + "a"
    assert err.file is not None and err.file.endswith(HERE) and err.line == line_of("# protected-replace")
    assert err.hint == "set protect=False and run `up` first if you really mean to replace it, or undo the change"


def test_a_replacement_of_a_resource_protected_in_the_record_is_refused() -> None:
    with pytest.raises(PlanError, match="would replace it"):
        plan_for(lambda: Thing("a", zone="b"), record("a", protect=True))


def test_a_protected_delete_says_how_to_delete_it() -> None:
    with pytest.raises(PlanError) as info:
        plan_for(lambda: None, record("a", protect=True))
    err = info.value
    assert err.message == "resource is protected; the plan would delete it"
    assert (err.resource, err.file, err.line) == (P + "a", None, None)
    assert err.hint == "set protect=False and run `up` first if you really mean to delete it, or undo the change"


def test_an_imported_resource_the_program_does_not_declare_says_to_add_its_code() -> None:
    imported = record("a", protect=True)
    imported.external = True
    with pytest.raises(PlanError) as info:
        plan_for(lambda: None, imported)
    assert info.value.hint == ("it was imported and the program does not declare it yet: add the code `import` "
                               f"printed; `stackwright state rm --force {P}a` forgets it instead")


def _destroy_refusal(*records: Any) -> PlanError:
    """What `destroy` (the empty program, planned as a destroy) is told."""
    snapshot = Snapshot("dev", "lineage", 7, {r.urn: r for r in records}, {})
    with pytest.raises(PlanError) as info:
        make_plan(declare(lambda: None), snapshot, FakeProviders(), kind="destroy")
    return info.value


def test_a_destroy_of_a_protected_resource_says_how_to_lift_protection_not_to_undo_a_change() -> None:
    err = _destroy_refusal(record("a", protect=True))
    assert err.message == "resource is protected; the plan would delete it"
    assert err.hint == ("`destroy` never deletes a protected resource: remove protect=True from the program and "
                        "run `stackwright up` first (it records only the option), then destroy; or destroy the "
                        "others with `stackwright destroy --target NAME`")
    imported = record("b", protect=True)
    imported.external = True
    assert _destroy_refusal(imported).hint == (
        "it was imported, and stays protected until the program declares it: declare it without protect=True "
        f"and run `stackwright up` first, or forget it (the object stays) with `stackwright state rm --force {P}b`")


def test_a_destroy_plan_says_it_is_one() -> None:
    snapshot = Snapshot("dev", "lineage", 7, {P + "a": record("a")}, {})
    assert make_plan(declare(lambda: None), snapshot, FakeProviders(), kind="destroy").kind == "destroy"


def test_every_protected_resource_is_named_in_one_refusal() -> None:
    with pytest.raises(PlanError) as info:
        plan_for(lambda: None, record("a", protect=True), record("b", protect=True), record("c", protect=True))
    err = info.value
    assert err.message == (f"{P}a: resource is protected; the plan would delete it; and 2 more: "
                           f"{P}b: resource is protected; the plan would delete it; "
                           f"{P}c: resource is protected; the plan would delete it")
    assert err.hint is not None and "mean to delete it" in err.hint


def test_a_kept_value_is_shown_with_its_keys_in_order_and_a_long_one_shortened() -> None:
    kept = {"z": "1", "a": "2"}
    plan = plan_for(lambda: Thing("a", label="v" * 80, opts=sw.ResourceOptions(ignore_changes=["label"])),
                    record("a", label=kept))
    shown = '"' + "v" * 56 + "..."
    assert len(shown) == 60
    assert plan.steps[0].notes == (f'label: kept at {{"a": "2", "z": "1"}}, not set to the declared {shown}: '
                                   "ignore_changes lists it",)


def test_a_value_of_exactly_sixty_characters_is_shown_whole() -> None:
    kept = "k" * 58
    plan = plan_for(lambda: Thing("a", label="new", opts=sw.ResourceOptions(ignore_changes=["label"])),
                    record("a", label=kept))
    assert plan.steps[0].notes == (f'label: kept at "{kept}", not set to the declared "new": ignore_changes lists it',)


# --- data lookups (Resource.get) -----------------------------------------------------------


def test_a_lookup_by_an_id_another_resource_records_is_planned_with_that_id() -> None:
    def program() -> None:
        a = Thing("a", label="given-1")
        given = Thing.get("given", a.label)
        Thing("user", label=given.id)

    plan = plan_for(program, record("a", label="given-1"))
    assert ops(plan) == {"a": "same", "given": "read", "user": "create"}
    steps = {s.urn.removeprefix(P): s for s in plan.steps}
    assert steps["given"].inputs == {"id": "given-1"}
    assert steps["user"].inputs is not None and steps["user"].inputs["label"] == "given-1"


def test_a_lookup_recorded_already_is_the_same_and_its_id_is_known_downstream() -> None:
    def program() -> None:
        given = Thing.get("given", "given-1")
        Thing("user", label=given.id)

    recorded = record("given", id="given-1")
    plan = plan_for(program, recorded, record("user", label="given-1", deps=[P + "given"]))
    assert ops(plan) == {"given": "same", "user": "same"} and not plan.has_changes


def test_a_lookup_applies_again_and_again_without_a_failure_and_keeps_its_parent(h: Harness) -> None:
    class Box(sw.Component, type="fake:Box"):
        def __init__(self, name: str) -> None:
            super().__init__(name)
            Thing.get("given", "given-1", opts=sw.ResourceOptions(parent=self))

    h.providers.thing.objects["given-1"] = {"label": "shared", "zone": "a", "ref": ""}
    assert h.up(lambda: Box("box")).ok
    again = h.up(lambda: Box("box"))
    assert again.ok and again.done == {}
    [row] = h.store.snapshot("dev").resources.values()
    assert row.parent == "dev::test::fake:Box::box" and row.retain_on_delete and row.deps == []
    assert h.up(lambda: None).ok and "given-1" in h.providers.thing.objects


def test_a_lookup_of_a_missing_object_fails_where_it_is_declared(h: Harness) -> None:
    result = h.up(lambda: Thing.get("given", "nope"))  # missing-lookup
    [failure] = result.failures
    assert failure.message == f"{Path(__file__)}:{line_of('# missing-lookup')}: no fake:Thing with id 'nope' exists"


# --- --target ------------------------------------------------------------------------------


def test_a_target_leaves_out_the_deletes_of_other_resources() -> None:
    def program() -> None:
        a = Thing("a")
        Thing("b", ref=a.arn)
        Thing("c")

    snapshot = Snapshot("dev", "l", 1, {r.urn: r for r in (record("gone"), record("c"))}, {})
    plan = make_plan(declare(program), snapshot, FakeProviders(), targets=["b"])
    assert ops(plan) == {"a": "create", "b": "create"}
    plan = make_plan(declare(program), snapshot, FakeProviders(), targets=["gone"])
    assert ops(plan) == {"gone": "delete"}


def test_a_target_may_name_a_component_the_program_declares() -> None:
    class Box(sw.Component, type="fake:Box"):
        def __init__(self, name: str) -> None:
            super().__init__(name)
            Thing("item", label=name)

    def program() -> None:
        Box("left")
        Box("right")
        Thing("other")

    for target in ("box:left", "fake:Box::left"):
        plan = make_plan(declare(program), Snapshot("dev", "l", 1, {}, {}), FakeProviders(), targets=[target])
        assert ops(plan) == {"left$item": "create"}, target


def test_targets_that_name_nothing_are_listed_with_the_way_to_find_urns() -> None:
    with pytest.raises(PlanError) as info:
        make_plan(declare(lambda: Thing("a")), Snapshot("dev", "l", 1, {}, {}), FakeProviders(),
                  targets=["zz", "yy"])
    assert info.value.message == "--target names no resource of this stack: yy, zz"
    assert info.value.hint == "`stackwright state ls` or `stackwright preview` lists the URNs"


def test_an_ambiguous_target_lists_what_it_names_and_how_to_say_more() -> None:
    class Box(sw.Component, type="fake:Box"):
        def __init__(self, name: str) -> None:
            super().__init__(name)
            Thing("item")

    def program() -> None:
        Box("left")
        Box("right")

    with pytest.raises(PlanError) as info:
        make_plan(declare(program), Snapshot("dev", "l", 1, {}, {}), FakeProviders(), targets=["item"])
    assert info.value.message == f"--target 'item' names 2 resources: {P}left$item, {P}right$item"
    assert info.value.hint == "give more of the URN (type::name, parent$name) or the whole URN"


def test_an_ambiguous_component_target_is_refused() -> None:
    class Box(sw.Component, type="fake:Box"):
        def __init__(self, name: str, **kwargs: Any) -> None:
            super().__init__(name, **kwargs)
            Thing("item")

    class Shelf(sw.Component, type="fake:Shelf"):
        def __init__(self, name: str) -> None:
            super().__init__(name)
            Box("box", opts=sw.ResourceOptions(parent=self))

    def program() -> None:
        Shelf("top")
        Shelf("bottom")

    with pytest.raises(PlanError) as info:
        make_plan(declare(program), Snapshot("dev", "l", 1, {}, {}), FakeProviders(), targets=["box:box"])
    assert info.value.message.startswith("--target 'box:box' names 2 resources: ")


# --- options changed without an input change -----------------------------------------------


def test_changed_options_are_listed_old_and_new_and_recorded_without_a_provider_call(h: Harness) -> None:
    class Box(sw.Component, type="fake:Box"):
        pass

    def before() -> None:
        Thing("dep")
        Thing("a", label="x", opts=sw.ResourceOptions(protect=True))

    def after() -> None:
        box = Box("box")
        dep = Thing("dep")
        Thing("a", label="x", opts=sw.ResourceOptions(
            parent=box, depends_on=[dep], retain_on_delete=True, ignore_changes=["zone"],
            aliases=[sw.Alias(no_parent=True)]))

    assert h.up(before).ok
    plan = make_plan(declare(after), h.store.snapshot("dev"), h.providers)
    step = next(s for s in plan.steps if s.urn.endswith("$a"))
    assert step.op.value == "same" and step.meta_changed and step.previous_urn == P + "a"
    assert [(d.path, d.kind, d.old, d.new) for d in step.option_diffs] == [
        ("parent", "update", None, "dev::test::fake:Box::box"),
        ("dependencies", "update", [], [P + "dep"]),
        ("protect", "update", True, False),
        ("retain_on_delete", "update", False, True),
        ("ignore_changes", "update", [], ["zone"]),
        ("aliases", "update", [], [P + "a"]),
    ]
    h.providers.thing.calls.clear()
    assert h.up(after).ok and sum(h.providers.thing.calls.values()) == 0
    row = h.store.snapshot("dev").resources["dev::test::fake:Thing::box$a"]
    assert (row.parent, row.deps, row.protect, row.retain_on_delete) == (
        "dev::test::fake:Box::box", [P + "dep"], False, True)
    assert row.options == {"ignore_changes": ["zone"], "aliases": [P + "a"]}
    again = make_plan(declare(after), h.store.snapshot("dev"), h.providers)
    assert not again.has_changes and all(not s.option_diffs for s in again.steps)


def test_a_dependency_renamed_through_an_alias_is_no_option_change(h: Harness) -> None:
    def before() -> None:
        old = Thing("old")
        Thing("user", ref=old.label, opts=sw.ResourceOptions(depends_on=[old]))

    def after() -> None:
        new = Thing("new", opts=sw.ResourceOptions(aliases=[sw.Alias(name="old")]))
        Thing("user", ref=new.label, opts=sw.ResourceOptions(depends_on=[new]))

    assert h.up(before).ok
    plan = make_plan(declare(after), h.store.snapshot("dev"), h.providers)
    user = next(s for s in plan.steps if s.urn == P + "user")
    assert user.option_diffs == () and not user.meta_changed


# --- order ---------------------------------------------------------------------------------


def test_a_resource_that_depends_on_a_component_comes_after_the_component_s_children(h: Harness) -> None:
    """``depends_on`` a component waits for what is declared under it, even when that is
    declared after the resource."""
    class Box(sw.Component, type="fake:Box"):
        pass

    def program() -> None:
        box = Box("box")
        Thing("early", opts=sw.ResourceOptions(depends_on=[box]))
        inner = Thing("inner", opts=sw.ResourceOptions(parent=box))
        Thing("deeper", ref=inner.arn, opts=sw.ResourceOptions(parent=box))
        Thing("last")

    plan = plan_for(program)
    assert [s.urn.removeprefix(P).removeprefix("dev::test::fake:Thing::") for s in plan.steps] == [
        "box$inner", "box$deeper", "early", "last"]
    assert h.up(program).ok
    assert [name for _, name in h.providers.thing.log].index("early") > 1


# --- leftovers -------------------------------------------------------------------------------


def test_only_pending_deletes_of_objects_the_record_no_longer_names_are_leftovers() -> None:
    from stackwright.plan.planner import leftovers
    from stackwright.state.records import PendingOperation

    def op(token: str, kind: str, urn: str, rid: str | None) -> PendingOperation:
        return PendingOperation(token=token, urn=P + urn, type="fake:Thing", op=kind, inputs={}, resource_id=rid)

    rows = {r.urn: r for r in (record("a", id="a-new"), record("b", id="b-1"))}
    pending = [op("old-a", "delete", "a", "a-old"), op("del-b", "delete", "b", "b-1"),
               op("gone", "delete", "c", "c-1"), op("create", "create", "d", None),
               op("update", "update", "a", "a-old"), op("no-id", "delete", "e", None)]
    found = leftovers(Snapshot("dev", "l", 1, rows, {}, pending=pending))
    assert [(o.token, o.urn, o.id) for o in found] == [("old-a", P + "a", "a-old"), ("gone", P + "c", "c-1")]


def test_a_provider_check_error_names_the_resource_and_its_line() -> None:
    from stackwright.errors import InputError

    providers = FakeProviders()

    def check(inputs: Any) -> dict[str, Any]:
        raise InputError("label: too long")

    providers.thing.check = check  # type: ignore[method-assign]
    with pytest.raises(InputError) as info:
        make_plan(declare(lambda: Thing("a", label="x")), Snapshot("dev", "l", 1, {}, {}), providers)  # bad-check
    err = info.value
    assert (err.resource, err.line) == (P + "a", line_of("# bad-check"))
    assert err.file is not None and err.file.endswith(HERE)


def test_a_rollback_that_would_replace_a_protected_resource_is_refused_without_a_place() -> None:
    """A rollback rebuilds its resources from a checkpoint: they are declared in no file."""
    from stackwright.model.desired import DesiredGraph
    from stackwright.model.resource import restore

    back = restore(Thing, P + "a", {"label": "", "zone": "b", "ref": ""}, parent_urn=None, protect=True)
    desired = DesiredGraph(stack="dev", project="test", resources={back.urn: back}, deps={back.urn: []})
    with pytest.raises(PlanError) as info:
        make_plan(desired, Snapshot("dev", "l", 1, {P + "a": record("a")}, {}), FakeProviders())
    err = info.value
    assert err.message == "resource is protected; the plan would replace it (because zone changed)"
    assert (err.resource, err.file, err.line) == (P + "a", None, None)


def test_a_lookup_of_another_object_shows_what_was_read_before_and_waits_for_what_it_used() -> None:
    """The lookup read ``given-1`` through ``a``'s label; now it reads ``given-2`` and ``a``
    goes: the plan shows the recorded object, and ``a`` is deleted only after the new read."""
    from stackwright.engine.apply import action_graph

    def before() -> None:
        a = Thing("a", label="given-1")
        Thing.get("given", a.label)

    def after() -> None:
        Thing.get("given", "given-2")

    recorded = record("given", id="given-1", deps=[P + "a"])
    plan = plan_for(after, record("a", label="given-1"), recorded)
    assert ops(plan) == {"given": "read", "a": "delete"}
    given = plan.steps[0]
    assert given.to_json()["old_inputs"] == recorded.inputs and given.old_id == "given-1"
    assert given.deps == () and ("C", P + "given") in action_graph(plan).deps[("D", P + "a")]
    first = plan_for(before, record("a", label="given-1"))
    assert [s.deps for s in first.steps] == [(), (P + "a",)]


def test_ignore_changes_on_a_nested_path_keeps_the_whole_top_level_value() -> None:
    plan = plan_for(lambda: Thing("a", label="new", opts=sw.ResourceOptions(ignore_changes=["label.a.b"])),
                    record("a", label="old"))
    assert ops(plan) == {"a": "same"}
    assert plan.steps[0].notes == ('label: kept at "old", not set to the declared "new": ignore_changes lists it',)


def test_an_ignored_value_not_known_until_apply_is_kept_without_a_note() -> None:
    def program() -> None:
        source = Thing("source")
        Thing("a", label=source.arn, opts=sw.ResourceOptions(ignore_changes=["label"]))

    plan = plan_for(program, record("a", label="old"))
    step = next(s for s in plan.steps if s.urn == P + "a")
    assert step.op.value == "same" and step.inputs is not None and step.inputs["label"] == "old"
    assert step.notes == ()


def test_a_value_of_sixty_one_characters_is_shortened() -> None:
    kept = "k" * 59
    plan = plan_for(lambda: Thing("a", label="new", opts=sw.ResourceOptions(ignore_changes=["label"])),
                    record("a", label=kept))
    assert plan.steps[0].notes == (f'label: kept at "{"k" * 56}..., not set to the declared "new": '
                                   "ignore_changes lists it",)


@pytest.mark.parametrize(("field", "was", "listed"), [
    ("parent", "dev::test::fake:Box::gone", ("parent", "dev::test::fake:Box::gone", None)),
    ("protect", True, ("protect", True, False)),
    ("retain_on_delete", True, ("retain_on_delete", True, False)),
    ("options", {"ignore_changes": ["zone"]}, ("ignore_changes", ["zone"], [])),
    ("deps", [P + "dep"], ("dependencies", [P + "dep"], [])),
])
def test_one_option_changed_alone_is_listed(field: str, was: Any, listed: tuple[str, Any, Any]) -> None:
    from dataclasses import replace

    plan = plan_for(lambda: Thing("a"), replace(record("a"), **{field: was}))
    [step] = plan.steps
    assert step.op.value == "same" and step.meta_changed
    assert [(d.path, d.old, d.new) for d in step.option_diffs] == [listed]


def test_a_changed_option_is_listed_alone_beside_a_parent_dependencies_and_options_kept(h: Harness) -> None:
    class Box(sw.Component, type="fake:Box"):
        pass

    def program(protect: bool) -> None:
        box = Box("box")
        dep = Thing("dep")
        Thing("a", opts=sw.ResourceOptions(parent=box, depends_on=[dep], ignore_changes=["zone"], protect=protect))

    assert h.up(lambda: program(False)).ok
    plan = make_plan(declare(lambda: program(True)), h.store.snapshot("dev"), h.providers)
    step = next(s for s in plan.steps if s.urn.endswith("$a"))
    assert [(d.path, d.old, d.new) for d in step.option_diffs] == [("protect", False, True)]


def test_a_parent_renamed_through_an_alias_is_no_option_change(h: Harness) -> None:
    def program(parent: str) -> None:
        holder = Thing(parent, opts=sw.ResourceOptions(aliases=[sw.Alias(name="old")] if parent != "old" else []))
        Thing("child", opts=sw.ResourceOptions(parent=holder))

    assert h.up(lambda: program("old")).ok
    plan = make_plan(declare(lambda: program("new")), h.store.snapshot("dev"), h.providers)
    child = next(s for s in plan.steps if s.urn.endswith("$child"))
    assert child.previous_urn == P + "old$child"
    assert [d.path for d in child.option_diffs] == ["aliases"]


def test_each_failure_names_the_line_its_own_resource_is_declared_on(h: Harness) -> None:
    h.providers.thing.fail.update({"first": -1, "second": -1})

    def program() -> None:
        Thing("first")  # first-failing
        Thing("second")  # second-failing

    result = h.up(program)
    where = {f.urn.removeprefix(P): f.message for f in result.failures}
    assert where == {"first": f"{Path(__file__)}:{line_of('# first-failing')}: first is broken",
                     "second": f"{Path(__file__)}:{line_of('# second-failing')}: second is broken"}


def test_an_export_of_a_resource_a_target_leaves_out_is_unknown() -> None:
    def program() -> None:
        Thing("a")
        other = Thing("other")
        sw.export("other_arn", other.arn)

    plan = make_plan(declare(program), Snapshot("dev", "l", 1, {}, {}), FakeProviders(), targets=["a"])
    assert ops(plan) == {"a": "create"} and plan.outputs == {"other_arn": UNKNOWN}


def test_a_stateful_resource_replaced_through_several_properties_names_each_once() -> None:
    def program() -> None:
        subnet = Thing("subnet", zone="b")
        Thing("cluster", label=subnet.arn, zone=[["x", subnet.arn]])  # type: ignore[arg-type]

    providers = FakeProviders()
    providers.thing.stateful = True  # type: ignore[misc]
    providers.thing.replace_on = frozenset({"zone", "label"})  # type: ignore[misc]
    cluster = record("cluster", label="arn:subnet-id", zone=[["x", "arn:subnet-id"]], deps=[P + "subnet"])
    snapshot = Snapshot("dev", "l", 7, {r.urn: r for r in (record("subnet"), cluster)}, {})
    plan = make_plan(declare(program), snapshot, providers)
    assert ops(plan) == {"subnet": "replace", "cluster": "replace"}
    assert [d.path for d in plan.steps[1].diffs] == ["label", "zone[0][1]"]
    assert plan.steps[1].warnings == (
        "stateful fake:Thing is replaced as a side effect: label, zone changes only because a resource it "
        "uses is replaced or created; its data is lost unless kept elsewhere",)


def test_a_provider_decides_from_the_recorded_inputs_and_outputs_with_secrets_revealed() -> None:
    from stackwright.model.values import Secret
    from stackwright.providers.protocol import DiffResult

    providers = FakeProviders()
    seen: list[tuple[Any, Any, Any]] = []

    def diff(old_inputs: Any, old_outputs: Any, new_inputs: Any) -> DiffResult:
        seen.append((old_inputs, old_outputs, new_inputs))
        return DiffResult(changed=("label",))

    providers.thing.diff = diff  # type: ignore[method-assign]
    old = record("a", label=Secret("old-pw"))
    plan = make_plan(declare(lambda: Thing("a", label=sw.secret("new-pw"))),
                     Snapshot("dev", "l", 1, {old.urn: old}, {}), providers)
    assert ops(plan) == {"a": "update"}
    [(old_inputs, old_outputs, new_inputs)] = seen
    assert old_inputs["label"] == "old-pw" and new_inputs["label"] == "new-pw"
    assert old_outputs == {"label": "old-pw", "zone": "a", "ref": "", "arn": "arn:a-id"}


def test_a_provider_checks_secret_inputs_as_plain_values_and_what_it_returns_stays_secret() -> None:
    from stackwright.model.values import Secret

    providers = FakeProviders()
    providers.thing.check = lambda inputs: {**inputs, "label": inputs["label"].upper()}  # type: ignore[method-assign]
    plan = make_plan(declare(lambda: Thing("a", label=sw.secret("pw"))), Snapshot("dev", "l", 1, {}, {}), providers)
    assert plan.steps[0].inputs is not None and plan.steps[0].inputs["label"] == Secret("PW")


def test_what_dependents_know_of_an_unchanged_or_updated_resource() -> None:
    """Its id and the outputs an update keeps are known; an output the provider computes
    again on update is not."""
    def program(label: str) -> None:
        a = Thing("a", label=label)
        Thing("by-id", label=a.id)
        Thing("by-arn", label=a.arn)
        Thing("by-label", label=a.label)

    recorded = [record("a", label="x"), record("by-id", label="a-id", deps=[P + "a"]),
                record("by-arn", label="arn:a-id", deps=[P + "a"]), record("by-label", label="x", deps=[P + "a"])]
    unchanged = plan_for(lambda: program("x"), *recorded)
    assert ops(unchanged) == {"a": "same", "by-id": "same", "by-arn": "same", "by-label": "same"}
    updated = plan_for(lambda: program("y"), *recorded)
    assert ops(updated) == {"a": "update", "by-id": "same", "by-arn": "same", "by-label": "update"}
    providers = FakeProviders()
    providers.thing.computed_on_update = frozenset({"arn"})  # type: ignore[misc]
    snapshot = Snapshot("dev", "l", 1, {r.urn: r for r in recorded}, {})
    recomputed = make_plan(declare(lambda: program("y")), snapshot, providers)
    by_arn = next(s for s in recomputed.steps if s.urn == P + "by-arn")
    assert by_arn.op.value == "update" and by_arn.inputs is not None and by_arn.inputs["label"] is UNKNOWN


def test_options_as_recorded_are_no_change() -> None:
    from dataclasses import replace

    options = {"ignore_changes": ["zone"], "delete_before_replace": True}
    plan = plan_for(lambda: Thing("a", opts=sw.ResourceOptions(ignore_changes=["zone"], delete_before_replace=True)),
                    replace(record("a"), options=options))
    assert ops(plan) == {"a": "same"} and not plan.steps[0].meta_changed and plan.steps[0].options == options


def test_a_dependent_of_a_resource_renamed_and_replaced_delete_first_is_deleted_first_too() -> None:
    def program() -> None:
        cluster = Thing("k8s", zone="b", opts=sw.ResourceOptions(delete_before_replace=True,
                                                                 aliases=[sw.Alias(name="cluster")]))
        Thing("oidc", zone="b", ref=cluster.arn)

    plan = plan_for(program, record("cluster"), record("oidc", ref="arn:cluster-id", deps=[P + "cluster"]))
    assert ops(plan) == {"k8s": "replace", "oidc": "replace"}
    oidc = plan.steps[1]
    assert oidc.delete_before_replace
    assert oidc.notes == ("deleted before it is created again: it uses k8s, which is replaced delete-first",)


def test_a_new_resource_with_ignore_changes_is_created_as_declared() -> None:
    plan = plan_for(lambda: Thing("a", label="x", opts=sw.ResourceOptions(ignore_changes=["label"])))
    assert ops(plan) == {"a": "create"}
    assert plan.steps[0].inputs == {"label": "x", "zone": "a", "ref": ""} and plan.steps[0].notes == ()


def test_a_chain_replaced_because_of_a_delete_first_replacement_is_deleted_first_all_along() -> None:
    def program() -> None:
        cluster = Thing("cluster", zone="b", opts=sw.ResourceOptions(delete_before_replace=True))
        oidc = Thing("oidc", zone="b", ref=cluster.arn)
        Thing("role", zone="b", ref=oidc.arn)

    plan = plan_for(program, record("cluster"), record("oidc", ref="arn:cluster-id", deps=[P + "cluster"]),
                    record("role", ref="arn:oidc-id", deps=[P + "oidc"]))
    assert [(s.urn.removeprefix(P), s.op.value, s.delete_before_replace) for s in plan.steps] == [
        ("cluster", "replace", True), ("oidc", "replace", True), ("role", "replace", True)]
    assert plan.steps[2].notes == ("deleted before it is created again: it uses oidc, which is replaced delete-first",)


def test_a_delete_shows_what_is_deleted_and_waits_for_the_deletes_of_what_used_it() -> None:
    from dataclasses import replace

    from stackwright.engine.apply import action_graph

    gone = replace(record("gone", label="old"), parent="dev::test::fake:Box::box")
    user = record("user", ref="arn:gone-id", deps=[P + "gone"])
    plan = plan_for(lambda: None, gone, user)
    assert ops(plan) == {"gone": "delete", "user": "delete"}
    shown = plan.steps[0].to_json()
    assert shown["old_inputs"] == gone.inputs and shown["parent"] == "dev::test::fake:Box::box"
    assert ("D", P + "user") in action_graph(plan).deps[("D", P + "gone")]


def test_a_delete_gives_the_provider_the_recorded_inputs_and_outputs(h: Harness) -> None:
    seen: list[tuple[Any, Any]] = []
    delete = h.providers.thing.delete

    def recording(ctx: Any, id: str, inputs: Any, outputs: Any) -> None:
        seen.append((dict(inputs), dict(outputs)))
        delete(ctx, id, inputs, outputs)

    assert h.up(lambda: Thing("a", label="x")).ok
    h.providers.thing.delete = recording  # type: ignore[method-assign]
    assert h.up(lambda: None).ok
    [(inputs, outputs)] = seen
    assert inputs == {"label": "x", "zone": "a", "ref": ""} and outputs["arn"].startswith("arn:a-")


def test_a_resource_that_waits_for_one_earlier_and_one_later_resource_comes_after_both() -> None:
    class Group(sw.Component, type="test:Group"):
        pass

    def program() -> None:
        early = Thing("early")
        group = Group("g")
        Thing("user", opts=sw.ResourceOptions(depends_on=[early, group]))
        Thing("late", opts=sw.ResourceOptions(parent=group))

    order = [s.urn.rsplit("$", 1)[-1].removeprefix(P) for s in plan_for(program).steps]
    assert order == ["early", "late", "user"]


def test_a_new_resource_gets_the_id_and_outputs_of_an_unchanged_one_it_uses(h: Harness) -> None:
    def program(with_user: bool) -> None:
        a = Thing("a", label="x")
        if with_user:
            Thing("user", label=a.id, ref=a.arn)

    assert h.up(lambda: program(False)).ok
    a = h.store.snapshot("dev").resources[P + "a"]
    plan = make_plan(declare(lambda: program(True)), h.store.snapshot("dev"), h.providers)
    assert ops(plan) == {"a": "same", "user": "create"}
    assert plan.steps[1].inputs == {"label": a.id, "zone": "a", "ref": f"arn:{a.id}"}
    assert h.up(lambda: program(True)).ok
    assert h.store.snapshot("dev").resources[P + "user"].inputs == plan.steps[1].inputs


def test_an_unchanged_resource_with_every_option_is_planned_as_recorded(h: Harness) -> None:
    class Box(sw.Component, type="fake:Box"):
        pass

    def program() -> None:
        box = Box("box")
        dep = Thing("dep")
        Thing("a", label="x", opts=sw.ResourceOptions(
            parent=box, depends_on=[dep], protect=True, retain_on_delete=True, delete_before_replace=True,
            aliases=[sw.Alias(no_parent=True)]))

    assert h.up(program).ok
    snapshot = h.store.snapshot("dev")
    row = snapshot.resources["dev::test::fake:Thing::box$a"]
    plan = make_plan(declare(program), snapshot, h.providers)
    assert not plan.has_changes
    step = plan.steps[-1]
    assert step.to_json() == {"urn": row.urn, "type": "fake:Thing", "op": "same", "parent": "dev::test::fake:Box::box",
                              "inputs": {"label": "x", "zone": "a", "ref": ""}, "deps": [P + "dep"]}
    assert (step.old_inputs, step.old_outputs, step.old_id) == (row.inputs, row.outputs, row.id)
    assert (step.protect, step.retain_on_delete, step.options) == (True, True, row.options)
    assert step.options == {"delete_before_replace": True, "aliases": [P + "a"]}


def test_a_plan_names_the_stack_state_it_was_made_from_and_its_recorded_exports() -> None:
    def program(value: str) -> None:
        Thing("a")
        sw.export("name", value)

    snapshot = Snapshot("dev", "lineage-1", 7, {P + "a": record("a")}, {"name": "old"})
    same = make_plan(declare(lambda: program("old")), snapshot, FakeProviders())
    assert (same.lineage, same.base_serial, same.old_outputs) == ("lineage-1", 7, {"name": "old"})
    assert same.view()["lineage"] == "lineage-1" and not same.has_changes
    assert make_plan(declare(lambda: program("new")), snapshot, FakeProviders()).has_changes


def test_a_target_keeps_only_the_replaced_objects_left_to_delete_of_what_it_plans() -> None:
    from stackwright.state.records import PendingOperation

    def old_half(name: str) -> PendingOperation:
        return PendingOperation(token=f"t-{name}", urn=P + name, type="fake:Thing", op="delete", inputs={},
                                resource_id=f"{name}-old")

    def program() -> None:
        Thing("a")
        Thing("b")

    snapshot = Snapshot("dev", "l", 1, {r.urn: r for r in (record("a"), record("b"))}, {},
                        pending=[old_half("a"), old_half("b")])
    plan = make_plan(declare(program), snapshot, FakeProviders(), targets=["a"])
    assert [(o.urn, o.id) for o in plan.leftovers] == [(P + "a", "a-old")]
    everything = make_plan(declare(program), snapshot, FakeProviders())
    assert [o.id for o in everything.leftovers] == ["a-old", "b-old"]


def test_a_resource_takes_the_record_of_the_first_alias_that_has_one() -> None:
    plan = plan_for(lambda: Thing("new", opts=sw.ResourceOptions(aliases=[sw.Alias(name="never"),
                                                                           sw.Alias(name="old")])),
                    record("old"))
    assert ops(plan) == {"new": "same"} and plan.steps[0].previous_urn == P + "old"


@pytest.mark.parametrize("new_first", [True, False])
def test_an_alias_naming_a_resource_the_program_still_declares_takes_nothing(new_first: bool) -> None:
    def program() -> None:
        if not new_first:
            Thing("old")
        Thing("new", opts=sw.ResourceOptions(aliases=[sw.Alias(name="old")]))
        if new_first:
            Thing("old")

    plan = plan_for(program, record("old"))
    assert ops(plan) == {"old": "same", "new": "create"}
    assert next(s for s in plan.steps if s.urn == P + "new").previous_urn is None


def test_an_output_an_unchanged_record_lacks_is_not_known_to_its_dependents() -> None:
    """A record written before its provider returned ``arn``: the value is unknown until apply."""
    from dataclasses import replace

    def program() -> None:
        a = Thing("a")
        Thing("user", ref=a.arn)

    old = record("a")
    plan = plan_for(program, replace(old, outputs={k: v for k, v in old.outputs.items() if k != "arn"}),
                    record("user", ref="arn:a-id", deps=[P + "a"]))
    assert ops(plan) == {"a": "same", "user": "update"}
    assert plan.steps[1].inputs is not None and plan.steps[1].inputs["ref"] is UNKNOWN


def test_a_rename_is_planned_even_when_the_record_lists_the_alias_already() -> None:
    from dataclasses import replace

    old = replace(record("old"), options={"aliases": [P + "old"]})
    plan = plan_for(lambda: Thing("new", opts=sw.ResourceOptions(aliases=[sw.Alias(name="old")])), old)
    assert ops(plan) == {"new": "same"} and plan.steps[0].previous_urn == P + "old" and plan.has_changes
