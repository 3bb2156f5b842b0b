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
from stackwright.errors import ApplyFailed, PlanError
from stackwright.engine.calls import ProviderCalls
from stackwright.model.desired import DesiredGraph
from stackwright.model.output import resolve_value
from stackwright.model.resource import Resource
from stackwright.model.values import UNKNOWN
from stackwright.operations.session import StackSession, stack_lock
from stackwright.plan.plan import Plan
from stackwright.plan.planner import make_plan
from stackwright.state.records import Checkpoint, Snapshot


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
Check = Callable[[Plan], None]
"""Raises (a ``StackwrightError``) to refuse a plan before it is confirmed or applied."""


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
    from stackwright.providers.protocol import OperationContext, instance_config

    by_urn = {step.urn: step for step in plan.steps}

    def outputs_of(urn: str) -> dict[str, Any] | None:
        """A provider instance's outputs as apply will see them: its new inputs."""
        other = by_urn.get(urn)
        if other is None:
            return None
        return {**(other.old_outputs or {}), **(other.inputs or {})}

    steps = []
    for step in plan.steps:
        handler = session.providers.resource(step.type) if step.op.value == "update" else None
        if handler is not None and handler.explains_updates and step.old_id and not is_unknown(step.inputs):
            config = instance_config(handler, step.inputs or {}, outputs_of)
            if is_unknown(config):
                steps.append(step)
                continue
            ctx = OperationContext(urn=step.urn, name=step.urn.rsplit("$", 1)[-1], token=f"preview-{step.old_id}",
                                   provider_config=config)
            notes = handler.explain_update(ctx, step.old_id, reveal(step.old_inputs or {}), reveal(step.inputs or {}))
            step = replace(step, notes=tuple(notes))
        steps.append(step)
    return replace(plan, steps=tuple(steps))


def up(
    session: StackSession, *, options: ApplyOptions, sink: EventSink, confirm: Confirm,
    targets: Iterable[str] = (), kind: str = "up", desired: DesiredGraph | None = None,
    refresh: bool = False, check: Check | None = None,
) -> UpdateOutcome:
    """Plan under the stack's lock, ``check`` it (policies), ask ``confirm``, apply,
    record a checkpoint.

    ``check`` sees the very plan that would be applied, under the same lock, so what
    was judged is what runs; when it raises, nothing is applied.
    """
    targets = tuple(targets)
    wanted = desired if desired is not None else session.run_program()

    def planned(snapshot: Snapshot) -> Plan:
        plan = make_plan(wanted, snapshot, session.providers, targets=targets)
        return _as_kind(plan, "destroy") if kind == "destroy" else plan

    return _locked_update(session, kind, wanted, planned, options=options, sink=sink,
                          confirm=confirm, refresh=refresh, check=check, extra=_targets_data(targets))


def _targets_data(targets: Iterable[str]) -> dict[str, Any] | None:
    """A targeted update applies part of the program; the audit log says which part
    (the staging gate does not count it as applying the program)."""
    chosen = sorted(targets)
    return {"targets": chosen} if chosen else None


Verify = Callable[[Snapshot, Plan], None]
"""Sees the state under the lock and the plan computed from it now; raises to refuse."""


def apply_saved(
    session: StackSession, saved: Plan, desired: DesiredGraph, *, options: ApplyOptions,
    sink: EventSink, confirm: Confirm, verify: Verify, extra: dict[str, Any] | None = None,
) -> UpdateOutcome:
    """Apply a plan made earlier (a saved, reviewed plan) and nothing else.

    Under the stack's lock, ``verify`` gets the current snapshot and the plan that
    ``desired`` gives against it, and must raise unless that is the saved plan. The
    steps run are the saved ones; only what the state records of each resource
    beforehand (ids, old inputs and outputs) comes from the snapshot, which ``verify``
    established is the one the plan was made against. Interrupted operations are not
    resolved here: they moved the state on, so ``verify`` refuses the plan anyway.
    """
    def planned(snapshot: Snapshot) -> Plan:
        now = make_plan(desired, snapshot, session.providers)
        verify(snapshot, now)
        return executable(saved, now)

    return _locked_update(session, "apply", desired, planned, options=options, sink=sink,
                          confirm=confirm, recover=False, extra=extra)


def executable(saved: Plan, now: Plan) -> Plan:
    """``saved``'s steps completed with what ``now`` (planned against the same state)
    knows of each resource before the change; a step ``now`` lacks is refused. The
    leftovers are ``now``'s, which the caller's check found to be the saved ones."""
    from dataclasses import replace

    current = {step.urn: step for step in now.steps}
    steps = []
    for step in saved.steps:
        here = current.get(step.urn)
        if here is None:
            raise PlanError("the saved plan names a resource the state does not explain",
                            resource=step.urn, hint="make a new plan")
        steps.append(replace(step, old_inputs=here.old_inputs, old_outputs=here.old_outputs,
                             old_id=here.old_id, old_deps=here.old_deps, diffs=here.diffs))
    return replace(saved, steps=tuple(steps), old_outputs=now.old_outputs, leftovers=now.leftovers)


def _locked_update(
    session: StackSession, kind: str, desired: DesiredGraph, planned: Callable[[Snapshot], Plan],
    *, options: ApplyOptions, sink: EventSink, confirm: Confirm, refresh: bool = False,
    recover: bool = True, extra: dict[str, Any] | None = None, check: Check | None = None,
) -> UpdateOutcome:
    """The machinery `up`, `destroy` and saved plans share: under the lock, resolve
    interrupted operations, plan, confirm, apply, checkpoint, audit."""
    started = time.monotonic()
    with stack_lock(session, kind):
        writer = session.store.begin(session.stack, kind, session.who)
        report = _recover(session, writer, options, sink) if recover else RecoveryReport()
        snapshot = session.store.snapshot(session.stack)
        if refresh:
            drift = asyncio.run(read_all(snapshot, session.providers, options.parallel, sink))
            if drift.errors:
                raise ApplyFailed(f"refresh could not read {len(drift.errors)} resource(s): "
                                  + "; ".join(f"{u}: {e}" for u, e in sorted(drift.errors.items())[:3]))
            record_drift(drift, writer)
            snapshot = session.store.snapshot(session.stack)
        plan = planned(snapshot)
        outcome = UpdateOutcome(plan=plan, recovery=report)
        audit = {"plan_digest": plan.digest(), **(extra or {})}  # taken before apply starts
        if not plan.has_changes:
            outcome.checkpoint = writer.finish("succeeded", None)
            # Audited too: the staging gate needs to know this program is in place.
            _record_apply(session, kind, outcome, "succeeded", audit)
            return outcome
        if check is not None:
            _checked(plan, check, writer)
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
    _record_apply(session, kind, outcome, status, audit)
    return outcome


def _checked(plan: Plan, check: Check, writer: Any) -> None:
    """Run ``check``; on refusal close the writer first, so that what recovery did
    before planning is still recorded in a checkpoint."""
    try:
        check(plan)
    except BaseException:
        writer.finish("succeeded", None)
        raise


def _record_apply(session: StackSession, kind: str, outcome: UpdateOutcome, status: str,
                  extra: dict[str, Any] | None = None) -> None:
    """The audit log's line for an apply: what ran, from which program and config;
    ``extra`` holds the plan digest and what the caller adds."""
    from stackwright.program.digest import config_digest, program_digest

    data: dict[str, Any] = {
        "result": status, "checkpoint": outcome.checkpoint.number if outcome.checkpoint else None,
        "counts": outcome.plan.counts(), "program_digest": program_digest(session.project),
        "config_digest": config_digest(session.project, session.stack),
        **(extra or {}),
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
        source = {"id": resource.read_id} if resource.read_id is not None else resource.inputs
        value: dict[str, Any] = resolve_value(source, lambda res, prop: lookup(res.urn, prop))
        return value

    async def run() -> ApplyResult:
        stop = asyncio.Event()
        applier = Applier(plan, session.providers, writer, options, sink, resolver, stop)
        loop = asyncio.get_running_loop()

        def interrupt() -> None:
            stop.set()
            sink.stopping()

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
