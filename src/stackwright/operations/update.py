"""preview, up and destroy: plan against the recorded state, then apply exactly that plan."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from stackwright.dataclass_methods import Compared
from stackwright.engine.events import EventSink, MaskingSink
from stackwright.errors import ApplyFailed, PlanError
from stackwright.graph import Graph
from stackwright.model.desired import DesiredGraph
from stackwright.model.output import missing_in, resolve_value
from stackwright.model.resource import Resource, urn_name
from stackwright.model.values import UNKNOWN, secret_texts
from stackwright.operations import drift_note
from stackwright.operations.session import StackSession, stack_lock
from stackwright.plan.plan import Op, Plan, Step
from stackwright.plan.planner import component_urns, make_plan, resolve_targets
from stackwright.state.codec import gc_paused
from stackwright.state.records import Change, Checkpoint, Snapshot

if TYPE_CHECKING:
    from stackwright.engine.apply import Applier, ApplyOptions, ApplyResult, PropertyLookup
    from stackwright.engine.recovery import RecoveryReport
    from stackwright.engine.refresh import RefreshResult

T = TypeVar("T")


def _no_recovery() -> RecoveryReport:
    """The apply engine (``engine.apply``, ``engine.recovery``, ``engine.refresh``) is
    imported where it runs: a preview plans and never loads it."""
    from stackwright.engine.recovery import RecoveryReport

    return RecoveryReport()


# Every command loads this class: its methods are written, not generated (see
# stackwright.dataclass_methods); it behaves as the ``@dataclass`` it is declared.


@dataclass(init=False, repr=False, eq=False)
class UpdateOutcome(Compared):
    """What an update did: the plan, the apply's result, the checkpoint that recorded it,
    the interrupted operations it resolved first."""

    plan: Plan
    result: ApplyResult | None = None
    checkpoint: Checkpoint | None = None
    recovery: RecoveryReport = field(default_factory=_no_recovery)
    cancelled: bool = False
    duration: float = 0.0
    stopped: bool = False
    """Ctrl-C or SIGTERM arrived while applying: a caller running more (`run`) starts
    nothing else, even when every step of this plan had finished."""
    notes: tuple[str, ...] = ()
    """How the plan applied differs from the saved plan it stands for (a step it found
    unneeded), in words, for the caller to show."""

    def __init__(self, plan: Plan, result: ApplyResult | None = None, checkpoint: Checkpoint | None = None,
                 recovery: RecoveryReport | None = None, cancelled: bool = False, duration: float = 0.0,
                 stopped: bool = False, notes: tuple[str, ...] = ()) -> None:
        self.plan = plan
        self.result = result
        self.checkpoint = checkpoint
        self.recovery = _no_recovery() if recovery is None else recovery
        self.cancelled = cancelled
        self.duration = duration
        self.stopped = stopped
        self.notes = notes

    @property
    def ok(self) -> bool:
        return self.result is None or self.result.ok


Confirm = Callable[[Plan], bool]
Check = Callable[[Plan], None]
"""Raises (a ``StackwrightError``) to refuse a plan before it is confirmed or applied."""


def preview(session: StackSession, targets: Iterable[str] = (), refresh: bool = False,
            parallel: int = 16, *, keep: list[Any] | None = None) -> Plan:
    """The plan `up` would apply now, and `plan --out` saves. Changes nothing. With
    ``refresh``, or when the last plain ``refresh`` found drift the state has not
    recorded since (as ``up`` does), it plans against the live objects instead of the
    recorded ones; the plan then says so (``Plan.refreshed``), and a saved one's apply
    reads them again. ``keep`` (a one-shot command's) gets the desired graph and the
    snapshot, for the caller to leave to the process's end: freed object by object,
    those of 50,000 resources cost about 0.07 s."""
    targets = tuple(targets)
    pin = pins(session)
    drifted = drift_note.pending(session) if not refresh else None
    with gc_paused():
        desired = session.run_program(targets)
        snapshot = session.store.snapshot(session.stack)
        desired = complete_for(session, desired, snapshot, targets)
        if refresh or drifted is not None:
            from stackwright.engine.refresh import refreshed_snapshot

            snapshot = refreshed_snapshot(snapshot, _read_every(session, snapshot, parallel, EventSink()))
        plan = _noted(make_plan(desired, snapshot, session.providers, targets=targets), drifted)
    if keep is not None:
        keep += (desired, snapshot)
    return explained(pin(plan), session, parallel)


def preview_new(session: StackSession, lineage: str = "") -> Plan:
    """The plan that creates everything the program declares, for a stack the state
    does not have yet: made against an empty state of serial 0 and ``lineage`` (a
    saved plan's apply creates the stack with it). Changes nothing."""
    pin = pins(session)
    desired = session.run_program()
    empty = Snapshot(stack=session.stack, lineage=lineage, serial=0, resources={}, outputs={})
    return explained(pin(make_plan(desired, empty, session.providers)), session)


def complete_for(session: StackSession, desired: DesiredGraph, snapshot: Snapshot,
                 targets: Sequence[str]) -> DesiredGraph:
    """``desired`` from a run with ``targets``, or from a full run when it may miss
    something the targets need: a dependency the state records for a resource they
    select that the run did not declare may be one a component outside them skipped.
    (The plan covers only what the targets select and what that needs, so what else the
    run skipped changes nothing.)"""
    if not targets:
        return desired
    chosen = resolve_targets(targets, [*desired.resources, *snapshot.resources], component_urns(desired, snapshot))
    needed = Graph({urn: list(deps) for urn, deps in desired.deps.items()}).closure(chosen)
    for urn in needed:
        row = snapshot.resources.get(urn)
        if row is not None and any(dep not in desired.resources for dep in row.deps):
            return session.run_program()
    return desired


def _noted(plan: Plan, drifted: drift_note.DriftNote | None) -> Plan:
    """Each step of a resource the last plain ``refresh`` found drifted says so."""
    if drifted is None:
        return plan
    found = set(drifted.resources)
    return replace(plan, steps=tuple(
        replace(step, notes=(*step.notes, drift_note.STEP_NOTE)) if step.urn in found else step
        for step in plan.steps))


def pins(session: StackSession) -> Callable[[Plan], Plan]:
    """What a plan is computed from besides the state. The digests are taken now,
    before the program runs, so that a program edited meanwhile makes the plan pin the
    older digest (and a saved plan be refused), never the other way round; the provider
    versions once planned (the program loads the providers it uses). Returns the
    function that pins them on a plan."""
    from stackwright.program.digest import config_digest

    program, config = session.program_fingerprint().digest, config_digest(session.project, session.stack)

    def pin(plan: Plan) -> Plan:
        return replace(plan, program_digest=program, config_digest=config,
                       providers=session.providers.versions())

    return pin


def require_all_read(result: RefreshResult) -> None:
    """Planning against live objects some of which could not be read would plan
    against a guess: refuse, naming them."""
    if result.errors:
        raise ApplyFailed(f"refresh could not read {len(result.errors)} resource(s): "
                          + "; ".join(f"{u}: {e}" for u, e in sorted(result.errors.items())[:3]),
                          hint="fix what stops them being read, or plan without --refresh")


def explained(plan: Plan, session: StackSession, parallel: int = 16) -> Plan:
    """The plan with providers' explanations of creates and in-place updates attached
    (a server-side dry run, a change set). Raises ``PlanError`` naming every resource
    whose change a provider says the cloud refuses: the apply would fail on it."""
    notes = dry_runs(plan, session, parallel)
    if not notes:
        return plan
    return replace(plan, steps=tuple(
        replace(step, notes=(*step.notes, *_without_secrets(notes[step.urn], step))) if step.urn in notes else step
        for step in plan.steps))


def refuse_refused(plan: Plan, session: StackSession, parallel: int = 16) -> None:
    """Before `up` applies anything: the dry runs of the providers that make them
    quickly (``checks_before_apply``); ``PlanError`` when the cloud refuses a change."""
    dry_runs(plan, session, parallel, before_apply=True)


def dry_runs(plan: Plan, session: StackSession, parallel: int = 16, *,
             before_apply: bool = False) -> dict[str, list[str]]:
    """Each explained step's notes by URN (``explain_create``, ``explain_update``,
    side by side on up to ``parallel`` threads). A step whose inputs or provider
    instance are not known yet is not explained. A ``DryRunBlocked`` is a note when
    the step waits for a resource this plan creates or changes (which may bring what
    is missing), a refusal otherwise. Raises ``PlanError`` listing the refusals."""
    calls = _explaining_calls(plan, session, before_apply)
    if not calls:
        return {}
    from stackwright.errors import ProviderError
    from stackwright.providers.protocol import DryRunBlocked

    changed = {step.urn: step for step in plan.steps if step.op in (Op.CREATE, Op.UPDATE, Op.REPLACE)}
    notes: dict[str, list[str]] = {}
    refused: list[tuple[Step, ProviderError]] = []
    for step, outcome in _run_side_by_side(calls, parallel, before_apply):
        if isinstance(outcome, DryRunBlocked):
            first = [urn for urn in step.deps if urn in changed]
            if not first:
                refused.append((step, outcome))
                continue
            names = ", ".join(f"{_VERBS[changed[u].op]} {changed[u].type} {urn_name(u)}" for u in first)
            notes[step.urn] = [f"{outcome.message} (this plan first {names})"]
        elif isinstance(outcome, ProviderError):
            refused.append((step, outcome))
        else:
            notes[step.urn] = outcome
    if refused:
        raise _refusal(refused)
    return notes


Explain = Callable[[], "list[str]"]
_VERBS = {Op.CREATE: "creates", Op.UPDATE: "updates", Op.REPLACE: "replaces"}


def _explaining_calls(plan: Plan, session: StackSession, before_apply: bool) -> list[tuple[Step, Explain]]:
    """The provider calls that explain the plan's creates and updates."""
    create, update = Op.CREATE, Op.UPDATE  # read once: an Enum class's attributes are read through a __getattr__ hook
    if not any(step.op is update or step.op is create for step in plan.steps):
        return []
    from functools import partial

    from stackwright.model.values import is_unknown, reveal
    from stackwright.providers.protocol import OperationContext, instance_config

    by_urn = {step.urn: step for step in plan.steps}

    def outputs_of(urn: str) -> dict[str, Any] | None:
        """A provider instance's outputs as apply will see them: its new inputs."""
        other = by_urn.get(urn)
        if other is None:
            return None
        return {**(other.old_outputs or {}), **(other.inputs or {})}

    calls: list[tuple[Step, Explain]] = []
    for step in plan.steps:
        if step.op is not update and step.op is not create:
            continue
        handler = session.providers.resource(step.type)
        wanted = handler.explains_updates if step.op is update else handler.explains_creates
        if not wanted or (before_apply and not handler.checks_before_apply) or is_unknown(step.inputs):
            continue
        if step.op is update and not step.old_id:
            continue
        config = instance_config(handler, step.inputs or {}, outputs_of)
        if is_unknown(config):
            continue
        name = urn_name(step.urn)
        ctx = OperationContext(urn=step.urn, name=name, token=f"preview-{step.old_id or name}", provider_config=config)
        if step.op is update:
            assert step.old_id is not None
            calls.append((step, partial(handler.explain_update, ctx, step.old_id, reveal(step.old_inputs or {}),
                                        reveal(step.inputs or {}), old_outputs=reveal(step.old_outputs or {}))))
        else:
            calls.append((step, partial(handler.explain_create, ctx, reveal(step.inputs or {}))))
    return calls


def _run_side_by_side(calls: list[tuple[Step, Explain]], parallel: int,
                      before_apply: bool) -> list[tuple[Step, Any]]:
    """Each call's lines, or the ``ProviderError`` it raised. A configuration error (a
    kubeconfig that cannot be read) is a note in a preview, which is useful without
    access to the cloud, and raised before an apply, which would fail on it; anything
    else is raised."""
    from stackwright.errors import ConfigError, ProviderError

    def run(call: Explain) -> Any:
        try:
            return call()
        except ProviderError as exc:
            if exc.retryable:
                return [f"not checked: {exc.message}"]
            return exc
        except ConfigError as exc:
            if before_apply:
                raise
            return [f"no dry run: {exc.message}"]

    if len(calls) == 1 or parallel <= 1:
        return [(step, run(call)) for step, call in calls]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(parallel, len(calls))) as pool:
        return list(zip((step for step, _ in calls), pool.map(run, (call for _, call in calls)), strict=True))


def _refusal(refused: list[tuple[Step, Any]]) -> PlanError:
    """One error naming each resource whose change was refused, and why."""
    said = [(step, _without_secrets([exc.message], step)[0]) for step, exc in refused]
    step, first = said[0]
    if len(said) == 1:
        hint = refused[0][1].hint
        return PlanError(first, resource=step.urn, hint=_without_secrets([hint], step)[0] if hint
                         else "fix the resource; `up` would fail on it the same way")
    rest = "; ".join(f"{s.urn}: {message}" for s, message in said[1:])
    return PlanError(f"{first}; and {len(said) - 1} more: {rest}", resource=step.urn,
                     hint="fix these resources; `up` would fail on them the same way")


def _without_secrets(notes: Iterable[str], step: Step) -> tuple[str, ...]:
    """Notes come from providers, which see secrets revealed: every secret value of
    the step's inputs is masked in them before they reach a screen or a plan file."""
    from stackwright.model.values import mask_text

    secrets = secret_texts(step.old_inputs or {}, secret_texts(step.inputs or {}))
    return tuple(mask_text(note, secrets) for note in notes)


def up(
    session: StackSession, *, options: ApplyOptions, sink: EventSink, confirm: Confirm,
    targets: Iterable[str] = (), kind: str = "up", desired: DesiredGraph | None = None,
    refresh: bool = False, check: Check | None = None, audit: dict[str, Any] | None = None,
) -> UpdateOutcome:
    """Plan, ``check`` it (policies, protection), ask ``confirm``, then under the stack's
    lock plan again, apply and record a checkpoint; ``audit`` is added to the audit event.

    Under the lock the plan must come out as the one ``check`` judged and the person
    confirmed, so what was judged is what runs; when ``check`` raises, nothing is applied.
    """
    targets = tuple(targets)
    pin = pins(session)
    wanted = desired if desired is not None else session.run_program(targets)
    if desired is None and targets:
        wanted = complete_for(session, wanted, session.store.snapshot(session.stack), targets)
    drifted = drift_note.pending(session) if kind == "up" and not refresh else None

    def planned(snapshot: Snapshot) -> Plan:
        with gc_paused():
            return pin(_noted(make_plan(wanted, snapshot, session.providers, targets=targets, kind=kind), drifted))

    return _locked_update(session, kind, wanted, planned, options=options, sink=sink,
                          confirm=confirm, refresh=refresh or drifted is not None, check=check,
                          extra={**(_targets_data(targets) or {}), **(audit or {})})


def _targets_data(targets: Iterable[str]) -> dict[str, Any] | None:
    """A targeted update applies part of the program; the audit log says which part
    (the staging gate does not count it as applying the program)."""
    chosen = sorted(targets)
    return {"targets": chosen} if chosen else None


Verify = Callable[[Snapshot, Plan], Plan]
"""Sees the state under the lock and the plan computed from it now; raises to refuse,
else returns the plan to apply: the saved one, or the saved one with steps it found
unneeded left unchanged (``plan.compare``'s ``settle``)."""


def apply_saved(
    session: StackSession, saved: Plan, desired: DesiredGraph, *, options: ApplyOptions,
    sink: EventSink, confirm: Confirm, verify: Verify, extra: dict[str, Any] | None = None,
) -> UpdateOutcome:
    """Apply a plan made earlier (a saved, reviewed plan) and nothing else.

    The saved plan is complete: its steps carry what the state recorded of each
    resource before the change, and ``desired`` only resolves the values it left
    unknown. Under the stack's lock, ``verify`` gets the current snapshot and the plan
    ``desired`` gives against it now, and must raise unless the state is the one the
    plan was made against and that plan is the saved one; of the plan now, only steps
    that leave a resource unchanged may be taken over (``Verify``).
    Interrupted operations are not resolved here: they moved the state on, so
    ``verify`` refuses the plan anyway. A plan made against the live objects
    (``Plan.refreshed``) is compared with the plan made against them as they are read
    now, under the lock; once it is accepted, what was read is recorded and it applies.
    """
    from stackwright.engine.apply import plan_secrets

    made_from: set[str] = set()

    def planned(snapshot: Snapshot) -> Plan:
        now = make_plan(desired, snapshot, session.providers)
        applied = verify(snapshot, now)
        plan_secrets(now, made_from)  # what the saved plan's secrets were made from, which its copies lost
        return applied

    return _locked_update(session, "apply", desired, planned, options=options, sink=sink,
                          confirm=confirm, refresh=saved.refreshed, recover=False, extra=extra,
                          known_secrets=made_from)


def _locked_update(
    session: StackSession, kind: str, desired: DesiredGraph, planned: Callable[[Snapshot], Plan],
    *, options: ApplyOptions, sink: EventSink, confirm: Confirm, refresh: bool = False,
    recover: bool = True, extra: dict[str, Any] | None = None, check: Check | None = None,
    known_secrets: Iterable[str] = (),
) -> UpdateOutcome:
    """The machinery every plan-applying change shares: resolve interrupted operations,
    plan, ``check``, confirm — all before the lock, so that nobody waits on a person at
    a prompt — then under the lock plan again, refuse unless that is the plan that was
    confirmed, apply, checkpoint, audit. The duration excludes the prompt.
    ``known_secrets``: see ``Applier``."""
    recorded: Snapshot | None = session.store.snapshot(session.stack)
    report = _no_recovery()
    if recover and recorded is not None and recorded.pending:
        report, recorded = resolve_interrupted(session, kind, options, sink), None
    base = _planning_snapshot(session, refresh, options.parallel, sink, recorded)
    proposed = planned(base)
    outcome = UpdateOutcome(plan=proposed, recovery=report)
    if check is not None:
        check(proposed)  # even a plan that changes nothing: a protected stack refuses the command
    if proposed.has_changes:
        _refuse_missing(desired, proposed)
        refuse_refused(proposed, session, options.parallel)
        if not confirm(proposed):
            outcome.cancelled = True
            return outcome
    started = time.monotonic()
    with stack_lock(session, kind, sink):
        writer = session.store.begin(session.stack, kind, session.who)
        # A lock held since before ``base`` was read (a `run --shard` claim): it is current.
        snapshot = base if session.held_lock is not None and not refresh else session.store.snapshot(session.stack)
        drift = None
        if refresh:
            from stackwright.engine.refresh import refreshed_snapshot

            drift = _closing(writer, lambda: _read_every(session, snapshot, options.parallel, sink))
            snapshot = refreshed_snapshot(snapshot, drift)  # at the serial read: what a saved plan pins
        if not refresh and _same_state(base, snapshot):
            plan = proposed  # planning is a function of the state, which is the one planned from
        else:
            plan = _closing(writer, lambda: _same_as_confirmed(proposed, planned(snapshot)))
        if drift is not None:
            from stackwright.engine.refresh import record_drift

            record_drift(drift, writer)  # once the plan made from it is the one confirmed
        outcome.plan = plan
        del proposed  # the plan confirmed is the plan now: one copy in memory while applying
        audit = {"plan_digest": plan.digest(), **(extra or {})}  # taken before apply starts
        sink.apply_started()
        if not plan.has_changes:
            outcome.checkpoint = writer.finish("succeeded", None)
            # Audited too: the staging gate needs to know this program is in place.
            _record_apply(session, kind, outcome, "succeeded", audit)
            return outcome
        tally = RetryTally(sink)
        outcome.result, outcome.stopped = _apply(session, plan, desired, writer, options, tally, known_secrets)
        audit["retries"] = tally.retries
        outputs = _final_outputs(desired, outcome.result, snapshot.resources, writer)
        status = "succeeded" if outcome.result.ok else (
            "interrupted" if outcome.result.interrupted else "failed")
        outcome.checkpoint = writer.finish(status, outputs)
    outcome.duration = time.monotonic() - started
    _record_apply(session, kind, outcome, status, audit)
    return outcome


def _read_every(session: StackSession, snapshot: Snapshot, parallel: int, sink: EventSink) -> RefreshResult:
    """Every object ``snapshot`` records, read; refused unless all could be."""
    from stackwright.operations.refresh import read_live

    result = read_live(session, snapshot, parallel, sink)
    require_all_read(result)
    return result


def _planning_snapshot(session: StackSession, refresh: bool, parallel: int, sink: EventSink,
                       recorded: Snapshot | None = None) -> Snapshot:
    """The recorded state (``recorded`` when the caller has just read it), or with
    ``refresh`` the live objects (read, not yet recorded)."""
    snapshot = recorded if recorded is not None else session.store.snapshot(session.stack)
    if not refresh:
        return snapshot
    from stackwright.engine.refresh import refreshed_snapshot

    return refreshed_snapshot(snapshot, _read_every(session, snapshot, parallel, sink))


def _same_state(before: Snapshot, now: Snapshot) -> bool:
    """Whether ``now`` holds what ``before`` held: every write of a stack's state bumps
    its serial, and a stack made again has a new lineage."""
    return (before.lineage, before.serial) == (now.lineage, now.serial)


def _same_as_confirmed(confirmed: Plan, now: Plan) -> Plan:
    """``now`` (planned under the lock), unless it does something ``confirmed`` did not
    say: the stack changed while someone was at the prompt."""
    from stackwright.plan.compare import differences

    problems = differences(confirmed, now)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise PlanError(f"the stack changed since this plan was shown: {problems[0]}{more}; nothing was changed",
                        hint="run the command again to see the new plan")
    return now


def _closing(writer: Any, make: Callable[[], T]) -> T:
    """``make()``; on refusal close the writer first (nothing was recorded: no checkpoint)."""
    try:
        return make()
    except BaseException:
        writer.finish("succeeded", None)
        raise


def resolve_interrupted(session: StackSession, kind: str, options: ApplyOptions,
                        sink: EventSink) -> RecoveryReport:
    """Resolve the operations an earlier run left pending (reading the live objects),
    under the lock, so that the plan shown next is made against what exists."""
    if not session.store.snapshot(session.stack).pending:
        return _no_recovery()
    with stack_lock(session, kind, sink):
        writer = session.store.begin(session.stack, kind, session.who)
        try:
            report = _recover(session, writer, options, sink)
        finally:
            writer.finish("succeeded", None)
    return report


def _refuse_missing(desired: DesiredGraph, plan: Plan) -> None:
    """Values read from other stacks that are not there yet preview as unknown, but
    applying this stack cannot compute them: refuse before changing anything, naming
    the stack and output."""
    sources: list[Any] = [desired.exports]
    for step in plan.steps:
        resource = desired.resources.get(step.urn)
        if resource is not None and step.op.value != "delete":
            sources += [resource.inputs, resource.read_id]
    missing = [why for source in sources for why in missing_in(source)]
    if missing:
        raise missing[0]


def _record_apply(session: StackSession, kind: str, outcome: UpdateOutcome, status: str,
                  extra: dict[str, Any] | None = None) -> None:
    """The audit log's line for an apply: what ran, from which program and config;
    ``extra`` holds the plan digest and what the caller adds."""
    data: dict[str, Any] = {
        "result": status, "checkpoint": outcome.checkpoint.number if outcome.checkpoint else None,
        "counts": outcome.plan.counts(), "program_digest": outcome.plan.program_digest,
        "config_digest": outcome.plan.config_digest, "duration": round(outcome.duration, 3),
        "steps": step_outcomes(outcome.result),
        **(extra or {}),
    }
    session.store.record_event(session.stack, kind, session.who, data)


def step_outcomes(result: ApplyResult | None) -> dict[str, int]:
    """How many steps succeeded, failed, were skipped or never started (for metrics)."""
    if result is None:
        return {}
    return {"succeeded": sum(result.done.values()), "failed": len(result.failures),
            "skipped": len(result.skipped), "not started": len(result.not_started)}


class RetryTally(MaskingSink):
    """Relays every event (a masking sink with nothing to mask) and counts the retries,
    which the apply's audit event records."""

    def __init__(self, inner: EventSink) -> None:
        super().__init__(inner, set())
        self.retries = 0

    def step_retrying(self, urn: str, action: str, attempt: int, delay: float, error: str) -> None:
        self.retries += 1
        super().step_retrying(urn, action, attempt, delay, error)


def destroy(session: StackSession, *, options: ApplyOptions, sink: EventSink,
            confirm: Confirm, targets: Iterable[str] = (), check: Check | None = None,
            audit: dict[str, Any] | None = None) -> UpdateOutcome:
    """Delete every resource of the stack, dependents first; with ``targets``, only
    those and every resource that depends on them (which would break without them).
    A targeted destroy keeps the stack's outputs as recorded, as Pulumi does: the
    program does not run, and other stacks may read outputs of what stays."""
    empty = DesiredGraph(stack=session.stack, project=session.project.name, resources={}, deps={})
    chosen = tuple(targets)
    if chosen:
        snapshot = session.store.snapshot(session.stack)
        chosen = tuple(sorted(with_dependents(snapshot, chosen)))
        empty.exports = dict(snapshot.outputs)
    return up(session, options=options, sink=sink, confirm=confirm, kind="destroy", desired=empty,
              targets=chosen, check=check, audit=audit)


def with_dependents(snapshot: Snapshot, targets: Iterable[str]) -> set[str]:
    """The recorded resources ``targets`` name, and everything that depends on them."""
    graph: Graph[str] = Graph({urn: list(r.deps) for urn, r in snapshot.resources.items()})
    return graph.reversed().closure(resolve_targets(targets, snapshot.resources, component_urns(None, snapshot)))


def _recover(session: StackSession, writer: Any, options: ApplyOptions, sink: EventSink) -> RecoveryReport:
    from stackwright.engine.calls import ProviderCalls
    from stackwright.engine.recovery import recover

    snapshot = session.store.snapshot(session.stack)
    if not snapshot.pending:
        return _no_recovery()

    async def run() -> RecoveryReport:
        calls = ProviderCalls(options.parallel, options.retry, sink, options.timeout)
        try:
            return await recover(snapshot, session.providers, writer, calls, session.config_secrets())
        finally:
            calls.close()

    return run_async(run())


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``; asyncio is imported only once something runs (a preview or an
    `up` with nothing to change or read never loads it)."""
    import asyncio

    return asyncio.run(coroutine)


def _apply(session: StackSession, plan: Plan, desired: DesiredGraph, writer: Any,
           options: ApplyOptions, sink: EventSink, known_secrets: Iterable[str] = ()) -> tuple[ApplyResult, bool]:
    """The result, and whether Ctrl-C or SIGTERM asked to stop meanwhile. Besides
    ``known_secrets``, the stack's secret config is known: a plan made from recorded
    values (a rollback, a saved plan) no longer says what its secrets were made of."""
    from stackwright.engine.apply import Applier, runs_in_process

    known = session.config_secrets().union(known_secrets)

    def resolver(urn: str, lookup: PropertyLookup) -> dict[str, Any]:
        resource = desired.resources[urn]
        source = {"id": resource.read_id} if resource.read_id is not None else resource.inputs
        value: dict[str, Any] = resolve_value(source, lambda res, prop: lookup(res.urn, prop))
        if resource.read_id is None:
            resource.check_resolved(value)
        return value

    if runs_in_process(plan, session.providers):
        return _apply_inline(Applier(plan, session.providers, writer, options, sink, resolver, inline=True,
                                     known_secrets=known), sink)

    async def run() -> tuple[ApplyResult, bool]:
        import asyncio

        stop = asyncio.Event()
        applier = Applier(plan, session.providers, writer, options, sink, resolver, stop, known_secrets=known)
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
            return await applier.run(), stop.is_set()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.remove_signal_handler(sig)
                except (NotImplementedError, RuntimeError):
                    pass

    return run_async(run())


def _apply_inline(applier: Applier, sink: EventSink) -> tuple[ApplyResult, bool]:
    """``applier.run_inline()`` with Ctrl-C and SIGTERM turned into a stop after the
    step under way, as the event loop's handlers do for a parallel apply; and whether
    one came."""
    def interrupt(signum: int, frame: Any) -> None:
        applier.stop.set()
        sink.stopping()

    previous: dict[signal.Signals, Any] = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, interrupt)
    except ValueError:
        pass  # not the main thread: signals stay with whoever handles them there
    try:
        return applier.run_inline(), applier.stop.is_set()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _final_outputs(desired: DesiredGraph, result: ApplyResult, recorded: dict[str, Any],
                   writer: Any) -> dict[str, Any]:
    """Stack outputs resolved from what was applied, falling back to recorded values.
    What a failed step left unknown is recorded as unknown: outputs never claim a
    value they do not have, nor silently disappear. An output whose callback raises is
    unknown too, and a recorded failure of the update. Then the callbacks of the
    Outputs nothing uses that planning could not run yet (``Leaves``) run, each failure
    recorded the same way."""
    def lookup(resource: Resource, prop: str) -> Any:
        live = result.outputs.get(resource.urn)
        if live is None and resource.urn in recorded:
            record = recorded[resource.urn]
            live = {**record.outputs, "id": record.id}
        return (live or {}).get(prop, UNKNOWN)

    outputs: dict[str, Any] = {}
    for key, value in desired.exports.items():
        try:
            outputs[key] = resolve_value(value, lookup)
        except Exception as exc:  # noqa: BLE001 - recorded as this output's failure
            outputs[key] = UNKNOWN
            _record_failure(result, writer, f"output {key}", "export", exc)
    for raised in desired.leaves.run(lookup):
        _record_failure(result, writer, "output callback", "apply", raised)
    return outputs


def _record_failure(result: ApplyResult, writer: Any, what: str, action: str, exc: Exception) -> None:
    """A failure of the update that is no step's: shown with the steps' and checkpointed."""
    from stackwright.engine.apply import Failure, failure_message

    message = failure_message(exc, None)
    result.failures.append(Failure(what, action, message))
    writer.add_change(Change(what, "output", action, error=message))
