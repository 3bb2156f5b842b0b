"""Apply's paths seen from outside: refusals of plans that cannot be ordered, lookups,
provider instances, failures recorded, dependents skipped, pending records, interrupts,
and the order of deletes and replacements."""

from __future__ import annotations

import asyncio
import gc
import random
import re
import time
from pathlib import Path
from typing import Any

import pytest

import stackwright as sw
from stackwright.engine.apply import (
    Applier, ApplyOptions, _check_matches_plan, _CollectorPause, action_graph, runs_in_process,
)
from stackwright.engine.events import EventSink
from stackwright.errors import PlanError, ProviderError, StackwrightError
from stackwright.model.values import UNKNOWN, Secret
from stackwright.plan.plan import Leftover, Op, Plan, Step
from stackwright.providers.protocol import Created, OperationContext, ReadResult
from stackwright.state.records import Change, PendingOperation
from unit.fakes import Thing, ThingProvider
from unit.test_engine import Gate, P, Harness
from unit.test_recovery_outcomes import keyed
from unit.test_provider_instances import Conn, ConnProvider, Providers, Widget, WidgetProvider


@pytest.fixture(params=["parallel", "in-line"])
def h(tmp_path: Path, request: pytest.FixtureRequest) -> Harness:
    """Both walks: the parallel one and the one-step-at-a-time one."""
    return Harness(tmp_path, inline=request.param == "in-line")


def _plan(*steps: Step) -> Plan:
    return Plan(stack="dev", project="test", lineage="l", base_serial=1, steps=steps)


def _refusal(plan: Plan) -> PlanError:
    with pytest.raises(PlanError) as info:
        action_graph(plan)
    return info.value


def test_a_cycle_through_a_delete_first_replacement_names_its_deletes_and_only_the_replaced() -> None:
    """x is replaced delete-first; z (updated) uses x; y (replaced, created before its
    old half goes) used x and now uses z. x's old object can go only after y's, y's only
    after its new half, which needs z, which needs the new x: no order exists."""
    x = Step(urn=P + "x", type="fake:Thing", op=Op.REPLACE, replace_keys=("zone",), old_id="1",
             delete_before_replace=True)
    z = Step(urn=P + "z", type="fake:Thing", op=Op.UPDATE, deps=(P + "x",), old_id="2")
    y = Step(urn=P + "y", type="fake:Thing", op=Op.REPLACE, replace_keys=("label",), deps=(P + "z",),
             old_deps=(P + "x",), old_id="3")
    err = _refusal(_plan(x, z, y))
    names, _, causes = err.message.removeprefix(
        "the plan's deletes and replacements cannot be ordered: ").partition(" (")
    actions = names.split(" -> ")
    assert actions[0] == actions[-1] and err.resource == P + actions[0].split(" ")[1]
    assert sorted(actions[1:]) == ["create x", "create y", "create z", "delete x", "delete y"]
    assert sorted(causes.removesuffix(")").split("; ")) == [
        "x is replaced because zone changed", "y is replaced because label changed"]


def test_a_cycle_without_a_replacement_gives_no_cause() -> None:
    a = Step(urn=P + "a", type="fake:Thing", op=Op.UPDATE, deps=(P + "b",), old_id="1")
    b = Step(urn=P + "b", type="fake:Thing", op=Op.UPDATE, deps=(P + "a",), old_id="2")
    err = _refusal(_plan(a, b))
    assert err.message in ("the plan's deletes and replacements cannot be ordered: create a -> create b -> create a",
                           "the plan's deletes and replacements cannot be ordered: create b -> create a -> create b")


@pytest.fixture
def hw(tmp_path: Path) -> Harness:
    """Provider instances, and a store that can hold their secret credentials."""
    harness = keyed(Harness(tmp_path))
    harness.providers = Providers()  # type: ignore[assignment]
    return harness


def _widgets(token: str) -> Any:
    def declare() -> None:
        conn = Conn("conn", token=sw.secret(token))
        for name in ("w0", "w1"):
            w = Widget(name, label="x", opts=sw.ResourceOptions(provider=conn))
            w.inputs["provider"] = conn.urn
    return declare


class Conns(ConnProvider):
    def delete(self, ctx: OperationContext, id: str, inputs: Any, outputs: Any) -> None:
        """Nothing to remove: an instance is only settings."""


def test_deleting_an_instance_and_its_users_deletes_them_with_its_recorded_credential(hw: Harness) -> None:
    widgets: WidgetProvider = hw.providers.widget  # type: ignore[attr-defined]
    hw.providers.conn = Conns()  # type: ignore[attr-defined]
    assert hw.up(_widgets("t1")).ok
    widgets.seen.clear()
    result = hw.up(lambda: None)
    assert result.ok and result.done == {"delete": 3}
    assert sorted(widgets.seen) == [("delete", "w0", "t1"), ("delete", "w1", "t1")]
    assert hw.store.snapshot("dev").resources == {}


class Reads(WidgetProvider):
    """Remembers the token and instance settings of every read."""

    def __init__(self) -> None:
        super().__init__()
        self.read_calls: list[tuple[str, str, dict[str, Any]]] = []

    def read(self, ctx: OperationContext, id: str | None, inputs: Any, outputs: Any) -> ReadResult | None:
        self.read_calls.append((ctx.name, ctx.token, dict(ctx.provider_config)))
        return super().read(ctx, id, inputs, outputs)


def test_a_lookup_reads_with_a_token_naming_the_id_it_reads(hw: Harness) -> None:
    reads = hw.providers.widget = Reads()  # type: ignore[attr-defined]
    reads.objects["given-1"] = {"label": "shared"}
    result = hw.up(lambda: Widget.get("given", "given-1"))
    assert result.ok and result.done == {"read": 1}
    assert reads.read_calls == [("given", "read-given-1", {})]
    assert hw.store.snapshot("dev").resources["dev::test::fake:Widget::given"].inputs == {"label": "shared"}


class NoOutputs(ThingProvider):
    """Creates objects but returns no outputs (an ``arn`` never known)."""

    def create(self, ctx: OperationContext, inputs: Any) -> Created:
        made = super().create(ctx, inputs)
        return Created(made.id, {})


def test_a_lookup_whose_id_stays_unknown_fails_saying_so(h: Harness) -> None:
    h.providers.thing = NoOutputs()

    def program() -> None:
        a = Thing("a")
        given = Thing.get("given", a.arn)
        Thing("user", label=given.label)

    result = h.up(program)
    assert [f.urn for f in result.failures] == [P + "given"] and result.skipped == [P + "user"]
    message = result.failures[0].message
    assert message.endswith(": the id to read is still unknown after its dependencies were applied")
    assert h.providers.thing.calls["read"] == 0


def _relabelled_widgets(token: str, label: str) -> Any:
    def declare() -> None:
        conn = Conn("conn", token=sw.secret(token))
        w = Widget("w0", label=label, opts=sw.ResourceOptions(provider=conn))
        w.inputs["provider"] = conn.urn
    return declare


def test_a_user_of_an_instance_updated_in_the_same_run_is_called_with_the_new_credential(hw: Harness) -> None:
    widgets: WidgetProvider = hw.providers.widget  # type: ignore[attr-defined]
    assert hw.up(_relabelled_widgets("t1", "x")).ok
    widgets.seen.clear()
    result = hw.up(_relabelled_widgets("t2", "y"))
    assert result.ok and result.done == {"update": 2}
    assert widgets.seen == [("update", "w0", "t2")]


def test_a_plan_with_nothing_left_to_resolve_applies_without_a_resolver(tmp_path: Path) -> None:
    """The resolver is optional: a plan whose inputs and lookup ids are all known
    applies as planned."""
    h = Harness(tmp_path)
    h.providers.thing.objects["given-1"] = {"label": "shared", "zone": "a", "ref": ""}

    def program() -> None:
        Thing.get("given", "given-1")
        Thing("a", label="x")

    applier, writer = h.applier(program, 4, None)
    applier.resolver = None
    result = h.finish(writer, asyncio.run(applier.run()))
    assert result.ok and result.done == {"read": 1, "create": 1}
    rec = h.recorded()
    assert rec["given"].id == "given-1" and rec["a"].inputs == {"label": "x", "zone": "a", "ref": ""}


class Events(EventSink):
    """Every step event and retry, as the progress display sees them."""

    def __init__(self) -> None:
        self.finished: list[tuple[str, str, str, float, str | None]] = []
        self.started: list[tuple[str, str]] = []
        self.retries: list[tuple[str, str, int]] = []
        self.persisted: list[str] = []

    def step_started(self, urn: str, action: str) -> None:
        self.started.append((urn, action))

    def step_finished(self, urn: str, action: str, status: str, elapsed: float,
                      error: str | None = None) -> None:
        self.finished.append((urn, action, status, elapsed, error))

    def step_retrying(self, urn: str, action: str, attempt: int, delay: float, error: str) -> None:
        self.retries.append((urn, action, attempt))

    def state_persisted(self, urn: str) -> None:
        self.persisted.append(urn)


def _events(h: Harness) -> Events:
    h.sink = events = Events()  # type: ignore[assignment]
    return events


def _changes(h: Harness) -> list[Change]:
    return h.store.checkpoint("dev", h.store.history("dev")[-1].number).changes


def _keyed(tmp_path: Path, provider: ThingProvider) -> tuple[Harness, Events]:
    """A harness whose store holds secrets, with ``provider`` and its events noted."""
    h = keyed(Harness(tmp_path))
    h.providers.thing = provider
    return h, _events(h)


def test_a_step_skipped_for_a_failed_dependency_is_reported_with_its_cause(h: Harness) -> None:
    h.providers.thing.fail["a"] = -1
    events = _events(h)
    result = h.up(chain)
    assert result.skipped == [P + "b", P + "c"] and not result.ok
    skipped = [e for e in events.finished if e[2] == "skipped"]
    assert skipped == [(P + "b", "create", "skipped", 0.0, "a failed"), (P + "c", "create", "skipped", 0.0, "a failed")]


def chain() -> None:
    a = Thing("a", label="x")
    b = Thing("b", ref=a.arn)
    Thing("c", ref=b.arn)


def test_only_changes_and_old_halves_decide_whether_a_plan_runs_in_process() -> None:
    class Local(ThingProvider):
        in_process = True

    class Lookup:
        def __init__(self) -> None:
            self.by_type: dict[str, ThingProvider] = {"fake:Local": Local(), "fake:Thing": ThingProvider()}

        def resource(self, type_token: str) -> ThingProvider:
            return self.by_type[type_token]

        def versions(self) -> dict[str, str]:
            return {}

    providers = Lookup()
    local = Step(urn=P + "l", type="fake:Local", op=Op.CREATE)
    remote_same = Step(urn=P + "r", type="fake:Thing", op=Op.SAME, old_id="1")
    remote_update = Step(urn=P + "u", type="fake:Thing", op=Op.UPDATE, old_id="2")
    assert runs_in_process(_plan(), providers)
    assert runs_in_process(_plan(local, remote_same), providers)
    assert not runs_in_process(_plan(local, remote_update), providers)
    leftover = Leftover(urn=P + "o", type="fake:Thing", id="3", token="t")
    with_leftover = Plan(stack="dev", project="test", lineage="l", base_serial=1, steps=(local,),
                         leftovers=(leftover,))
    assert not runs_in_process(with_leftover, providers)


def test_ctrl_c_during_an_in_line_apply_stops_after_the_step_under_way(tmp_path: Path) -> None:
    h = Harness(tmp_path, inline=True)
    events = _events(h)
    applier, writer = h.applier(many(4), 1, None)
    thing = h.providers.thing
    thing.before_create = lambda name: applier.stop.set()
    result = h.finish(writer, applier.run_inline())
    assert result.interrupted and not result.ok and not result.failures
    [made] = h.recorded()
    assert result.done == {"create": 1} and len(result.not_started) == 3 and P + made not in result.not_started
    assert h.store.snapshot("dev").pending == [] and thing.calls["create"] == 1
    assert [e[:3] for e in events.finished] == [(P + made, "create", "ok")]


def many(count: int) -> Any:
    def program() -> None:
        for i in range(count):
            Thing(f"t{i}")
    return program


def test_a_failed_delete_keeps_the_record_and_leaves_nothing_pending(h: Harness) -> None:
    thing = h.providers.thing
    thing.refuse_in_use = True
    h.objects_before = h.up(lambda: Thing("a"))
    thing.objects["other"] = {"ref": "arn:a-1"}
    result = h.up(lambda: None)
    assert [(f.urn, f.action) for f in result.failures] == [(P + "a", "delete")]
    assert result.failures[0].message == "a-1 is in use by other", "a delete has no declaration to name"
    assert h.recorded()["a"].id == "a-1" and h.store.snapshot("dev").pending == []
    assert [(c.urn, c.type, c.op, c.error) for c in _changes(h)] == [
        (P + "a", "fake:Thing", "delete", result.failures[0].message)]


def test_a_replacement_whose_create_fails_keeps_the_old_object_and_leaves_nothing_pending(h: Harness) -> None:
    thing = h.providers.thing
    assert h.up(lambda: Thing("a")).ok
    thing.fail["a"] = -1
    result = h.up(lambda: Thing("a", zone="b"))
    assert [(f.urn, f.action) for f in result.failures] == [(P + "a", "replace")]
    assert result.skipped == [P + "a"]
    assert h.recorded()["a"].id == "a-1" and h.recorded()["a"].inputs["zone"] == "a"
    assert h.store.snapshot("dev").pending == [] and set(thing.objects) == {"a-1"}


def test_an_old_half_that_fails_to_delete_stays_pending_and_the_next_up_deletes_it(h: Harness) -> None:
    thing = h.providers.thing
    thing.refuse_in_use = True
    assert h.up(lambda: Thing("a")).ok
    thing.objects["other"] = {"ref": "arn:a-1"}
    result = h.up(lambda: Thing("a", zone="b"))
    assert [(f.urn, f.action) for f in result.failures] == [(P + "a", "delete-replaced")]
    new_id = h.recorded()["a"].id
    assert new_id != "a-1"
    pending = h.store.snapshot("dev").pending
    assert [(op.urn, op.op, op.resource_id) for op in pending] == [(P + "a", "delete", "a-1")]

    del thing.objects["other"]
    thing.log.clear()
    result = h.up(lambda: Thing("a", zone="b"))
    assert result.ok and result.done == {"delete-replaced": 1} and thing.log == [("delete", "a")]
    assert set(thing.objects) == {new_id} and h.store.snapshot("dev").pending == []


class Unusable(ThingProvider):
    """Creates the object, then answers with something that is not a ``Created``."""

    def create(self, ctx: OperationContext, inputs: Any) -> Any:
        super().create(ctx, inputs)
        return None


def test_a_create_whose_answer_cannot_be_used_keeps_its_pending_record_for_recovery(h: Harness) -> None:
    """The object may exist: only the next run, reading it, can tell."""
    h.providers.thing = Unusable()
    result = h.up(lambda: Thing("a"))
    assert [f.urn for f in result.failures] == [P + "a"]
    where, _, what = result.failures[0].message.partition(": ")
    assert re.fullmatch(r".*test_apply_paths\.py:\d+", where), "where the resource is declared"
    assert what == "internal error: AttributeError: 'NoneType' object has no attribute 'outputs'"
    pending = h.store.snapshot("dev").pending
    assert [(op.urn, op.op, op.inputs) for op in pending] == [
        (P + "a", "create", {"label": "", "zone": "a", "ref": ""})]


def test_an_old_half_is_recorded_as_pending_before_its_replacement_is_created(h: Harness) -> None:
    thing = h.providers.thing
    assert h.up(lambda: Thing("a", label="old")).ok
    seen: list[list[PendingOperation]] = []
    thing.before_create = lambda name: seen.append(h.store.snapshot("dev").pending)
    started = time.time()
    assert h.up(lambda: Thing("a", label="old", zone="b")).ok
    [pending] = seen
    by_op = {op.op: op for op in pending}
    assert sorted(by_op) == ["create", "delete"]
    old = by_op["delete"]
    assert (old.urn, old.resource_id, old.inputs) == (P + "a", "a-1", {"label": "old", "zone": "a", "ref": ""})
    assert started <= old.started_at <= time.time()
    assert by_op["create"].inputs == {"label": "old", "zone": "b", "ref": ""}
    assert h.store.snapshot("dev").pending == []


def test_an_old_half_of_a_removed_resource_that_fails_to_delete_is_recorded_as_its_failure(h: Harness) -> None:
    thing = h.providers.thing
    thing.refuse_in_use = True
    assert h.up(lambda: Thing("a")).ok
    thing.objects["other"] = {"ref": "arn:a-1"}
    h.up(lambda: Thing("a", zone="b"))
    new_id = h.recorded()["a"].id
    del thing.objects[new_id]
    thing.objects["another"] = {"ref": f"arn:{new_id}"}
    result = h.up(lambda: None)
    failed = sorted((f.urn, f.action) for f in result.failures)
    assert failed == [(P + "a", "delete"), (P + "a", "delete-replaced")] or \
        failed == [(P + "a", "delete-replaced")]
    changes = [(c.urn, c.type, c.op) for c in _changes(h) if c.error]
    assert (P + "a", "fake:Thing", "delete-replaced") in changes


def test_an_input_from_an_output_the_provider_never_returned_fails_as_still_unknown(h: Harness) -> None:
    h.providers.thing = NoOutputs()

    def program() -> None:
        a = Thing("a")
        Thing("b", ref=a.arn)

    result = h.up(program)
    assert [f.urn for f in result.failures] == [P + "b"]
    assert result.failures[0].message.endswith(": an input is still unknown after its dependencies were applied")
    assert sorted(h.recorded()) == ["a"] and h.store.snapshot("dev").pending == []


def test_an_option_changed_alone_rewrites_the_record_without_a_provider_call(h: Harness) -> None:
    assert h.up(lambda: Thing("a", label="x")).ok
    calls = dict(h.providers.thing.calls)
    result = h.up(lambda: Thing("a", label="x", opts=sw.ResourceOptions(protect=True)))
    assert result.ok and result.done == {"update options": 1} and result.interrupted is False
    assert dict(h.providers.thing.calls) == calls
    rec = h.recorded()["a"]
    assert rec.protect and rec.id == "a-1" and rec.inputs == {"label": "x", "zone": "a", "ref": ""}
    assert rec.outputs["arn"] == "arn:a-1"
    [change] = _changes(h)
    assert (change.urn, change.type, change.op) == (P + "a", "fake:Thing", "update options")
    assert [(d["path"], d["old"], d["new"]) for d in change.diffs] == [("protect", False, True)]


def test_a_new_resource_gets_the_id_of_an_unchanged_one(h: Harness) -> None:
    assert h.up(lambda: Thing("a")).ok

    def program() -> None:
        a = Thing("a")
        c = Thing("c")
        Thing("b", ref=a.id, label=c.arn)

    result = h.up(program)
    assert result.ok and result.done == {"create": 2}
    rec = h.recorded()
    assert rec["b"].inputs["ref"] == rec["a"].id == "a-1" and rec["b"].inputs["label"] == rec["c"].outputs["arn"]


def test_an_old_half_waits_for_its_resources_step_and_for_its_users_to_move() -> None:
    a = Step(urn=P + "a", type="fake:Thing", op=Op.SAME, old_id="2")
    b = Step(urn=P + "b", type="fake:Thing", op=Op.UPDATE, deps=(P + "a",), old_deps=(P + "a",), old_id="3")
    gone = Step(urn=P + "g", type="fake:Thing", op=Op.DELETE, old_deps=(P + "a",), old_id="4")
    old_a = Leftover(urn=P + "a", type="fake:Thing", id="1", token="t")
    graph = action_graph(Plan(stack="dev", project="test", lineage="l", base_serial=1, steps=(a, b, gone),
                              leftovers=(old_a,)))
    assert sorted(graph.deps[("L", P + "a")]) == [("C", P + "a"), ("C", P + "b"), ("D", P + "g")]


def test_an_old_half_of_a_resource_being_deleted_waits_only_for_its_users() -> None:
    a = Step(urn=P + "a", type="fake:Thing", op=Op.DELETE, old_id="2")
    b = Step(urn=P + "b", type="fake:Thing", op=Op.DELETE, old_deps=(P + "a",), old_id="3")
    olds = (Leftover(urn=P + "a", type="fake:Thing", id="1", token="t"),
            Leftover(urn=P + "x", type="fake:Thing", id="9", token="u"))
    graph = action_graph(Plan(stack="dev", project="test", lineage="l", base_serial=1, steps=(a, b),
                              leftovers=olds))
    assert graph.deps[("L", P + "a")] == [("D", P + "b")]
    assert graph.deps[("L", P + "x")] == []


def test_walks_side_by_side_restore_the_collector_only_when_the_last_ends() -> None:
    pause = _CollectorPause()
    before = gc.get_threshold()
    with pause():
        assert gc.get_threshold()[:2] == (max(before[0], 10_000), before[1]) and gc.get_threshold()[2] > 10**9
        with pause():
            assert gc.get_threshold()[2] > 10**9
        assert gc.get_threshold()[2] > 10**9
    assert gc.get_threshold() == before


def test_a_provider_error_is_shown_as_its_message_where_the_resource_is_declared(h: Harness) -> None:
    h.providers.thing.fail["a"] = -1
    result = h.up(lambda: Thing("a"))
    where, _, what = result.failures[0].message.partition(": ")
    assert re.fullmatch(r".*test_apply_paths\.py:\d+", where) and what == "a is broken"


class OldHalves(ThingProvider):
    """Notes what each read and delete was given, and throttles the first of each."""

    def __init__(self) -> None:
        super().__init__()
        self.given: list[tuple[str, str, str, str | None, dict[str, Any], dict[str, Any]]] = []
        self.throttle = {"read", "delete"}

    def _note(self, call: str, ctx: OperationContext, id: str | None, inputs: Any, outputs: Any) -> None:
        self.given.append((call, ctx.urn, ctx.token, id, dict(inputs), dict(outputs)))
        if call in self.throttle:
            self.throttle.discard(call)
            raise ProviderError.transient("Throttling: Rate exceeded")

    def read(self, ctx: OperationContext, id: str | None, inputs: Any, outputs: Any) -> ReadResult | None:
        self._note("read", ctx, id, inputs, outputs)
        return super().read(ctx, id, inputs, outputs)

    def delete(self, ctx: OperationContext, id: str, inputs: Any, outputs: Any) -> None:
        self._note("delete", ctx, id, inputs, outputs)
        super().delete(ctx, id, inputs, outputs)


def test_an_old_half_is_read_then_deleted_with_its_recorded_inputs_and_token(h: Harness) -> None:
    assert h.up(lambda: Thing("a", label="one")).ok
    writer = h.store.begin("dev", "up", "crashed")
    writer.record_pending(PendingOperation(token="t-old", urn=P + "a", type="fake:Thing", op="delete",
                                           inputs={"label": "old", "zone": "a", "ref": ""},
                                           resource_id="old-1", started_at=1.0))
    writer.finish("failed", None)
    halves = OldHalves()
    halves.objects = h.providers.thing.objects
    halves.objects["old-1"] = {"label": "old", "zone": "a", "ref": ""}
    h.providers.thing = halves
    events = _events(h)

    result = h.up(lambda: Thing("a", label="one"))

    assert result.ok and result.done == {"delete-replaced": 1}
    old_inputs = {"label": "old", "zone": "a", "ref": ""}
    read = ("read", P + "a", "t-old", "old-1", old_inputs, {})
    delete = ("delete", P + "a", "t-old", "old-1", old_inputs, {"arn": "arn:old-1"})
    assert halves.given == [read, read, delete, delete]
    assert events.retries == [(P + "a", "read", 1), (P + "a", "delete", 1)]
    assert set(halves.objects) == {"a-1"} and h.store.snapshot("dev").pending == []
    assert [(c.urn, c.type, c.op) for c in _changes(h)] == [(P + "a", "fake:Thing", "delete-replaced")]


def test_a_lookup_is_recorded_with_its_parent_and_dependencies_and_its_id_feeds_users(h: Harness) -> None:
    class Box(sw.Component, type="test:Box"):
        def __init__(self, name: str, source: Any) -> None:
            super().__init__(name)
            self.given = Thing.get("given", source, opts=sw.ResourceOptions(parent=self))

    def program() -> None:
        a = Thing("a", label="made")
        box = Box("box", a.id)
        Thing("user", ref=box.given.id, label=box.given.label)

    result = h.up(program)
    assert result.ok and result.done == {"create": 2, "read": 1}
    rows = h.store.snapshot("dev").resources
    given = next(r for urn, r in rows.items() if urn.endswith("given"))
    assert given.parent is not None and given.parent.endswith("box") and given.deps == [P + "a"]
    rec = h.recorded()
    assert rec["user"].inputs["ref"] == rec["a"].id == given.id and rec["user"].inputs["label"] == "made"
    assert sorted((c.urn, c.op) for c in _changes(h)) == sorted(
        [(P + "a", "create"), (given.urn, "read"), (P + "user", "create")])


def test_an_old_half_of_a_resource_no_longer_recorded_that_fails_to_delete_is_its_failure(h: Harness) -> None:
    thing = h.providers.thing
    thing.refuse_in_use = True
    thing.objects["gone-1"] = {"label": "", "zone": "a", "ref": ""}
    thing.objects["user"] = {"ref": "arn:gone-1"}
    writer = h.store.begin("dev", "up", "crashed")
    writer.record_pending(PendingOperation(token="t-gone", urn=P + "gone", type="fake:Thing", op="delete",
                                           inputs={}, resource_id="gone-1", started_at=1.0))
    writer.finish("failed", None)

    result = h.up(lambda: None)

    assert [(f.urn, f.action, f.message) for f in result.failures] == [
        (P + "gone", "delete-replaced", "gone-1 is in use by user")]
    assert [(c.urn, c.type, c.op, c.error) for c in _changes(h)] == [
        (P + "gone", "fake:Thing", "delete-replaced", "gone-1 is in use by user")]
    assert [(op.urn, op.resource_id) for op in h.store.snapshot("dev").pending] == [(P + "gone", "gone-1")]


class Updates(ThingProvider):
    """Notes what each update was given and the pending records at that moment."""

    def __init__(self, store: Any) -> None:
        super().__init__()
        self.store = store
        self.updates: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = []
        self.pending: list[PendingOperation] = []

    def update(self, ctx: OperationContext, id: str, old_inputs: Any, old_outputs: Any, new_inputs: Any) -> Any:
        self.updates.append((dict(old_inputs), dict(old_outputs), dict(new_inputs)))
        self.pending.extend(self.store.snapshot("dev").pending)
        return super().update(ctx, id, old_inputs, old_outputs, new_inputs)


def test_an_update_is_recorded_as_pending_before_its_call_and_given_what_was_recorded(h: Harness) -> None:
    class Box(sw.Component, type="test:Box"):
        def __init__(self, name: str, label: str, ref: Any) -> None:
            super().__init__(name)
            Thing("inner", label=label, ref=ref, opts=sw.ResourceOptions(parent=self))

    def program(label: str) -> Any:
        def declare_it() -> None:
            a = Thing("a")
            Box("box", label, a.arn)
        return declare_it

    assert h.up(program("one")).ok
    updates = Updates(h.store)
    updates.objects, updates.count = h.providers.thing.objects, h.providers.thing.count
    h.providers.thing = updates
    inner = next(r for urn, r in h.store.snapshot("dev").resources.items() if urn.endswith("inner"))
    started = time.time()

    assert h.up(program("two")).done == {"update": 1}

    assert updates.updates == [(inner.inputs, inner.outputs, {**inner.inputs, "label": "two"})]
    [op] = updates.pending
    assert (op.urn, op.op, op.resource_id, op.parent, op.deps) == (
        inner.urn, "update", inner.id, inner.parent, [P + "a"])
    assert inner.parent is not None and started <= op.started_at <= time.time()
    assert h.store.snapshot("dev").pending == []


@pytest.mark.parametrize(("planned", "resolved", "path"), [
    ({"tags": {"a": "1", "b": UNKNOWN}}, {"tags": {"a": "2", "b": "x"}}, "tags.a"),
    ({"tags": {"a": "1", "b": UNKNOWN}}, {"tags": {"b": "x"}}, "tags.a"),
    ({"items": ["1", UNKNOWN]}, {"items": ["2", "x"]}, "items[0]"),
    ({"items": [{"k": "1"}, UNKNOWN]}, {"items": [{"k": "2"}, "x"]}, "items[0].k"),
    ({"items": ["1", UNKNOWN]}, {"items": ["1", "x", "y"]}, "items"),
    ({"label": "1", "ref": UNKNOWN}, {"label": "2", "ref": "x"}, "label"),
    ({"Xray": "1", "ref": UNKNOWN}, {"Xray": "2", "ref": "x"}, "Xray"),
])
def test_a_known_value_that_comes_out_different_at_apply_is_named_by_its_path(
        planned: dict[str, Any], resolved: dict[str, Any], path: str) -> None:
    with pytest.raises(StackwrightError) as info:
        _check_matches_plan(P + "b", planned, resolved)
    err = info.value
    assert (err.message, err.resource) == (f"{path} came out different from the plan", P + "b")
    assert err.hint == "make a new plan: something it depended on changed"


@pytest.mark.parametrize(("planned", "resolved"), [
    ({"tags": {"a": "1", "b": UNKNOWN}}, {"tags": {"a": "1", "b": "x"}}),
    ({"items": ["1", UNKNOWN]}, {"items": ["1", "x"]}),
    ({"items": [{"k": UNKNOWN}]}, {"items": [{"k": "x"}]}),
    (UNKNOWN, {"anything": 1}),
])
def test_values_known_at_plan_time_that_come_out_the_same_pass(planned: Any, resolved: Any) -> None:
    _check_matches_plan(P + "b", planned, resolved)


class Renumbering(ThingProvider):
    """An update that hands back a new arn, which the plan took as unchanged."""

    def update(self, ctx: OperationContext, id: str, old_inputs: Any, old_outputs: Any, new_inputs: Any) -> Any:
        super().update(ctx, id, old_inputs, old_outputs, new_inputs)
        return {"arn": f"arn:{id}-v2"}


def test_a_dependent_whose_known_input_changed_during_apply_is_refused_for_a_new_plan(h: Harness) -> None:
    def program(label: str) -> Any:
        def declare_it() -> None:
            a = Thing("a", label=label)
            c = Thing("c") if label == "two" else None
            Thing("b", ref=a.arn, label=c.arn if c is not None else "")
        return declare_it

    assert h.up(program("one")).ok
    renumbering = Renumbering()
    renumbering.objects, renumbering.count = h.providers.thing.objects, h.providers.thing.count
    h.providers.thing = renumbering
    result = h.up(program("two"))
    assert [f.urn for f in result.failures] == [P + "b"]
    assert result.failures[0].message.endswith(": ref came out different from the plan")
    assert result.failures[0].hint == "make a new plan: something it depended on changed"


def test_a_retained_resource_is_forgotten_without_a_provider_call(h: Harness) -> None:
    assert h.up(lambda: Thing("a", opts=sw.ResourceOptions(retain_on_delete=True))).ok
    result = h.up(lambda: None)
    assert result.ok and result.done == {"delete (retained)": 1} and h.providers.thing.calls["delete"] == 0
    assert h.recorded() == {} and set(h.providers.thing.objects) == {"a-1"}
    assert [(c.urn, c.type, c.op) for c in _changes(h)] == [(P + "a", "fake:Thing", "delete (retained)")]


class Rotating(ThingProvider):
    """Each update hands back a new secret arn; the first update is throttled."""

    secret_outputs = frozenset({"arn"})
    computed_on_update = frozenset({"arn"})

    def __init__(self) -> None:
        super().__init__()
        self.throttled = True

    def create(self, ctx: OperationContext, inputs: Any) -> Created:
        if inputs.get("ref") == "arn:a-1-rotated":
            raise ProviderError(f"cannot use {inputs['ref']}")
        return super().create(ctx, inputs)

    def update(self, ctx: OperationContext, id: str, old_inputs: Any, old_outputs: Any, new_inputs: Any) -> Any:
        if self.throttled:
            self.throttled = False
            raise ProviderError.transient("Throttling: Rate exceeded")
        super().update(ctx, id, old_inputs, old_outputs, new_inputs)
        return {"arn": f"arn:{id}-rotated"}


def test_an_update_is_retried_recorded_with_its_diff_and_its_new_secret_is_masked(tmp_path: Path) -> None:
    h, events = _keyed(tmp_path, Rotating())
    assert h.up(lambda: Thing("a", label="one")).ok

    def program() -> None:
        a = Thing("a", label="two")
        Thing("b", ref=a.arn)
        Thing("c", ref=a.id, label=a.arn)

    result = h.up(program)
    assert events.retries == [(P + "a", "update", 1)]
    assert [(f.urn, f.message.partition(": ")[2]) for f in result.failures] == [(P + "b", "cannot use [secret]")]
    assert h.recorded()["c"].inputs["ref"] == "a-1"
    update = next(c for c in _changes(h) if c.urn == P + "a")
    assert (update.type, update.op) == ("fake:Thing", "update")
    assert [(d["path"], d["old"], d["new"]) for d in update.diffs] == [("label", "one", "two")]


@pytest.mark.parametrize(("slow_commits", "prepared"), [(False, 4), (True, 8)])
def test_ctrl_c_during_a_parallel_apply_shows_only_the_steps_prepared_ahead(
        tmp_path: Path, slow_commits: bool, prepared: int) -> None:
    """Two call slots: two steps ahead of each (four with commits that wait on the
    network) are shown starting; the ones still queued end "not started" and no other
    step starts after Ctrl-C."""
    h = Harness(tmp_path)
    events = _events(h)
    gate = h.providers.thing.before_create = Gate()
    stop = asyncio.Event()

    async def scenario() -> Any:
        applier, writer = h.applier(many(10), 2, stop)
        writer.slow_commits = slow_commits
        applying = asyncio.ensure_future(applier.run())
        await gate.until_held(2)
        await asyncio.sleep(0.1)
        stop.set()
        await asyncio.sleep(0.05)
        gate.open()
        return h.finish(writer, await applying)

    began = time.monotonic()
    result = asyncio.run(scenario())
    took = time.monotonic() - began
    assert result.interrupted and result.done == {"create": 2} and len(result.not_started) == 8
    assert all(0 <= e[3] <= took for e in events.finished), "each step's time is part of the run's"
    assert len(events.started) == prepared
    assert sorted(e[2] for e in events.finished) == ["not started"] * (prepared - 2) + ["ok"] * 2
    assert h.store.snapshot("dev").pending == []


class Deletes(ThingProvider):
    """Notes what each delete was given and the pending records at that moment;
    throttles the first delete."""

    def __init__(self, store: Any) -> None:
        super().__init__()
        self.store = store
        self.deletes: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self.pending: list[PendingOperation] = []
        self.throttled = True

    def delete(self, ctx: OperationContext, id: str, inputs: Any, outputs: Any) -> None:
        self.deletes.append((id, dict(inputs), dict(outputs)))
        self.pending.extend(self.store.snapshot("dev").pending)
        if self.throttled:
            self.throttled = False
            raise ProviderError.transient("Throttling: Rate exceeded")
        super().delete(ctx, id, inputs, outputs)


def test_a_delete_is_pending_during_its_call_given_what_was_recorded_retried_and_recorded(h: Harness) -> None:
    assert h.up(lambda: Thing("a", label="one")).ok
    deletes = Deletes(h.store)
    deletes.objects = h.providers.thing.objects
    h.providers.thing = deletes
    events = _events(h)
    a = h.recorded()["a"]
    started = time.time()

    result = h.up(lambda: None)

    assert result.ok and result.done == {"delete": 1} and deletes.objects == {}
    assert deletes.deletes == [("a-1", a.inputs, a.outputs)] * 2
    assert events.retries == [(P + "a", "delete", 1)]
    assert {(op.urn, op.op, op.resource_id, tuple(sorted(op.inputs.items()))) for op in deletes.pending} == {
        (P + "a", "delete", "a-1", tuple(sorted(a.inputs.items())))}
    assert all(started <= op.started_at <= time.time() for op in deletes.pending)
    assert h.recorded() == {} and h.store.snapshot("dev").pending == []
    assert [(c.urn, c.type, c.op) for c in _changes(h)] == [(P + "a", "fake:Thing", "delete")]


def _first(zone: str) -> Any:
    return lambda: Thing("a", zone=zone, opts=sw.ResourceOptions(delete_before_replace=True))


def test_a_delete_first_replacement_is_recorded_once_as_a_replacement(h: Harness) -> None:
    assert h.up(_first("a")).ok
    result = h.up(_first("b"))
    assert result.ok and result.done == {"delete-replaced": 1, "replace": 1}
    assert h.recorded()["a"].id == "a-2" and set(h.providers.thing.objects) == {"a-2"}
    assert [(c.urn, c.op) for c in _changes(h)] == [(P + "a", "replace")]


def test_a_delete_first_replacement_whose_create_fails_forgets_the_deleted_object(h: Harness) -> None:
    assert h.up(_first("a")).ok
    h.providers.thing.fail["a"] = -1
    result = h.up(_first("b"))
    assert [(f.urn, f.action) for f in result.failures] == [(P + "a", "replace")]
    assert h.providers.thing.objects == {} and h.recorded() == {}
    assert h.store.snapshot("dev").pending == []


class Echoing(Rotating):
    """Refuses a create labelled "echo" with a message naming the (rotated) secret arn
    of the object it refers to; answers a create labelled "note" with an output naming it."""

    def __init__(self, suffix: str = "-rotated") -> None:
        super().__init__()
        self.suffix = suffix

    def create(self, ctx: OperationContext, inputs: Any) -> Created:
        held = f"arn:{inputs['ref']}{self.suffix}"
        if inputs.get("label") == "echo":
            raise ProviderError(f"{inputs['ref']} is held by {held}")
        created = super().create(ctx, inputs)
        if inputs.get("label") == "note":
            return Created(created.id, {**created.outputs, "note": f"next to {held}"})
        return created


@pytest.mark.parametrize(("suffix", "label"), [("-rotated", "two"), ("", "one")], ids=["updated", "recorded"])
def test_a_secret_output_returned_by_an_update_or_recorded_is_masked_in_another_steps_error(
        tmp_path: Path, suffix: str, label: str) -> None:
    """a's secret arn is rotated by its update, or was recorded and a stays unchanged;
    d's provider names it in its error."""
    h, events = _keyed(tmp_path, Echoing(suffix=suffix))
    assert h.up(lambda: Thing("a", label="one")).ok

    def program() -> None:
        a = Thing("a", label=label)
        Thing("d", ref=a.id, label="echo")

    result = h.up(program)
    assert [(f.urn, f.message.partition(": ")[2]) for f in result.failures] == [(P + "d", "a-1 is held by [secret]")]
    assert [e[4] for e in events.finished if e[0] == P + "d"] == [result.failures[0].message]


def test_renamed_resources_keep_their_objects_and_each_rename_is_recorded(h: Harness) -> None:
    assert h.up(lambda: [Thing("old-name", label="r"), Thing("old-other")]).ok
    before = h.recorded()["old-name"].id

    def renamed() -> None:
        Thing("renamed", label="r", opts=sw.ResourceOptions(aliases=[P + "old-name"]))
        Thing("other", opts=sw.ResourceOptions(aliases=[P + "old-other"]))

    result = h.up(renamed)
    assert result.ok and result.done == {"rename": 2, "update options": 2}
    assert set(h.recorded()) == {"renamed", "other"} and h.recorded()["renamed"].id == before
    assert h.recorded()["renamed"].options == {"aliases": [P + "old-name"]}
    [change] = [c for c in _changes(h) if c.op == "rename" and c.urn == P + "renamed"]
    assert (change.urn, change.type) == (P + "renamed", "fake:Thing")
    assert change.diffs == [{"path": "urn", "kind": "update", "old": P + "old-name", "new": P + "renamed"}]


class Creates(ThingProvider):
    """Notes the pending records at the moment of each create; throttles the first."""

    def __init__(self, store: Any) -> None:
        super().__init__()
        self.store = store
        self.pending: list[PendingOperation] = []
        self.fail = {"b": 1}

    def create(self, ctx: OperationContext, inputs: Any) -> Created:
        self.pending.extend(self.store.snapshot("dev").pending)
        return super().create(ctx, inputs)


def test_a_create_is_pending_with_its_parent_and_dependencies_retried_and_recorded_with_its_diff(h: Harness) -> None:
    class Box(sw.Component, type="test:Box"):
        def __init__(self, name: str, ref: Any, zone: str) -> None:
            super().__init__(name)
            Thing("b", ref=ref, zone=zone, opts=sw.ResourceOptions(parent=self, ignore_changes=["label"]))

    def program(zone: str) -> Any:
        return lambda: Box("box", Thing("a").arn, zone)

    assert h.up(program("a")).ok
    creates = Creates(h.store)
    creates.objects, creates.count = h.providers.thing.objects, h.providers.thing.count
    h.providers.thing = creates
    events = _events(h)
    started = time.time()
    result = h.up(program("b"))
    assert result.ok and result.done == {"replace": 1, "delete-replaced": 1}
    b = next(r for r in h.store.snapshot("dev").resources.values() if r.urn.endswith("b"))
    assert b.options == {"ignore_changes": ["label"]} and b.parent is not None
    made = [op for op in creates.pending if op.op == "create"]
    assert {(op.urn, op.parent, tuple(op.deps)) for op in made} == {(b.urn, b.parent, (P + "a",))}
    assert all(started <= op.started_at <= time.time() for op in made)
    assert events.retries == [(b.urn, "create", 1)]
    [change] = [c for c in _changes(h) if c.op == "replace"]
    assert [(d["path"], d["kind"], d["old"], d["new"]) for d in change.diffs] == [("zone", "update", "a", "b")]


def test_a_secret_returned_by_a_create_is_masked_in_later_errors_and_outputs(tmp_path: Path) -> None:
    h, events = _keyed(tmp_path, Echoing(suffix=""))

    def program() -> None:
        a = Thing("a", label="one")
        Thing("d", ref=a.id, label="echo")
        Thing("n", ref=a.id, label="note")

    began = time.monotonic()
    result = h.up(program)
    took = time.monotonic() - began
    assert all(0 <= e[3] <= took for e in events.finished), "each step's time is part of the run's"
    assert sorted(e[2] for e in events.finished) == ["failed", "ok", "ok"]
    assert [(f.urn, f.message.partition(": ")[2]) for f in result.failures] == [(P + "d", "a-1 is held by [secret]")]
    assert [e[4] for e in events.finished if e[0] == P + "d"] == [result.failures[0].message]
    note = h.recorded()["n"].outputs["note"]
    assert isinstance(note, Secret) and note.value == "next to arn:a-1"


def test_an_input_made_secret_by_an_output_known_only_at_apply_stays_secret_in_the_record(tmp_path: Path) -> None:
    h = keyed(Harness(tmp_path))

    def program() -> None:
        a = Thing("a")
        Thing("b", ref=a.arn, label=sw.secret("hunter2"))

    assert h.up(program).ok
    b = h.recorded()["b"]
    assert b.inputs["ref"] == "arn:a-1" and isinstance(b.inputs["label"], Secret)
    assert b.inputs["label"].value == "hunter2"


class Timeouts(ThingProvider):
    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[float] = []

    def create(self, ctx: OperationContext, inputs: Any) -> Created:
        self.timeouts.append(ctx.timeout)
        return super().create(ctx, inputs)


@pytest.mark.parametrize("inline", [None, False, True])
def test_an_applier_walks_in_parallel_unless_told_in_line_and_gives_providers_its_timeout(
        tmp_path: Path, inline: bool | None) -> None:
    h = Harness(tmp_path)
    h.providers.thing = timeouts = Timeouts()
    template, writer = h.applier(many(2), 2, None)
    options = ApplyOptions(parallel=2, retry=template.options.retry, timeout=42.0)
    args = (template.plan, h.providers, writer, options, h.sink, template.resolver)
    if inline:
        result = Applier(*args, inline=True).run_inline()
    else:
        gate = timeouts.before_create = Gate()
        applier = Applier(*args) if inline is None else Applier(*args, inline=False)

        async def scenario() -> Any:
            applying = asyncio.ensure_future(applier.run())
            await gate.until_held(2)
            gate.open()
            return await applying

        result = asyncio.run(scenario())
        assert gate.peak == 2, "both creates run at once"
    assert h.finish(writer, result).done == {"create": 2}
    assert timeouts.timeouts == [42.0, 42.0]


def test_a_replacement_newly_using_a_delete_first_replacement_can_be_ordered() -> None:
    """y did not use x before this plan: x's old object need not wait for y's."""
    x = Step(urn=P + "x", type="fake:Thing", op=Op.REPLACE, replace_keys=("zone",), old_id="1",
             delete_before_replace=True)
    y = Step(urn=P + "y", type="fake:Thing", op=Op.REPLACE, replace_keys=("zone",), deps=(P + "x",), old_id="2")
    action_graph(_plan(x, y))  # refused with a PlanError when an order is wrongly missed


def _random_plan(rng: random.Random, size: int) -> Plan:
    """Steps of every kind over a random DAG, recorded dependencies and new ones apart."""
    steps = []
    for i in range(size):
        op = rng.choice([Op.CREATE, Op.UPDATE, Op.SAME, Op.REPLACE, Op.REPLACE, Op.DELETE])
        earlier = [P + str(j) for j in range(i)]
        old = tuple(rng.sample(earlier, min(len(earlier), rng.randint(0, 2)))) if op is not Op.CREATE else ()
        new = tuple(rng.sample(earlier, min(len(earlier), rng.randint(0, 2)))) if op is not Op.DELETE else ()
        steps.append(Step(urn=P + str(i), type="fake:Thing", op=op, deps=new, old_deps=old,
                          old_id=None if op is Op.CREATE else str(i),
                          delete_before_replace=op is Op.REPLACE and rng.random() < 0.5))
    return _plan(*steps)


def test_delete_first_chains_waiting_for_their_needs_never_make_an_orderable_plan_unorderable() -> None:
    """Each chain's deletes wait behind a barrier for the creates that wait for no delete:
    on random plans, every plan that could be ordered still can, every delete of a chain
    comes after what the chain's creates need, and nothing else waits for a barrier."""
    rng = random.Random(7)
    checked = barriers = 0
    for _ in range(400):
        plan = _random_plan(rng, rng.randint(2, 14))
        try:
            graph = action_graph(plan)
        except PlanError:
            continue
        checked += 1
        barriers += any(action[0] == "W" for action in graph.deps)
        order = {action: i for i, action in enumerate(graph.topological_order())}
        for action, deps in graph.deps.items():
            assert all(order[d] < order[action] for d in deps)
            if action[0] != "D":
                assert all(d[0] != "W" for d in deps)
    assert checked > 200 and barriers > 50
    # the barrier is there when a chain needs something
    x = Step(urn=P + "x", type="fake:Thing", op=Op.REPLACE, replace_keys=("zone",), old_id="1",
             deps=(P + "new",), delete_before_replace=True)
    new = Step(urn=P + "new", type="fake:Thing", op=Op.CREATE)
    graph = action_graph(_plan(new, x))
    assert graph.deps[("D", P + "x")] == [("W", P + "x")] and graph.deps[("W", P + "x")] == [("C", P + "new")]


class Telling(ThingProvider):
    """Errors that repeat what they were given: a create of "hunter2", the delete of old-1."""

    def create(self, ctx: OperationContext, inputs: Any) -> Created:
        if inputs.get("label") == "hunter2":
            raise ProviderError(f"{ctx.name} cannot use {inputs['label']}")
        return super().create(ctx, inputs)

    def delete(self, ctx: OperationContext, id: str, inputs: Any, outputs: Any) -> None:
        if id == "old-1":
            raise ProviderError(f"old-1 still holds {inputs['label']}")
        super().delete(ctx, id, inputs, outputs)


def _failures(result: Any) -> list[tuple[str, str]]:
    return [(f.urn, f.message.partition(": ")[2] or f.message) for f in result.failures]


def test_a_secret_stack_output_new_or_recorded_is_masked_in_errors(tmp_path: Path) -> None:
    h = keyed(Harness(tmp_path))
    h.providers.thing = Telling()

    def program() -> None:
        sw.export("token", sw.secret("hunter2"))
        Thing("d", label="hunter2")

    assert _failures(h.up(program)) == [(P + "d", "d cannot use [secret]")]
    writer = h.store.begin("dev", "up", "tester")
    writer.finish("succeeded", {"token": Secret("hunter2")})
    assert _failures(h.up(lambda: Thing("d", label="hunter2"))) == [(P + "d", "d cannot use [secret]")]


def test_a_secret_input_of_an_old_half_is_masked_when_its_delete_fails(tmp_path: Path) -> None:
    h = keyed(Harness(tmp_path))
    h.providers.thing = telling = Telling()
    assert h.up(lambda: Thing("a", label="one")).ok
    writer = h.store.begin("dev", "up", "crashed")
    writer.record_pending(PendingOperation(token="t-old", urn=P + "a", type="fake:Thing", op="delete",
                                           inputs={"label": Secret("hunter2"), "zone": "a", "ref": ""},
                                           resource_id="old-1", started_at=1.0))
    writer.finish("failed", None)
    telling.objects["old-1"] = {"label": "hunter2", "zone": "a", "ref": ""}
    assert _failures(h.up(lambda: Thing("a", label="one"))) == [(P + "a", "old-1 still holds [secret]")]
