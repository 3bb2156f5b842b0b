"""Apply seen from outside: data lookups resolved at apply time, and the refusal of a
plan whose deletes and replacements cannot be ordered, word for word."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackwright.engine.apply import action_graph
from stackwright.engine.events import EventSink
from stackwright.errors import CreatedButFailed, PlanError, ProviderError
from stackwright.plan.plan import Op, Plan, Step
from stackwright.providers.protocol import Created, OperationContext, ReadResult
from unit.fakes import Thing, ThingProvider
from unit.test_engine import P, Harness


class Lookups(ThingProvider):
    """Notes the resource, id and arguments of every read, and throttles the first few."""

    def __init__(self, throttled: int = 0) -> None:
        super().__init__()
        self.throttled = throttled
        self.reads: list[tuple[str, str, str | None, dict[str, Any], dict[str, Any]]] = []

    def read(self, ctx: OperationContext, id: str | None, inputs: Any, outputs: Any) -> ReadResult | None:
        self.reads.append((ctx.urn, ctx.name, id, dict(inputs), dict(outputs)))
        if self.throttled:
            self.throttled -= 1
            raise ProviderError.transient("Throttling: Rate exceeded")
        return super().read(ctx, id, inputs, outputs)


class Retries(EventSink):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int]] = []

    def step_retrying(self, urn: str, action: str, attempt: int, delay: float, error: str) -> None:
        self.seen.append((urn, action, attempt))


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    harness = Harness(tmp_path)
    harness.providers.thing = Lookups()
    return harness


def test_a_lookup_of_an_id_made_in_the_same_run_reads_it_once_it_exists(h: Harness) -> None:
    def program() -> None:
        a = Thing("a", label="made")
        given = Thing.get("given", a.id)
        Thing("user", label=given.label)

    result = h.up(program)

    assert result.ok and result.done == {"create": 2, "read": 1}
    rec = h.recorded()
    assert rec["given"].id == rec["a"].id and rec["user"].inputs["label"] == "made"
    assert rec["given"].external and rec["given"].retain_on_delete
    lookups = h.providers.thing
    assert isinstance(lookups, Lookups)
    assert lookups.reads == [(P + "given", "given", rec["a"].id, {}, {})]


def test_a_throttled_lookup_is_retried_and_reported_as_a_read_of_its_resource(h: Harness) -> None:
    h.providers.thing = Lookups(throttled=1)
    h.providers.thing.objects["given-1"] = {"label": "shared", "zone": "a", "ref": ""}
    h.sink = sink = Retries()  # type: ignore[assignment]

    result = h.up(lambda: Thing.get("given", "given-1"))

    assert result.ok and sink.seen == [(P + "given", "read", 1)]
    assert h.recorded()["given"].inputs == {"label": "shared", "zone": "a", "ref": ""}


def test_an_unorderable_plan_is_refused_naming_each_action_and_cause() -> None:
    a = Step(urn=P + "a", type="fake:Thing", op=Op.REPLACE, replace_keys=("zone", "label"), deps=(P + "b",),
             old_id="1")
    b = Step(urn=P + "b", type="fake:Thing", op=Op.REPLACE, replace_keys=("label",), deps=(P + "a",), old_id="2")
    c = Step(urn=P + "c", type="fake:Thing", op=Op.UPDATE, deps=(), old_id="3")
    plan = Plan(stack="dev", project="test", lineage="l", base_serial=1, steps=(a, b, c))
    with pytest.raises(PlanError) as info:
        action_graph(plan)
    err = info.value
    names = err.message.removeprefix("the plan's deletes and replacements cannot be ordered: ").split(" (")[0]
    assert set(names.split(" -> ")) == {"create a", "create b"}
    assert err.message.endswith(" (a is replaced because zone, label changed; b is replaced because label changed)") \
        or err.message.endswith(" (b is replaced because label changed; a is replaced because zone, label changed)")
    assert err.resource in (P + "a", P + "b") and err.resource == P + names.split(" -> ")[0].split(" ")[1]
    assert err.hint == "apply the change in two steps, or set delete_before_replace on the resources named"


class Unhealthy(ThingProvider):
    """Makes every object, then says the one named ``sick`` never became healthy."""

    def create(self, ctx: OperationContext, inputs: Any) -> Created:
        made = super().create(ctx, inputs)
        if ctx.name == "sick":
            raise CreatedButFailed("sick never became healthy", made.id, made.outputs)
        return made


def test_a_create_that_made_its_object_and_then_failed_records_it_and_fails_the_step(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.providers.thing = provider = Unhealthy()

    result = h.up(lambda: (Thing("sick", label="x"), Thing("well", label="y")))

    assert not result.ok and [f.message.endswith(": sick never became healthy") for f in result.failures] == [True]
    sick = h.recorded()["sick"]
    assert sick.id in provider.objects and sick.outputs["arn"] == f"arn:{sick.id}"
    assert h.store.snapshot("dev").pending == []
    assert h.up(lambda: Thing("well", label="y")).ok
    assert sick.id not in provider.objects, "dropped from the program, it is deleted"


class Skips(EventSink):
    def __init__(self) -> None:
        self.skipped: dict[str, str | None] = {}

    def step_finished(self, urn: str, action: str, status: str, seconds: float, error: str | None = None) -> None:
        if status == "skipped":
            self.skipped[urn] = error


@pytest.mark.parametrize("inline", [False, True])
def test_a_removed_resource_is_deleted_only_after_every_new_one_is_created(tmp_path: Path, inline: bool) -> None:
    h = Harness(tmp_path, inline=inline)
    h.up(lambda: (Thing("old", label="x"), Thing("kept", label="k")))
    h.providers.thing.log.clear()

    result = h.up(lambda: (Thing("new", label="x"), Thing("kept", label="k2"), Thing("other", label="o")),
                  parallel=1)

    assert result.ok
    log = h.providers.thing.log
    assert log[-1] == ("delete", "old") and sorted(log[:-1]) == [("create", "new"), ("create", "other"),
                                                                ("update", "kept")]


@pytest.mark.parametrize("inline", [False, True])
def test_when_a_create_fails_the_resources_removed_from_the_program_stay(tmp_path: Path, inline: bool) -> None:
    h = Harness(tmp_path, inline=inline)
    h.up(lambda: Thing("old", label="x"))
    h.providers.thing.fail["new"] = -1
    h.sink = sink = Skips()  # type: ignore[assignment]

    result = h.up(lambda: Thing("new", label="x"))

    assert not result.ok and h.providers.thing.calls["delete"] == 0
    assert set(h.recorded()) == {"old"}
    assert sink.skipped == {P + "old": "new failed (resources removed from the program are deleted last)"}


def test_a_removed_resource_still_waits_for_what_used_it_and_a_destroy_needs_no_barrier() -> None:
    user = Step(urn=P + "user", type="fake:Thing", op=Op.UPDATE, deps=(), old_deps=(P + "gone",))
    gone = Step(urn=P + "gone", type="fake:Thing", op=Op.DELETE)
    graph = action_graph(Plan(stack="dev", project="test", lineage="l", base_serial=1, steps=(user, gone)))
    assert set(graph.deps[("D", P + "gone")]) == {("C", P + "user"), ("W", "")}

    both = (Step(urn=P + "a", type="fake:Thing", op=Op.DELETE), Step(urn=P + "b", type="fake:Thing", op=Op.DELETE))
    assert all(dep[0] != "W" for deps in action_graph(Plan(stack="dev", project="test", lineage="l", base_serial=1, steps=both)).deps.values() for dep in deps)
