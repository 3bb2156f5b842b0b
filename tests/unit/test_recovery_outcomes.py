"""What recovery reports and records for each kind of pending operation a crash left,
seen the way `up` shows it: the "Recovered ..." lines (``RecoveryReport``), the records,
the operations still pending, the checkpoint's changes, and what the provider was asked.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

import stackwright as sw
from stackwright.engine.calls import ProviderCalls
from stackwright.engine.events import EventSink
from stackwright.engine.recovery import RecoveryReport, recover
from stackwright.engine.retry import RetryPolicy
from stackwright.errors import ProviderError
from stackwright.model.values import Secret
from stackwright.operations.keyring import FernetKey
from stackwright.plan.planner import make_plan
from stackwright.providers.protocol import OperationContext, ReadResult
from stackwright.state.records import PendingOperation, ResourceState
from stackwright.testing import declare
from unit.fakes import Thing, ThingProvider
from unit.test_provider_instances import Providers as Instances
from unit.test_provider_instances import WidgetProvider
from unit.test_provider_instances import program as instances_program
from unit.test_engine import P, Harness

INPUTS = {"label": "x", "zone": "a", "ref": ""}


class NamedThings(ThingProvider):
    """A cloud that finds the object an interrupted create made by its name, as a
    provider does that tags what it creates with the resource's name; it also notes the
    name and token every read was given."""

    def __init__(self) -> None:
        super().__init__()
        self.names: dict[str, str] = {}
        self.reads: list[tuple[str, str | None]] = []
        self.given: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self.urns: list[str] = []
        """The inputs and outputs each read was given."""

    def create(self, ctx: OperationContext, inputs: Any) -> Any:
        made = super().create(ctx, inputs)
        self.names[made.id] = ctx.name
        return made

    def read(self, ctx: OperationContext, id: str | None, inputs: Any, outputs: Any) -> ReadResult | None:
        self.reads.append((ctx.name, id))
        self.urns.append(ctx.urn)
        self.given.append((dict(inputs), dict(outputs)))
        if id is None:
            id = next((oid for oid, name in self.names.items() if name == ctx.name and oid in self.objects), None)
        return super().read(ctx, id, inputs, outputs)


def keyed(harness: Harness) -> Harness:
    """The harness's store can hold secrets."""
    key = Fernet.generate_key()
    harness.store.use_cipher(FernetKey("test", lambda sealing: key, "use the test key"))
    return harness


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    harness = keyed(Harness(tmp_path))
    harness.providers.thing = NamedThings()
    return harness


def things(h: Harness) -> NamedThings:
    found = h.providers.thing
    assert isinstance(found, NamedThings)
    return found


def leave_pending(h: Harness, *ops: PendingOperation, rows: tuple[ResourceState, ...] = ()) -> None:
    """The state a killed run leaves: its records and its pending operations."""
    writer = h.store.begin("dev", "up", "crashed")
    for row in rows:
        writer.record_resource(row, None)
    for op in ops:
        writer.record_pending(op)
    writer.finish("failed", None)


def row(name: str, id: str, **extra: Any) -> ResourceState:
    return ResourceState(urn=P + name, type="fake:Thing", id=id, inputs=dict(INPUTS),
                         outputs={**INPUTS, "arn": f"arn:{id}"}, **extra)


def pending(op: str, name: str, token: str, resource_id: str | None = None, **extra: Any) -> PendingOperation:
    return PendingOperation(token=token, urn=P + name, type="fake:Thing", op=op, inputs=dict(INPUTS),
                            resource_id=resource_id, started_at=1.0, **extra)


def last_changes(h: Harness) -> list[tuple[str, str]]:
    changes = h.store.checkpoint("dev", h.store.history("dev")[-1].number).changes
    assert {c.type for c in changes} <= {"fake:Thing"}
    return [(c.urn.removeprefix(P), c.op) for c in changes]


def test_an_interrupted_create_whose_object_exists_is_adopted_with_its_dependencies(h: Harness) -> None:
    made = things(h).create(_ctx("a"), INPUTS).id
    leave_pending(h, pending("create", "b", "t-b", deps=[P + "a"], parent=P + "a"),
                  rows=(row("a", "a-0"),))
    things(h).names[made] = "b"

    report = h.recover()

    assert report.adopted == [P + "b"] and report.forgotten == [] and report.anything
    b = h.recorded()["b"]
    assert (b.id, b.inputs, b.deps, b.parent) == (made, INPUTS, [P + "a"], P + "a")
    assert b.outputs["arn"] == f"arn:{made}" and b.outputs["label"] == "x"
    assert h.store.snapshot("dev").pending == []
    assert last_changes(h) == [("b", "create")]
    assert things(h).reads == [("b", None)], "the read names the resource as its create did"
    assert things(h).given == [(INPUTS, {})], "the read is given the inputs the create was given"


def test_an_interrupted_create_that_made_nothing_is_forgotten(h: Harness) -> None:
    leave_pending(h, pending("create", "a", "t-a"))

    report = h.recover()

    assert report.adopted == [] and report.forgotten == [P + "a"]
    assert h.recorded() == {} and h.store.snapshot("dev").pending == []
    assert h.up(lambda: Thing("a", label="x")).done == {"create": 1}
    assert len(things(h).objects) == 1


def test_a_create_killed_after_its_call_is_found_by_name_and_not_made_twice(h: Harness) -> None:
    """The provider finds the object by the name the create gave it: recovery must give
    the same name (the resource's, not its URN)."""
    made = things(h).create(_ctx("a"), INPUTS).id
    leave_pending(h, pending("create", "a", "t-a"))

    assert h.recover().adopted == [P + "a"]
    assert h.up(lambda: Thing("a", label="x")).done == {}
    assert list(things(h).objects) == [made] and things(h).calls["create"] == 1


def test_an_interrupted_delete_of_an_object_already_gone_drops_its_record(h: Harness) -> None:
    leave_pending(h, pending("delete", "a", "t-a", resource_id="a-7"), rows=(row("a", "a-7"),))

    report = h.recover()

    assert report.forgotten == [P + "a"] and report.adopted == []
    assert h.recorded() == {} and h.store.snapshot("dev").pending == []
    assert last_changes(h) == [("a", "delete")]
    assert things(h).reads == [("a", "a-7")]
    assert things(h).given == [(INPUTS, {})], "the read is given the recorded inputs"
    assert things(h).urns == [P + "a"]


def test_an_interrupted_delete_of_an_object_still_there_keeps_it_for_the_plan(h: Harness) -> None:
    made = things(h).create(_ctx("a"), INPUTS).id
    leave_pending(h, pending("delete", "a", "t-a", resource_id=made), rows=(row("a", made),))
    checkpoints = len(h.store.history("dev"))

    report = h.recover()

    assert report.forgotten == [P + "a"]
    assert h.recorded()["a"].id == made and h.store.snapshot("dev").pending == []
    assert len(h.store.history("dev")) == checkpoints, "no delete is recorded"
    assert h.up(lambda: None).done == {"delete": 1}
    assert things(h).objects == {} and h.recorded() == {}


def test_an_interrupted_update_is_forgotten_and_the_next_plan_updates_again(h: Harness) -> None:
    made = things(h).create(_ctx("a"), INPUTS).id
    leave_pending(h, pending("update", "a", "t-a", resource_id=made), rows=(row("a", made),))

    report = h.recover()

    assert report.forgotten == [P + "a"] and report.adopted == []
    assert h.recorded()["a"].inputs == INPUTS and h.store.snapshot("dev").pending == []
    assert things(h).reads == [], "an update is resolved without asking the provider"
    assert h.up(lambda: Thing("a", label="y")).done == {"update": 1}
    assert things(h).objects[made]["label"] == "y"


def test_the_old_half_of_a_replacement_is_left_to_the_plan(h: Harness) -> None:
    """The record names the new object: the pending delete names the old one, which the
    next plan deletes as a leftover."""
    old = things(h).create(_ctx("a"), INPUTS).id
    new = things(h).create(_ctx("a"), INPUTS).id
    leave_pending(h, pending("delete", "a", "t-old", resource_id=old), rows=(row("a", new),))

    report = h.recover()

    assert not report.anything and report.adopted == report.forgotten == []
    assert [op.token for op in h.store.snapshot("dev").pending] == ["t-old"]
    assert things(h).reads == []
    plan = make_plan(declare(lambda: Thing("a", label="x")), h.store.snapshot("dev"), h.providers)
    assert [(o.urn, o.id) for o in plan.leftovers] == [(P + "a", old)]


def test_creates_are_resolved_before_deletes_so_an_old_half_is_not_taken_for_the_record(h: Harness) -> None:
    """Killed after the new half of a create-before-delete replacement was made: the
    record still names the old object, but the adopted create names the new one, so the
    old one is left pending for the plan, not forgotten (which would orphan it)."""
    old = things(h).create(_ctx("a"), INPUTS).id
    new = things(h).create(_ctx("a2"), INPUTS).id
    things(h).names[new] = "a"
    things(h).names[old] = "old a"
    leave_pending(h, pending("delete", "a", "t-old", resource_id=old), pending("create", "a", "t-new"),
                  rows=(row("a", old),))

    report = h.recover()

    assert report.adopted == [P + "a"] and report.forgotten == []
    assert h.recorded()["a"].id == new
    assert [op.token for op in h.store.snapshot("dev").pending] == ["t-old"]
    assert h.up(lambda: Thing("a", label="x")).done == {"delete-replaced": 1}
    assert list(things(h).objects) == [new]


def test_a_run_with_nothing_pending_recovers_nothing(h: Harness) -> None:
    assert h.up(lambda: Thing("a", label="x")).ok
    report = h.recover()
    assert not report.anything and things(h).reads == []


def _ctx(name: str) -> OperationContext:
    return OperationContext(urn=P + name, name=name, token=f"made-{name}", timeout=10.0,
                            log=lambda message: None, provider_config={})


def test_a_resource_under_a_component_is_read_by_its_own_name(h: Harness) -> None:
    class Pair(sw.Component, type="test:Pair"):
        def __init__(self, name: str) -> None:
            super().__init__(name)
            Thing("inner", label="x", opts=sw.ResourceOptions(parent=self))

    urn = next(iter(declare(lambda: Pair("p")).resources))
    made = things(h).create(_ctx("inner"), INPUTS).id
    leave_pending(h, PendingOperation(token="t", urn=urn, type="fake:Thing", op="create",
                                      inputs=dict(INPUTS), started_at=1.0))
    assert h.recover().adopted == [urn]
    assert things(h).reads == [("inner", None)]
    assert h.store.snapshot("dev").resources[urn].id == made


class Retries(EventSink):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int]] = []

    def step_retrying(self, urn: str, action: str, attempt: int, delay: float, error: str) -> None:
        self.seen.append((urn, action, attempt))


def recover_reporting_to(h: Harness, sink: EventSink) -> RecoveryReport:
    """Recovery as `up` runs it, with its events going to ``sink`` and no real sleeps."""
    writer = h.store.begin("dev", "up", "tester")

    async def nap(delay: float) -> None:
        pass

    async def run() -> RecoveryReport:
        calls = ProviderCalls(2, RetryPolicy(rng=random.Random(1), sleep=nap), sink)
        try:
            return await recover(h.store.snapshot("dev"), h.providers, writer, calls)
        finally:
            calls.close()

    report = asyncio.run(run())
    writer.finish("succeeded", None)
    return report


class ThrottledReads(NamedThings):
    def __init__(self, throttled: int) -> None:
        super().__init__()
        self.throttled = throttled

    def read(self, ctx: OperationContext, id: str | None, inputs: Any, outputs: Any) -> ReadResult | None:
        if self.throttled:
            self.throttled -= 1
            raise ProviderError.transient("Throttling: Rate exceeded")
        return super().read(ctx, id, inputs, outputs)


@pytest.mark.parametrize("op", ["create", "delete"])
def test_a_throttled_read_during_recovery_is_retried_and_reported_for_its_resource(h: Harness, op: str) -> None:
    h.providers.thing = ThrottledReads(throttled=2)
    made = things(h).create(_ctx("a"), INPUTS).id
    rows = (row("a", made),) if op == "delete" else ()
    leave_pending(h, pending(op, "a", "t-a", resource_id=made if op == "delete" else None), rows=rows)
    sink = Retries()

    report = recover_reporting_to(h, sink)

    assert sink.seen == [(P + "a", "read", 1), (P + "a", "read", 2)]
    assert (report.adopted, report.forgotten) == (([P + "a"], []) if op == "create" else ([], [P + "a"]))
    assert h.recorded()["a"].id == made and h.store.snapshot("dev").pending == []


def test_secret_inputs_reach_the_recovery_read_revealed(h: Harness) -> None:
    secret_inputs = {**INPUTS, "label": Secret("pw")}
    leave_pending(h, PendingOperation(token="t", urn=P + "a", type="fake:Thing", op="create",
                                      inputs=secret_inputs, started_at=1.0))
    h.recover()
    assert things(h).given == [({**INPUTS, "label": "pw"}, {})]


class Reads(WidgetProvider):
    """Notes the credential each read was made with."""

    def read(self, ctx: OperationContext, id: str | None, inputs: Any, outputs: Any) -> ReadResult | None:
        self.seen.append(("read", ctx.name, ctx.provider_config.get("token")))
        return super().read(ctx, id, inputs, outputs)


@pytest.mark.parametrize("op", ["create", "delete"])
def test_recovery_reads_with_the_provider_instance_the_resource_uses(tmp_path: Path, op: str) -> None:
    h = keyed(Harness(tmp_path))
    providers = h.providers = Instances()  # type: ignore[assignment]
    providers.widget = Reads()
    assert h.up(instances_program("t1", widgets=1)).ok
    widget = h.store.snapshot("dev").resources["dev::test::fake:Widget::w0"]
    providers.widget.seen.clear()
    leave_pending(h, PendingOperation(token="t", urn=widget.urn, type=widget.type, op=op, inputs=widget.inputs,
                                      resource_id=widget.id if op == "delete" else None, started_at=1.0))

    report = h.recover()

    assert providers.widget.seen == [("read", "w0", "t1")]
    assert report.forgotten == [widget.urn]


CONN = "dev::test::fake:Conn::conn"
WIDGET = "dev::test::fake:Widget::w0"


class FoundByToken(Reads):
    """Finds the object an interrupted create made by the create's token."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: dict[str, str] = {}

    def read(self, ctx: OperationContext, id: str | None, inputs: Any, outputs: Any) -> ReadResult | None:
        return super().read(ctx, id if id is not None else self.tokens.get(ctx.token), inputs, outputs)


class Conns(ThingProvider):
    type_token = "fake:Conn"

    def read(self, ctx: OperationContext, id: str | None, inputs: Any, outputs: Any) -> ReadResult | None:
        return ReadResult(ctx.urn, dict(inputs), {}) if ctx.token == "t-conn" else None


def test_an_instance_adopted_by_recovery_configures_the_reads_of_its_users(tmp_path: Path) -> None:
    """Both creates were under way: the instance's, then its user's. The user's read
    uses the instance recovery has just adopted."""
    h = keyed(Harness(tmp_path))
    providers = h.providers = Instances()  # type: ignore[assignment]
    providers.conn = Conns()  # type: ignore[assignment]
    widgets = providers.widget = FoundByToken()
    widgets.objects["w-1"] = {"label": "x", "provider": CONN}
    widgets.tokens["t-widget"] = "w-1"
    leave_pending(
        h,
        PendingOperation(token="t-conn", urn=CONN, type="fake:Conn", op="create", inputs={"token": "t1"},
                         started_at=1.0),
        PendingOperation(token="t-widget", urn=WIDGET, type="fake:Widget", op="create",
                         inputs={"label": "x", "provider": CONN}, deps=[CONN], started_at=2.0),
    )

    report = h.recover()

    assert report.adopted == [CONN, WIDGET]
    assert widgets.seen == [("read", "w0", "t1")]
    assert h.store.snapshot("dev").resources[WIDGET].id == "w-1" and h.store.snapshot("dev").pending == []


def test_recovery_of_a_resource_whose_instance_is_not_recorded_says_so(tmp_path: Path) -> None:
    h = keyed(Harness(tmp_path))
    h.providers = Instances()  # type: ignore[assignment]
    leave_pending(h, PendingOperation(token="t-widget", urn=WIDGET, type="fake:Widget", op="create",
                                      inputs={"label": "x", "provider": CONN}, started_at=1.0))
    with pytest.raises(ProviderError) as info:
        h.recover()
    assert info.value.message == (f"the provider instance {CONN} is not recorded in this stack; "
                                  "declare it in the program and run `up`")


class EchoingThings(NamedThings):
    """A cloud whose objects report what their label asked them to print, the way a
    command prints part of what it was given."""

    def read(self, ctx: OperationContext, id: str | None, inputs: Any, outputs: Any) -> ReadResult | None:
        found = super().read(ctx, id, inputs, outputs)
        if found is None:
            return None
        printed = str(inputs.get("label", "")).removeprefix("print ")
        return ReadResult(id=found.id, inputs=found.inputs, outputs={**found.outputs, "printed": printed})


def test_an_adopted_object_that_prints_a_secret_the_stack_knows_records_it_secret(tmp_path: Path) -> None:
    """What an interrupted create made prints part of a secret input (``sw.fmt`` of the
    stack's secret config): recovery records it secret, as `up` would have."""
    for known, secret in ((set(), False), ({"hunter2-XYZ"}, True)):
        h = keyed(Harness(tmp_path / str(secret)))
        h.providers.thing = EchoingThings()
        label = Secret("print hunter2-XYZ")
        made = things(h).create(_ctx("a"), {**INPUTS, "label": "print hunter2-XYZ"}).id
        leave_pending(h, PendingOperation(token="t-a", urn=P + "a", type="fake:Thing", op="create",
                                          inputs={**INPUTS, "label": label}, started_at=1.0))
        writer = h.store.begin("dev", "up", "tester")

        async def run() -> RecoveryReport:
            calls = ProviderCalls(2, RetryPolicy(), EventSink())
            try:
                return await recover(h.store.snapshot("dev"), h.providers, writer, calls, known)
            finally:
                calls.close()

        assert asyncio.run(run()).adopted == [P + "a"]
        writer.finish("succeeded", None)
        recorded = h.recorded()["a"]
        assert recorded.id == made and recorded.outputs["label"] == label
        assert isinstance(recorded.outputs["printed"], Secret) is secret
