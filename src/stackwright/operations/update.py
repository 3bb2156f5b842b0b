"""preview, up and destroy: plan against the recorded state, then apply exactly that plan."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from stackwright.engine.apply import Applier, ApplyOptions, ApplyResult, PropertyLookup
from stackwright.engine.events import EventSink
from stackwright.engine.recovery import RecoveryReport, recover
from stackwright.engine.refresh import read_all, record_drift, refreshed_snapshot
from stackwright.errors import ApplyFailed
from stackwright.engine.calls import ProviderCalls
from stackwright.model.desired import DesiredGraph
from stackwright.model.output import resolve_value
from stackwright.model.resource import Resource
from stackwright.model.values import UNKNOWN
from stackwright.operations.session import StackSession, stack_lock
from stackwright.plan.plan import Plan
from stackwright.plan.planner import make_plan
from stackwright.state.records import Checkpoint


@dataclass
class UpdateOutcome:
    plan: Plan
    result: ApplyResult | None = None
    checkpoint: Checkpoint | None = None
    recovery: RecoveryReport = field(default_factory=RecoveryReport)
    cancelled: bool = False
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.result is None or self.result.ok


Confirm = Callable[[Plan], bool]


def preview(session: StackSession, targets: Iterable[str] = (), refresh: bool = False,
            parallel: int = 16) -> Plan:
    """The plan `up` would apply now. Changes nothing; with ``refresh`` it plans
    against the live objects instead of the recorded ones."""
    desired = session.run_program()
    snapshot = session.store.snapshot(session.stack)
    if refresh:
        result = asyncio.run(read_all(snapshot, session.providers, parallel, EventSink()))
        snapshot = refreshed_snapshot(snapshot, result)
    return explained(make_plan(desired, snapshot, session.providers, targets=targets), session)


def explained(plan: Plan, session: StackSession) -> Plan:
    """The plan with providers' explanations of in-place updates attached."""
    from dataclasses import replace

    from stackwright.model.values import is_unknown, reveal
    from stackwright.providers.protocol import OperationContext

    steps = []
    for step in plan.steps:
        handler = session.providers.resource(step.type) if step.op.value == "update" else None
        if handler is not None and handler.explains_updates and step.old_id and not is_unknown(step.inputs):
            ctx = OperationContext(urn=step.urn, name=step.urn.rsplit("$", 1)[-1], token=f"preview-{step.old_id}")
            notes = handler.explain_update(ctx, step.old_id, reveal(step.old_inputs or {}), reveal(step.inputs or {}))
            step = replace(step, notes=tuple(notes))
        steps.append(step)
    return replace(plan, steps=tuple(steps))


def up(
    session: StackSession, *, options: ApplyOptions, sink: EventSink, confirm: Confirm,
    targets: Iterable[str] = (), kind: str = "up", desired: DesiredGraph | None = None,
    refresh: bool = False,
) -> UpdateOutcome:
    """Plan under the stack's lock, ask ``confirm``, apply, record a checkpoint."""
    desired = desired if desired is not None else session.run_program()
    started = time.monotonic()
    with stack_lock(session, kind):
        writer = session.store.begin(session.stack, kind, session.who)
        report = _recover(session, writer, options, sink)
        snapshot = session.store.snapshot(session.stack)
        if refresh:
            drift = asyncio.run(read_all(snapshot, session.providers, options.parallel, sink))
            if drift.errors:
                raise ApplyFailed(f"refresh could not read {len(drift.errors)} resource(s): "
                                  + "; ".join(f"{u}: {e}" for u, e in sorted(drift.errors.items())[:3]))
            record_drift(drift, writer)
            snapshot = session.store.snapshot(session.stack)
        plan = make_plan(desired, snapshot, session.providers, targets=targets)
        if kind == "destroy":
            plan = _as_kind(plan, "destroy")
        outcome = UpdateOutcome(plan=plan, recovery=report)
        if not plan.has_changes:
            outcome.checkpoint = writer.finish("succeeded", None)
            return outcome
        if not confirm(plan):
            outcome.cancelled = True
            outcome.checkpoint = writer.finish("succeeded", None)
            return outcome
        outcome.result = _apply(session, plan, desired, writer, options, sink)
        outputs = _final_outputs(desired, plan, outcome.result, snapshot.resources)
        status = "succeeded" if outcome.result.ok else (
            "interrupted" if outcome.result.interrupted else "failed")
        outcome.checkpoint = writer.finish(status, outputs)
    outcome.duration = time.monotonic() - started
    _record_apply(session, kind, outcome, status)
    return outcome


def _record_apply(session: StackSession, kind: str, outcome: UpdateOutcome, status: str,
                  extra: dict[str, Any] | None = None) -> None:
    """The audit log's line for an apply: what ran, from which program and config."""
    from stackwright.program.digest import config_digest, program_digest

    data: dict[str, Any] = {
        "result": status, "checkpoint": outcome.checkpoint.number if outcome.checkpoint else None,
        "counts": outcome.plan.counts(), "program_digest": program_digest(session.project),
        "config_digest": config_digest(session.project, session.stack),
        "plan_digest": outcome.plan.digest(), **(extra or {}),
    }
    session.store.record_event(session.stack, kind, session.who, data)


def destroy(session: StackSession, *, options: ApplyOptions, sink: EventSink,
            confirm: Confirm) -> UpdateOutcome:
    """Delete every resource of the stack, dependents first."""
    empty = DesiredGraph(stack=session.stack, project=session.project.name, resources={}, deps={})
    return up(session, options=options, sink=sink, confirm=confirm, kind="destroy", desired=empty)


def _as_kind(plan: Plan, kind: str) -> Plan:
    from dataclasses import replace

    return replace(plan, kind=kind)


def _recover(session: StackSession, writer: Any, options: ApplyOptions, sink: EventSink) -> RecoveryReport:
    snapshot = session.store.snapshot(session.stack)
    if not snapshot.pending:
        return RecoveryReport()

    async def run() -> RecoveryReport:
        calls = ProviderCalls(options.parallel, options.retry, sink, options.timeout)
        try:
            return await recover(snapshot, session.providers, writer, calls)
        finally:
            calls.close()

    return asyncio.run(run())


def _apply(session: StackSession, plan: Plan, desired: DesiredGraph, writer: Any,
           options: ApplyOptions, sink: EventSink) -> ApplyResult:
    def resolver(urn: str, lookup: PropertyLookup) -> dict[str, Any]:
        resource = desired.resources[urn]
        value: dict[str, Any] = resolve_value(resource.inputs, lambda res, prop: lookup(res.urn, prop))
        return value

    async def run() -> ApplyResult:
        stop = asyncio.Event()
        applier = Applier(plan, session.providers, writer, options, sink, resolver, stop)
        loop = asyncio.get_running_loop()

        def interrupt() -> None:
            stop.set()
            sink.stopping(in_flight=len(applier.live))

        try:
            loop.add_signal_handler(signal.SIGINT, interrupt)
            loop.add_signal_handler(signal.SIGTERM, interrupt)
        except (NotImplementedError, RuntimeError):
            pass
        try:
            return await applier.run()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.remove_signal_handler(sig)
                except (NotImplementedError, RuntimeError):
                    pass

    return asyncio.run(run())


def _final_outputs(desired: DesiredGraph, plan: Plan, result: ApplyResult,
                   recorded: dict[str, Any]) -> dict[str, Any]:
    """Stack outputs resolved from what was applied, falling back to recorded values."""
    def lookup(resource: Resource, prop: str) -> Any:
        live = result.outputs.get(resource.urn)
        if live is None and resource.urn in recorded:
            record = recorded[resource.urn]
            live = {**record.outputs, "id": record.id}
        return (live or {}).get(prop, UNKNOWN)

    outputs: dict[str, Any] = resolve_value(desired.exports, lookup)
    return {k: v for k, v in outputs.items() if v is not UNKNOWN}
