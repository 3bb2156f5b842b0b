"""Applying plans with an in-memory provider and the real SQLite store."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import stackwright as sw
from stackwright.engine.apply import Applier, ApplyOptions, ApplyResult
from stackwright.engine.events import EventSink
from stackwright.engine.calls import ProviderCalls
from stackwright.engine.recovery import recover
from stackwright.engine.retry import RetryPolicy
from stackwright.model.output import resolve_value
from stackwright.plan.planner import make_plan
from stackwright.state.records import PendingOperation
from stackwright.state.sqlite import SqliteStateStore
from stackwright.testing import declare
from unit.fakes import FakeProviders, Thing

P = "dev::test::fake:Thing::"


class Recorder(EventSink):
    def __init__(self) -> None:
        self.retries: list[tuple[str, int, float]] = []

    def step_retrying(self, urn: str, action: str, attempt: int, delay: float, error: str) -> None:
        self.retries.append((urn, attempt, delay))


class Harness:
    def __init__(self, tmp: Path, inline: bool = False) -> None:
        self.inline = inline
        """Apply one step at a time without an event loop, as for in-process providers."""
        self.store = SqliteStateStore(tmp / "state.db")
        self.store.create_stack("dev")
        self.providers = FakeProviders()
        self.sleeps: list[float] = []
        self.sink = Recorder()

    async def _sleep(self, delay: float) -> None:
        self.sleeps.append(delay)

    def up(self, program: Callable[[], Any], parallel: int = 8) -> ApplyResult:
        if self.inline:
            applier, writer = self.applier(program, parallel, None)
            return self.finish(writer, applier.run_inline())
        return asyncio.run(self.up_async(program, parallel))

    async def up_async(self, program: Callable[[], Any], parallel: int = 8,
                       stop: asyncio.Event | None = None) -> ApplyResult:
        applier, writer = self.applier(program, parallel, stop)
        return self.finish(writer, await applier.run())

    def applier(self, program: Callable[[], Any], parallel: int,
                stop: asyncio.Event | None) -> tuple[Applier, Any]:
        desired = declare(program)
        plan = make_plan(desired, self.store.snapshot("dev"), self.providers)
        writer = self.store.begin("dev", "up", "tester")
        policy = RetryPolicy(max_attempts=5, rng=random.Random(1), sleep=self._sleep, wait=self.sleeps.append)

        def resolver(urn: str, lookup: Any) -> Any:
            """As `up` resolves: a lookup's source is its id; the known values of the
            inputs given Outputs are checked against their types."""
            resource = desired.resources[urn]
            source = {"id": resource.read_id} if resource.read_id is not None else resource.inputs
            value = resolve_value(source, lambda r, p: lookup(r.urn, p))
            if resource.read_id is None:
                resource.check_resolved(value)
            return value

        applier = Applier(plan, self.providers, writer, ApplyOptions(parallel=parallel, retry=policy),
                          self.sink, resolver, stop, inline=self.inline)
        return applier, writer

    @staticmethod
    def finish(writer: Any, result: ApplyResult) -> ApplyResult:
        writer.finish("succeeded" if result.ok else "failed", {})
        return result

    def recover(self) -> Any:
        """What `up` does first: resolve the operations an earlier run left pending."""
        writer = self.store.begin("dev", "up", "tester")

        async def run() -> Any:
            calls = ProviderCalls(2, RetryPolicy(), EventSink())
            try:
                return await recover(self.store.snapshot("dev"), self.providers, writer, calls)
            finally:
                calls.close()

        report = asyncio.run(run())
        writer.finish("succeeded", None)
        return report

    def recorded(self) -> dict[str, Any]:
        return {urn.removeprefix(P): r for urn, r in self.store.snapshot("dev").resources.items()}


@pytest.fixture(params=["parallel", "in-line"])
def h(tmp_path: Path, request: pytest.FixtureRequest) -> Harness:
    """Every behaviour holds for both walks: the parallel one and the one-step-at-a-time
    one used when every call is in-process."""
    return Harness(tmp_path, inline=request.param == "in-line")


@pytest.fixture
def hp(tmp_path: Path) -> Harness:
    """The parallel walk only: bounded parallelism, interrupts while calls run."""
    return Harness(tmp_path)


def chain() -> None:
    a = Thing("a", label="x")
    b = Thing("b", ref=a.arn)
    Thing("c", ref=b.arn)


def test_outputs_flow_to_dependents_in_order(h: Harness) -> None:
    result = h.up(chain)
    assert result.ok and result.done == {"create": 3}
    rec = h.recorded()
    assert rec["b"].inputs["ref"] == rec["a"].outputs["arn"]
    assert rec["c"].inputs["ref"] == rec["b"].outputs["arn"]
    assert [n for _, n in h.providers.thing.log] == ["a", "b", "c"]
    assert h.store.snapshot("dev").pending == []


def test_failure_skips_dependents_but_independent_branches_continue(h: Harness) -> None:
    h.providers.thing.fail["b"] = -1

    def program() -> None:
        chain()
        Thing("independent")

    result = h.up(program)
    assert [f.urn for f in result.failures] == [P + "b"] and "broken" in result.failures[0].message
    assert result.skipped == [P + "c"]
    assert set(h.recorded()) == {"a", "independent"}
    assert h.store.snapshot("dev").pending == []
    history = h.store.history("dev")
    assert history[-1].result == "failed"


def _arn_number(arn: str) -> str:
    return str(int(arn))  # an arn is no number: raises ValueError during apply


def test_a_callback_that_raises_during_apply_fails_its_step_naming_the_line(h: Harness) -> None:
    def program() -> None:
        a = Thing("a")
        b = Thing("b", ref=a.arn.apply(_arn_number))
        Thing("c", ref=b.arn)
        Thing("independent")

    result = h.up(program)
    assert not result.ok
    assert [f.urn for f in result.failures] == [P + "b"]
    line = _arn_number.__code__.co_firstlineno + 1
    message = result.failures[0].message
    assert f"test_engine.py:{line}" in message and "ValueError" in message and "arn:a-1" in message
    assert result.skipped == [P + "c"]
    assert set(h.recorded()) == {"a", "independent"}
    changes = h.store.checkpoint("dev", h.store.history("dev")[-1].number).changes
    assert [(c.urn, c.error) for c in changes if c.error] == [(P + "b", message)]


def test_a_callback_over_a_secret_keeps_the_secret_out_of_the_failure(h: Harness) -> None:
    def program() -> None:
        a = Thing("a")
        Thing("b", ref=sw.secret(a.arn).apply(_arn_number))

    result = h.up(program)
    message = result.failures[0].message
    assert "ValueError" in message and "arn:a-1" not in message and "secret" in message


def test_an_unexpected_error_in_a_step_is_recorded_as_its_failure(h: Harness) -> None:
    """A provider's ``check`` runs again at apply once the unknown inputs are known;
    whatever it raises fails that step only."""
    thing = h.providers.thing

    def check(inputs: Any) -> dict[str, Any]:
        if str(inputs.get("ref", "")).startswith("arn:"):
            raise RuntimeError("check bug")
        return dict(inputs)

    thing.check = check  # type: ignore[method-assign]

    def program() -> None:
        a = Thing("a")
        b = Thing("b", ref=a.arn)
        Thing("c", ref=b.arn)

    result = h.up(program)
    assert [f.urn for f in result.failures] == [P + "b"]
    assert "internal error: RuntimeError: check bug" in result.failures[0].message
    assert result.skipped == [P + "c"]
    assert set(h.recorded()) == {"a"}


class Gate:
    """Holds every create until ``open()``; counts how many are held at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.opened = threading.Event()
        self.held = 0
        self.peak = 0

    def __call__(self, name: str) -> None:
        with self.lock:
            self.held += 1
            self.peak = max(self.peak, self.held)
        self.opened.wait(timeout=30)
        with self.lock:
            self.held -= 1

    async def until_held(self, count: int) -> None:
        for _ in range(3000):
            if self.held >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"only {self.held} creates started, expected {count}")

    def open(self) -> None:
        self.opened.set()


def many(count: int) -> Callable[[], None]:
    def program() -> None:
        for i in range(count):
            Thing(f"t{i}")
    return program


def test_at_most_parallel_provider_calls_run_at_once(hp: Harness) -> None:
    gate = hp.providers.thing.before_create = Gate()

    async def scenario() -> ApplyResult:
        applying = asyncio.ensure_future(hp.up_async(many(12), parallel=3))
        await gate.until_held(3)
        await asyncio.sleep(0.2)  # room for a fourth call, were the bound broken
        gate.open()
        return await applying

    result = asyncio.run(scenario())
    assert result.ok and result.done == {"create": 12}
    assert gate.peak == 3


def test_interrupt_finishes_running_calls_and_withdraws_prepared_ones(hp: Harness) -> None:
    """Ctrl-C: the calls in flight finish and are recorded; steps prepared ahead of a
    free call slot are withdrawn, their pending records cleared; nothing else starts."""
    gate = hp.providers.thing.before_create = Gate()
    stop = asyncio.Event()

    async def scenario() -> ApplyResult:
        applying = asyncio.ensure_future(hp.up_async(many(10), parallel=2, stop=stop))
        await gate.until_held(2)
        await asyncio.sleep(0.1)  # the next steps are prepared and queued by now
        stop.set()
        await asyncio.sleep(0.05)
        gate.open()
        return await applying

    result = asyncio.run(scenario())
    assert result.interrupted and not result.ok
    assert result.done == {"create": 2} and hp.providers.thing.calls["create"] == 2
    assert len(result.not_started) == 8 and not result.failures and not result.skipped
    assert len(hp.recorded()) == 2
    assert hp.store.snapshot("dev").pending == []


def test_throttling_is_retried_with_growing_jittered_backoff(h: Harness) -> None:
    h.providers.thing.fail["a"] = 3
    result = h.up(lambda: Thing("a"))
    assert result.ok and h.providers.thing.calls["create"] == 4
    assert [attempt for _, attempt, _ in h.sink.retries] == [1, 2, 3]
    assert len(h.sleeps) == 3 and all(0 <= d <= 0.2 * 2 ** (i + 1) for i, d in enumerate(h.sleeps))
    assert len(h.providers.thing.objects) == 1


def test_retries_give_up_after_max_attempts(h: Harness) -> None:
    h.providers.thing.fail["a"] = 99
    result = h.up(lambda: Thing("a"))
    assert not result.ok and h.providers.thing.calls["create"] == 5
    assert h.recorded() == {}


def test_replacement_creates_before_deleting_by_default(h: Harness) -> None:
    h.up(lambda: Thing("a"))
    h.providers.thing.log.clear()
    result = h.up(lambda: Thing("a", zone="b"))
    assert result.ok and h.providers.thing.log == [("create", "a"), ("delete", "a")]
    assert len(h.providers.thing.objects) == 1 and h.recorded()["a"].inputs["zone"] == "b"


def test_delete_before_replace_deletes_first(h: Harness) -> None:
    h.up(lambda: Thing("a"))
    h.providers.thing.log.clear()
    h.up(lambda: Thing("a", zone="b", opts=sw.ResourceOptions(delete_before_replace=True)))
    assert h.providers.thing.log == [("delete", "a"), ("create", "a")]
    assert len(h.providers.thing.objects) == 1


def test_a_delete_first_chain_applies_in_one_run(h: Harness) -> None:
    """A cluster replaced delete-first, and an OIDC provider that uses it replaced too:
    the provider goes first, the cluster is recreated, then the provider."""
    def program(zone: str) -> Callable[[], None]:
        def declare_it() -> None:
            cluster = Thing("cluster", zone=zone, opts=sw.ResourceOptions(delete_before_replace=True))
            Thing("oidc", zone=zone, ref=cluster.arn)
        return declare_it

    assert h.up(program("a")).ok
    h.providers.thing.log.clear()
    result = h.up(program("b"))
    assert result.ok and result.done == {"replace": 2, "delete-replaced": 2}
    assert h.providers.thing.log == [("delete", "oidc"), ("delete", "cluster"),
                                     ("create", "cluster"), ("create", "oidc")]
    rec = h.recorded()
    assert rec["oidc"].inputs["ref"] == rec["cluster"].outputs["arn"] and len(h.providers.thing.objects) == 2


def chain_on_subnet(zone: str) -> Callable[[], None]:
    """The platform's shape: a cluster replaced delete-first when its subnet is replaced
    (create-first), and an OIDC provider replaced with the cluster."""
    def declare_it() -> None:
        subnet = Thing("subnet", zone=zone)
        cluster = Thing("cluster", zone=zone, ref=subnet.arn, opts=sw.ResourceOptions(delete_before_replace=True))
        Thing("oidc", zone=zone, ref=cluster.arn)
    return declare_it


@pytest.mark.parametrize("inline", [False, True], ids=["walk", "inline"])
def test_a_delete_first_chain_is_not_deleted_when_what_it_needs_fails_to_be_created(
        tmp_path: Path, inline: bool) -> None:
    """The new subnet cannot be made: the cluster and its OIDC provider are never deleted
    (they could not be created again), and the next run applies the whole change."""
    h = Harness(tmp_path, inline=inline)
    thing = h.providers.thing
    assert h.up(chain_on_subnet("a")).ok
    before = dict(thing.objects)
    thing.log.clear()
    thing.fail["subnet"] = -1

    failed = h.up(chain_on_subnet("b"))

    assert [f.urn for f in failed.failures] == [P + "subnet"] and "broken" in failed.failures[0].message
    assert sorted(failed.skipped) == [P + "cluster"] * 2 + [P + "oidc"] * 2 + [P + "subnet"]  # and its old half
    assert thing.log == [] and thing.objects == before
    assert h.store.snapshot("dev").pending == []
    assert all(r.inputs["zone"] == "a" for r in h.recorded().values())

    thing.fail.clear()
    result = h.up(chain_on_subnet("b"))
    assert result.ok and thing.log[:4] == [("create", "subnet"), ("delete", "oidc"), ("delete", "cluster"),
                                           ("create", "cluster")]
    assert sorted(thing.log[4:]) == [("create", "oidc"), ("delete", "subnet")]
    assert len(thing.objects) == 3 and all(r.inputs["zone"] == "b" for r in h.recorded().values())


def v1() -> None:
    a = Thing("a")
    Thing("b", ref=a.arn)


def v2() -> None:
    """v1 with ``a`` replaced (its zone forces replacement)."""
    a = Thing("a", zone="b")
    Thing("b", ref=a.arn)


def test_replacing_a_dependency_updates_dependents_before_old_half_is_deleted(h: Harness) -> None:
    h.up(v1)
    h.providers.thing.log.clear()
    assert h.up(v2).ok
    assert h.providers.thing.log == [("create", "a"), ("update", "b"), ("delete", "a")]
    rec = h.recorded()
    assert rec["b"].inputs["ref"] == rec["a"].outputs["arn"]


def test_old_half_left_by_a_failed_run_is_deleted_once_its_dependents_moved(h: Harness) -> None:
    """b refers to a; a is replaced, but b's update fails, so a's old object stays in
    use and is not deleted. The next plan lists it; `up` moves b first, then deletes it
    (this cloud refuses to delete an object in use)."""
    thing = h.providers.thing
    thing.refuse_in_use = True

    h.up(v1)
    old_a = h.recorded()["a"].id
    thing.fail_update.add("b")
    failed = h.up(v2)
    assert [f.urn for f in failed.failures] == [P + "b"] and failed.skipped == [P + "a"]
    assert old_a in thing.objects and h.recorded()["a"].id != old_a
    assert not h.recover().anything and old_a in thing.objects  # recovery cannot order it
    plan = make_plan(declare(v2), h.store.snapshot("dev"), h.providers)
    assert [(o.urn, o.id) for o in plan.leftovers] == [(P + "a", old_a)]
    assert plan.counts() == {"update": 1, "same": 1, "delete-replaced": 1}

    thing.fail_update.clear()
    thing.log.clear()
    result = h.up(v2)
    assert result.ok and result.done == {"update": 1, "delete-replaced": 1}
    assert thing.log == [("update", "b"), ("delete", "a")]
    assert old_a not in thing.objects and len(thing.objects) == 2
    assert h.store.snapshot("dev").pending == []
    assert not make_plan(declare(v2), h.store.snapshot("dev"), h.providers).has_changes


def test_deletes_run_in_reverse_dependency_order(h: Harness) -> None:
    h.up(chain)
    h.providers.thing.log.clear()
    assert h.up(lambda: None).ok
    assert h.providers.thing.log == [("delete", "c"), ("delete", "b"), ("delete", "a")]
    assert h.recorded() == {} and h.providers.thing.objects == {}


def test_pending_create_is_adopted_not_duplicated(h: Harness) -> None:
    oid = "a-1"
    h.providers.thing.objects[oid] = {"label": "", "zone": "a", "ref": ""}
    original_read = h.providers.thing.read
    h.providers.thing.read = lambda ctx, id, inputs, outputs: original_read(ctx, id or oid, inputs, outputs)  # type: ignore[method-assign]
    writer = h.store.begin("dev", "up", "tester")
    writer.record_pending(PendingOperation(token="t", urn=P + "a", type="fake:Thing", op="create",
                                           inputs={"label": "", "zone": "a", "ref": ""}))
    writer.finish("succeeded", None)

    report = h.recover()
    assert report.adopted == [P + "a"]
    assert h.recorded()["a"].id == oid and h.store.snapshot("dev").pending == []
    assert h.up(lambda: Thing("a")).done == {}
    assert h.providers.thing.calls["create"] == 0


def test_providers_are_told_the_state_lineage_and_when_a_call_recovers_a_crashed_create(h: Harness) -> None:
    """What lets a provider tell this state's own earlier attempt from another state's
    object of the same URN (a second checkout of the stack)."""
    seen: list[tuple[str, str, bool]] = []
    thing = h.providers.thing
    create, read = thing.create, thing.read

    def creating(ctx: Any, inputs: Any) -> Any:
        seen.append(("create", ctx.lineage, ctx.recovering))
        return create(ctx, inputs)

    def reading(ctx: Any, id: Any, inputs: Any, outputs: Any) -> Any:
        seen.append(("read", ctx.lineage, ctx.recovering))
        return read(ctx, id, inputs, outputs)

    thing.create, thing.read = creating, reading  # type: ignore[method-assign]
    lineage = h.store.snapshot("dev").lineage
    assert lineage and h.up(lambda: Thing("a")).ok
    writer = h.store.begin("dev", "up", "tester")
    writer.record_pending(PendingOperation(token="t", urn=P + "b", type="fake:Thing", op="create",
                                           inputs={"label": "", "zone": "a", "ref": ""}))
    writer.finish("succeeded", None)
    h.recover()
    assert seen == [("create", lineage, False), ("read", lineage, True)]


def test_get_reads_an_existing_object_and_never_deletes_it(h: Harness) -> None:
    h.providers.thing.objects["given-1"] = {"label": "shared", "zone": "a", "ref": ""}

    def program() -> None:
        given = Thing.get("given", "given-1")
        Thing("user", ref=given.arn, label=given.label)

    result = h.up(program)
    assert result.ok and result.done == {"read": 1, "create": 1}
    rec = h.recorded()
    assert rec["user"].inputs["ref"] == "arn:given-1" and rec["user"].inputs["label"] == "shared"
    assert h.up(program).done == {}
    assert h.up(lambda: None).ok
    assert set(h.providers.thing.objects) == {"given-1"} and h.recorded() == {}
