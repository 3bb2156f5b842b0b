"""Applying a Plan: an asynchronous walk of its steps' dependency graph.

Each resource step becomes one or two actions: ``("C", urn)`` creates, updates or
confirms it; ``("D", urn)`` deletes it or the old half of a replacement (``("L", urn)``
deletes old halves an earlier run left; ``("W", urn)`` only waits). An action
starts the instant its last dependency finishes. At most ``parallel`` provider calls
run at once, and up to ``parallel`` more actions are prepared ahead (inputs resolved,
pending record committed, call queued), so a call slot that frees up is refilled by
the pool's worker at once instead of after the event loop has caught up with a burst
of finished steps. Every provider call that creates or deletes is preceded by a
durable pending-operation record, and its outcome is recorded before any dependent
action starts.
"""

from __future__ import annotations

import gc
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from stackwright.engine.calls import CallWithdrawn, InlineCalls, ProviderCalls
from stackwright.engine.commit import GroupCommit, ImmediateCommit
from stackwright.engine.events import EventSink, MaskingSink
from stackwright.engine.retry import RetryPolicy
from stackwright.errors import CreatedButFailed, NotFoundError, PlanError, ProviderError, StackwrightError
from stackwright.graph import CycleFound, Graph, Outcome, walk, walk_in_order
from stackwright.model.resource import urn_name
from stackwright.model.values import (
    UNKNOWN, carry_secrets, is_plain, is_unknown, mark_containing, mask_text, masked, remark_secrets, reveal, secret_texts,
    wrap_secret_keys,
)
from stackwright.plan.diff import PropertyDiff
from stackwright.plan.plan import LEFTOVER_VERB, RETAINED_VERB, STATE_ONLY_VERB, Leftover, Op, Plan, Step
from stackwright.providers.protocol import (
    Created,
    OperationContext,
    ProviderLookup,
    ResourceProvider,
    instance_config,
)
from stackwright.state.records import Change, PendingOperation, ResourceState
from stackwright.state.store import StackWriter

if TYPE_CHECKING:
    import asyncio

Action = tuple[str, str]
WAIT: Final = "W"
"""The kind of an action that does nothing: the barrier a delete-first chain's deletes
wait behind (``_chains_wait_for_their_needs``)."""
PropertyLookup = Callable[[str, str], Any]
Resolver = Callable[[str, PropertyLookup], Mapping[str, Any]]
"""Re-resolves a resource's inputs from the outputs recorded so far, and raises when a
value known now does not fit the input's declared type (InputError, naming the
resource, the property and where it is declared)."""


@dataclass
class ApplyOptions:
    parallel: int = 16
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = 1800.0


@dataclass
class Failure:
    urn: str
    action: str
    message: str
    hint: str | None = None
    """What to do about it, when the error said (e.g. "make a new plan")."""


@dataclass
class ApplyResult:
    done: dict[str, int] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)
    interrupted: bool = False
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    provider_calls: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures and not self.interrupted and not self.skipped


class _DifferentFromPlan(StackwrightError):
    pass


def plan_secrets(plan: Plan, into: set[str] | None = None) -> set[str]:
    """The plain texts of the secrets a plan carries: inputs, recorded inputs and
    outputs, stack outputs."""
    found: set[str] = set() if into is None else into
    for step in plan.steps:
        for value in (step.inputs, step.old_inputs, step.old_outputs):
            if value is not None:
                secret_texts(value, found)
    for leftover in plan.leftovers:
        secret_texts(leftover.inputs, found)
    secret_texts(dict(plan.outputs), found)
    secret_texts(dict(plan.old_outputs), found)
    return found


class _CollectorPause:
    """``young_collections_only``: counted, so that walks running side by side (a
    workspace's stacks in one process) restore the thresholds only when the last ends."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.walks = 0
        self.saved: tuple[int, int, int] | None = None

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self.lock:
            self.walks += 1
            if self.walks == 1:
                self.saved = gc.get_threshold()
                gc.set_threshold(max(self.saved[0], 10_000), self.saved[1], _NEVER)
        try:
            yield
        finally:
            with self.lock:
                self.walks -= 1
                if self.walks == 0 and self.saved is not None:
                    gc.set_threshold(*self.saved)


_NEVER: Final = 2**31 - 1
young_collections_only = _CollectorPause()
"""While steps run, the cycle collector scans what was made since the walk started
(the garbage of provider calls dies young) but never the whole heap: the plan, the
program's graph and the state read for it stay alive until the walk ends, and scanning
them again every few thousand steps cost a tenth of the bookkeeping of a
10,000-resource apply. Young collections come every 10,000 allocations instead of 700:
most of a step's objects are then freed before one looks at them, rather than scanned
and moved to the middle generation. Thresholds are restored when the last walk ends."""


class StopFlag:
    """Set on an interrupt: no new step starts (the in-line walk's ``asyncio.Event``)."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


def runs_in_process(plan: Plan, providers: ProviderLookup) -> bool:
    """Whether every provider call the plan makes is done in this process on local
    memory or files (``ResourceProvider.in_process``): then running steps side by side
    gains nothing, and the plan is applied one step at a time without an event loop."""
    types = {step.type for step in plan.steps if step.changes} | {leftover.type for leftover in plan.leftovers}
    return all(getattr(providers.resource(type_), "in_process", False) for type_ in types)


class Applier:
    """Walks one plan. Create it, call ``run()`` (or, with ``inline``, ``run_inline()``),
    read the ApplyResult.

    ``inline``: the plan's calls are all in-process (``runs_in_process``); steps run one
    at a time on this thread, each write committed on its own, and neither asyncio nor
    a thread pool is loaded. Every durability rule is the same: a step's pending record
    is committed before its call and its outcome before the next step starts.
    """

    def __init__(
        self, plan: Plan, providers: ProviderLookup, writer: StackWriter,
        options: ApplyOptions, sink: EventSink, resolver: Resolver | None = None,
        stop: asyncio.Event | None = None, inline: bool = False, known_secrets: Iterable[str] = (),
    ) -> None:
        """``known_secrets``: plain texts of secrets the plan's values were made from
        that its own copies may not show (a stack's secret config, read through
        ``sw.fmt`` into a command): outputs holding them are secret too."""
        self.plan = plan
        self.steps = {s.urn: s for s in plan.steps}
        self.leftovers: dict[str, list[Leftover]] = {}
        for leftover in plan.leftovers:
            self.leftovers.setdefault(leftover.urn, []).append(leftover)
        self.providers = providers
        self.writer = writer
        self.options = options
        self.secrets = plan_secrets(plan)
        self.secrets.update(known_secrets)
        """Plain texts of every secret this walk knows, masked out of every message."""
        self.sink = MaskingSink(sink, self.secrets)
        self.resolver = resolver
        self.result = ApplyResult()
        self.live: dict[str, dict[str, Any]] = {}
        self.inline = inline
        self.stop: asyncio.Event | StopFlag
        self.calls: ProviderCalls | InlineCalls
        self.commit: GroupCommit | ImmediateCommit
        if inline:
            self.stop = StopFlag()
            self.calls = InlineCalls(options.retry, sink, options.timeout)
            self.commit = ImmediateCommit(writer)
        else:
            import asyncio

            self.stop = stop or asyncio.Event()
            self.calls = ProviderCalls(options.parallel, options.retry, sink, options.timeout)
            self.commit = GroupCommit(writer)
        self._in_flight: dict[Action, str] = {}
        """The pending record of each action's provider call under way."""
        self._old_halves: dict[str, str] = {}
        """URN -> token of the pending delete recording the old object of a
        create-before-delete replacement (see ``_record_old_half``)."""
        self._handlers: dict[str, ResourceProvider] = {}
        self._graph: Graph[Action] = Graph()
        self._early: dict[str, dict[str, Any]] = {}
        """The inputs of delete-first replacements resolved before their deletes
        (``_check_before_deleting``), for their creates."""

    async def run(self) -> ApplyResult:
        import asyncio

        graph, order = ordered_action_graph(self.plan)
        self._graph = graph
        watcher = asyncio.ensure_future(self._withdraw_on_stop())
        try:
            with young_collections_only():
                fate = await walk(graph, self._visit, parallel=self._ahead() * self.options.parallel,
                                  on_skip=self._skipped, should_stop=self.stop.is_set, order=order)
        finally:
            watcher.cancel()
            self.calls.close()
            self.sink.apply_finished()
        return self._finished(fate)

    def run_inline(self) -> ApplyResult:
        """The walk of an ``inline`` Applier: one step after another on this thread."""
        graph, order = ordered_action_graph(self.plan)
        self._graph = graph
        try:
            with young_collections_only():
                fate = walk_in_order(graph, self._visit_now, on_skip=self._skipped, should_stop=self.stop.is_set,
                                     order=order)
        finally:
            self.sink.apply_finished()
        return self._finished(fate)

    def _visit_now(self, action: Action) -> Outcome:
        """Runs ``_visit`` to its end without an event loop: in-line, nothing it awaits
        suspends (``InlineCalls``, ``ImmediateCommit``)."""
        visit = self._visit(action)
        try:
            visit.send(None)
        except StopIteration as done:
            outcome: Outcome = done.value
            return outcome
        visit.close()
        raise RuntimeError(f"the step {action} waited on an event loop in an in-line apply")

    def _finished(self, fate: dict[Action, str]) -> ApplyResult:
        self.result.not_started = [urn for (kind, urn), f in fate.items() if f == "not-started" and kind != WAIT]
        self.result.interrupted = self.stop.is_set() and bool(self.result.not_started)
        self.result.outputs = self.live
        self.result.provider_calls = self.calls.attempts
        return self.result

    def _ahead(self) -> int:
        """How many steps may be under way per provider-call slot: one calling, one
        being prepared; with commits that wait on the network (S3) a step also spends
        that wait before and after its call, so more steps are kept under way."""
        return 4 if getattr(self.writer, "slow_commits", False) else 2

    async def _withdraw_on_stop(self) -> None:
        """On an interrupt, calls prepared ahead but not yet started are withdrawn."""
        assert not isinstance(self.stop, StopFlag)
        await self.stop.wait()
        self.calls.withdraw_queued()

    def _skipped(self, action: Action, cause: Action) -> None:
        if action[0] == WAIT:
            return
        self.result.skipped.append(action[1])
        deps = self._graph.deps.get(action, ())
        last = (WAIT, REMOVALS) in deps and cause not in deps
        why = " (resources removed from the program are deleted last)" if last else ""
        self.sink.step_finished(action[1], self._verb(action), "skipped", 0.0,
                                f"{urn_name(cause[1])} failed{why}")

    def _verb(self, action: Action) -> str:
        kind, urn = action
        if kind == "L":
            return LEFTOVER_VERB
        step = self.steps[urn]
        if step.op is Op.REPLACE:
            return "replace" if kind == "C" else LEFTOVER_VERB
        if step.state_only:
            return STATE_ONLY_VERB
        if step.retained:
            return RETAINED_VERB
        return _OP_TEXT[step.op]

    def _handler(self, type_: str) -> ResourceProvider:
        """The provider of ``type_``, looked up once per walk."""
        handler = self._handlers.get(type_)
        if handler is None:
            handler = self._handlers[type_] = self.providers.resource(type_)
        return handler

    def _type(self, urn: str) -> str:
        step = self.steps.get(urn)
        return step.type if step is not None else self.leftovers[urn][0].type

    async def _visit(self, action: Action) -> bool | None:
        kind, urn = action
        if kind == WAIT:
            return True
        verb = self._verb(action)
        step = self.steps.get(urn)
        quiet = kind == "C" and step is not None and step.op is Op.SAME and not step.state_only
        start = time.monotonic()
        if not quiet:
            self.sink.step_started(urn, verb)
        try:
            if step is not None and kind == "C":
                await self._create_side(step)
            elif step is not None and kind == "D":
                await self._delete_side(step)
            else:
                await self._delete_leftovers(urn)
        except CallWithdrawn as exc:
            await self._unwind(exc, kind, step)
            self.sink.step_finished(urn, verb, "not started", time.monotonic() - start)
            return None
        except Exception as exc:  # noqa: BLE001 - whatever a step raises is its recorded failure
            await self._unwind(exc, kind, step)
            message = mask_text(failure_message(exc, step), self.secrets)
            hint = mask_text(exc.hint, self.secrets) if isinstance(exc, StackwrightError) and exc.hint else None
            hint = hint or _gone_hint(exc, kind, step)
            self.result.failures.append(Failure(urn, verb, message, hint))
            self.writer.add_change(Change(urn, self._type(urn), verb, error=message))
            self.sink.step_finished(urn, verb, "failed", time.monotonic() - start, message)
            return False
        self._in_flight.pop(action, None)
        if not quiet:
            self.result.done[verb] = self.result.done.get(verb, 0) + 1
            self.sink.step_finished(urn, verb, "ok", time.monotonic() - start)
        return True

    async def _unwind(self, exc: Exception, kind: str, step: Step | None) -> None:
        """Settle the pending records of a step whose provider call failed or never ran.
        A leftover's record stays whatever happened: the next plan lists it again."""
        if step is None or kind == "L":
            return
        await self._settle_pending(exc, (kind, step.urn), keep=kind == "D" and step.op is Op.REPLACE)
        if kind == "C" and step.urn in self._old_halves:
            # No new object was recorded, so the record still names the old one.
            await self.commit(self.writer.clear_pending, self._old_halves.pop(step.urn))

    async def _settle_pending(self, exc: Exception, action: Action, keep: bool = False) -> None:
        """Clear the failed call's pending record when the provider's answer was
        definitive. After retries ran out on a transient error, or after an unexpected
        exception, the outcome is unknown, so the record stays and the next run
        resolves it by reading the live object.
        ``keep`` holds it regardless: a replaced object's old half that failed to delete
        is named only by its pending record, and the next run must finish the delete."""
        token = self._in_flight.pop(action, None)
        if token is None:
            return
        if keep or not isinstance(exc, StackwrightError) or (isinstance(exc, ProviderError) and exc.retryable):
            return
        await self.commit(self.writer.clear_pending, token)

    async def _pending(self, op: PendingOperation) -> None:
        """Record ``op`` before its call; a delete is the "D" action of its URN, a
        create or update the "C" one."""
        await self.commit(self.writer.record_pending, op)
        self._in_flight["D" if op.op == "delete" else "C", op.urn] = op.token

    async def _create_side(self, step: Step) -> None:
        if step.previous_urn:
            await self.commit(self.writer.rename_resource, step.previous_urn, step.urn)
            self.writer.add_change(Change(step.urn, step.type, "rename",
                                          [{"path": "urn", "kind": "update", "old": step.previous_urn,
                                            "new": step.urn}]))
            if step.op is Op.SAME:
                self.result.done["rename"] = self.result.done.get("rename", 0) + 1
        if step.op is Op.SAME:
            await self._confirm(step)
            return
        if step.op is Op.READ:
            await self._read(step)
            return
        inputs = self._inputs(step)
        if step.op is Op.UPDATE:
            await self._update(step, inputs)
        else:
            await self._create(step, inputs)

    async def _confirm(self, step: Step) -> None:
        assert step.old_outputs is not None and step.old_id is not None
        self.live[step.urn] = {**step.old_outputs, "id": step.old_id}
        if step.meta_changed:
            state = self._state(step, step.old_id, dict(step.inputs or {}), dict(step.old_outputs))
            change = Change(step.urn, step.type, STATE_ONLY_VERB, _diffs_json(step.option_diffs))
            await self.commit(self.writer.record_resource, state, change)

    def _lookup(self, urn: str, prop: str) -> Any:
        outputs = self.live.get(urn)
        if outputs is None:
            step = self.steps.get(urn)
            if step is not None and step.old_outputs is not None and step.old_id is not None:
                outputs = {**step.old_outputs, "id": step.old_id}
            else:
                return UNKNOWN
        return outputs.get(prop, UNKNOWN)

    def _settled_lookup(self, urn: str, prop: str) -> Any:
        """``_lookup`` of values that no step still to come can change: applied in this
        walk, or recorded for a resource it leaves as it is; UNKNOWN for the others."""
        if urn not in self.live:
            step = self.steps.get(urn)
            if step is not None and step.op is not Op.SAME:
                return UNKNOWN
        return self._lookup(urn, prop)

    def _check_before_deleting(self, step: Step) -> None:
        """A resource replaced delete-first is gone once its delete returns, so the
        inputs of its new object are resolved first, as far as what they read is
        settled (the chain's deletes wait for the creates and updates it needs): a value
        of the wrong type, or a callback that raises, fails the step with the old
        object still in place. Known in full, the checked inputs are kept for the
        create, whose callbacks then do not run again. A value that reads an object
        the chain itself deletes and creates again can only be known after the delete:
        it is checked before the create, the old object being gone by then."""
        if self.resolver is None or not is_unknown(step.inputs):
            return
        try:
            resolved = dict(self.resolver(step.urn, self._settled_lookup))
            if not is_unknown(resolved):
                self._early[step.urn] = self._checked(step, resolved)
        except StackwrightError as exc:
            exc.message = f"{exc.message} (found before its delete: the object is kept)"
            raise

    def _inputs(self, step: Step) -> dict[str, Any]:
        planned = dict(step.inputs or {})
        if self.resolver is None or not is_unknown(planned):
            return planned
        early = self._early.pop(step.urn, None)
        if early is not None:
            return early
        return self._checked(step, dict(self.resolver(step.urn, self._lookup)))

    def _checked(self, step: Step, resolved: dict[str, Any]) -> dict[str, Any]:
        """Inputs resolved at apply, checked against the plan and by the provider."""
        planned = dict(step.inputs or {})
        if is_plain(resolved):  # no secret to reveal and mark again, nothing unknown
            _check_matches_plan(step.urn, planned, resolved)
            return dict(self._handler(step.type).check(resolved))
        if is_unknown(resolved):
            raise ProviderError("an input is still unknown after its dependencies were applied")
        _check_matches_plan(step.urn, planned, resolved)
        handler = self._handler(step.type)
        checked = handler.check(reveal(resolved))
        return {k: remark_secrets(resolved.get(k), v) for k, v in checked.items()}

    async def _create(self, step: Step, inputs: dict[str, Any]) -> None:
        handler = self._handler(step.type)
        if step.op is Op.REPLACE and not step.delete_before_replace:
            await self._record_old_half(step)
        token = _token()
        await self._pending(PendingOperation(
            token=token, urn=step.urn, type=step.type, op="create", inputs=inputs,
            parent=step.parent, deps=list(step.deps), started_at=time.time()))
        ctx = self._context(step.urn, token, handler, inputs)
        try:
            created = await self.calls.run(step.urn, "create", handler.create, ctx, reveal(inputs))
        except CreatedButFailed as exc:
            await self._record_created(step, token, handler, inputs, Created(exc.id, exc.outputs))
            self._in_flight.pop(("C", step.urn), None)
            # The new object is recorded: the old half's pending delete stays, for the plan.
            self._old_halves.pop(step.urn, None)
            raise
        await self._record_created(step, token, handler, inputs, created)

    async def _record_created(self, step: Step, token: str, handler: ResourceProvider,
                              inputs: dict[str, Any], created: Created) -> None:
        returned = self._as_recorded(inputs, created.outputs)
        outputs = wrap_secret_keys({**inputs, **returned}, handler.secret_keys(inputs))
        change = Change(step.urn, step.type, _OP_TEXT[step.op], _diffs_json(step.diffs))
        await self.commit(self.writer.record_resource, self._state(step, created.id, inputs, outputs),
                          change, clears=token)
        self.live[step.urn] = {**outputs, "id": created.id}
        if not is_plain(outputs):
            secret_texts(outputs, self.secrets)
        self.sink.state_persisted(step.urn)

    def _as_recorded(self, inputs: Mapping[str, Any], returned: Mapping[str, Any]) -> dict[str, Any]:
        """A provider's outputs as recorded: secret where they echo a secret input or
        hold a known secret's text. Plain outputs of plain inputs, while no secret is
        known, have nothing to mark."""
        if not self.secrets and is_plain(inputs) and is_plain(returned):
            return dict(returned)
        marked: dict[str, Any] = mark_containing(carry_secrets(inputs, returned), self.secrets)
        return marked

    async def _read(self, step: Step) -> None:
        """A data lookup: record what is there, marked so that it is never deleted."""
        read_id = (step.inputs or {}).get("id")
        if self.resolver is not None and is_unknown(read_id):
            read_id = self.resolver(step.urn, self._lookup).get("id", read_id)
        if not isinstance(read_id, str):
            raise ProviderError("the id to read is still unknown after its dependencies were applied")
        handler = self._handler(step.type)
        ctx = self._context(step.urn, f"read-{read_id}", handler, step.inputs or {})
        live = await self.calls.run(step.urn, "read", handler.read, ctx, read_id, {}, {})
        if live is None:
            raise ProviderError(f"no {step.type} with id {read_id!r} exists")
        # What it holds may be what another resource wrote from a secret (a file of credentials).
        found = self._as_recorded({}, live.inputs)
        outputs = wrap_secret_keys({**found, **self._as_recorded({}, live.outputs)}, handler.secret_keys(found))
        recorded = {**found, **{k: v for k, v in (step.inputs or {}).items() if k == handler.provider_input}}
        state = ResourceState(urn=step.urn, type=step.type, id=live.id, inputs=recorded,
                              outputs=outputs, parent=step.parent, deps=list(step.deps),
                              retain_on_delete=True, external=True)
        await self.commit(self.writer.record_resource, state, Change(step.urn, step.type, "read"))
        self.live[step.urn] = {**outputs, "id": live.id}

    async def _update(self, step: Step, inputs: dict[str, Any]) -> None:
        assert step.old_id is not None and step.old_inputs is not None and step.old_outputs is not None
        handler = self._handler(step.type)
        token = _token()
        await self._pending(PendingOperation(
            token=token, urn=step.urn, type=step.type, op="update", inputs=inputs,
            resource_id=step.old_id, parent=step.parent, deps=list(step.deps),
            started_at=time.time()))
        ctx = self._context(step.urn, token, handler, inputs)
        returned = await self.calls.run(
            step.urn, "update", handler.update, ctx, step.old_id, reveal(step.old_inputs),
            reveal(step.old_outputs), reveal(inputs))
        returned = self._as_recorded(inputs, returned)
        outputs = wrap_secret_keys({**step.old_outputs, **inputs, **returned}, handler.secret_keys(inputs))
        change = Change(step.urn, step.type, "update", _diffs_json(step.diffs))
        await self.commit(self.writer.record_resource, self._state(step, step.old_id, inputs, outputs),
                          change, clears=token)
        self.live[step.urn] = {**outputs, "id": step.old_id}
        if not is_plain(outputs):
            secret_texts(outputs, self.secrets)
        self.sink.state_persisted(step.urn)

    async def _record_old_half(self, step: Step) -> None:
        """Create-before-delete: recording the new object overwrites the record of the
        old one, which is deleted only later, after the dependents moved to the new one.
        A pending delete, written before the create, keeps the old object known across
        a crash in between: recovery deletes it once the record names another object,
        and forgets it while the record still names it."""
        assert step.old_id is not None
        token = self._old_halves[step.urn] = _token()
        await self.commit(self.writer.record_pending, PendingOperation(
            token=token, urn=step.urn, type=step.type, op="delete",
            inputs=dict(step.old_inputs or {}), resource_id=step.old_id, started_at=time.time()))

    async def _delete_side(self, step: Step) -> None:
        assert step.old_id is not None
        if step.op is Op.REPLACE and step.delete_before_replace:
            self._check_before_deleting(step)
        if step.retained:
            await self.commit(self.writer.remove_resource, step.urn,
                              Change(step.urn, step.type, RETAINED_VERB), resource_id=step.old_id)
            return
        handler = self._handler(step.type)
        token = self._old_halves.pop(step.urn, None) or _token()
        await self._pending(PendingOperation(
            token=token, urn=step.urn, type=step.type, op="delete",
            inputs=dict(step.old_inputs or {}), resource_id=step.old_id, started_at=time.time()))
        ctx = self._context(step.urn, token, handler, step.old_inputs or {})
        await self.calls.run(step.urn, "delete", handler.delete, ctx, step.old_id,
                             reveal(step.old_inputs or {}), reveal(step.old_outputs or {}))
        if step.op is Op.REPLACE and not step.delete_before_replace:
            await self.commit(self.writer.clear_pending, token)
        else:
            change = Change(step.urn, step.type, "delete") if step.op is Op.DELETE else None
            await self.commit(self.writer.remove_resource, step.urn, change, clears=token,
                              resource_id=step.old_id)
        self.sink.state_persisted(step.urn)

    async def _delete_leftovers(self, urn: str) -> None:
        """Old objects of earlier replacements: each is read, deleted if it still
        exists, and its pending record cleared."""
        for leftover in self.leftovers[urn]:
            handler = self._handler(leftover.type)
            ctx = self._context(urn, leftover.token, handler, leftover.inputs)
            inputs = reveal(leftover.inputs)
            live = await self.calls.run(urn, "read", handler.read, ctx, leftover.id, inputs, {})
            if live is not None:
                await self.calls.run(urn, "delete", handler.delete, ctx, leftover.id, inputs,
                                     reveal(live.outputs))
            await self.commit(self.writer.clear_pending, leftover.token,
                              Change(urn, leftover.type, LEFTOVER_VERB))

    def _context(self, urn: str, token: str, handler: ResourceProvider,
                 inputs: Mapping[str, Any]) -> OperationContext:
        config = instance_config(handler, inputs, self._outputs_of)
        return self.calls.context(urn, urn_name(urn), token, config, lineage=self.plan.lineage)

    def _outputs_of(self, urn: str) -> Mapping[str, Any] | None:
        """Outputs as of now: applied in this run, else recorded before it."""
        live = self.live.get(urn)
        step = self.steps.get(urn)
        if live is None and step is not None and step.old_outputs is not None:
            live = dict(step.old_outputs)
        return live

    def _state(self, step: Step, id: str, inputs: dict[str, Any], outputs: dict[str, Any]) -> ResourceState:
        return ResourceState(
            urn=step.urn, type=step.type, id=id, inputs=inputs, outputs=outputs,
            parent=step.parent, deps=list(step.deps), protect=step.protect,
            retain_on_delete=step.retain_on_delete, options=dict(step.options))


def failure_message(exc: Exception, step: Step | None) -> str:
    """One line saying where: the user's line when the error has one (an Output
    callback's), else where the resource is declared; "internal error" for an exception
    that is nobody's mistake but ours or a provider's."""
    where = exc.location() if isinstance(exc, StackwrightError) else ""
    if not where and step is not None and step.decl:
        where = step.decl
    what = exc.message if isinstance(exc, StackwrightError) else f"internal error: {type(exc).__name__}: {exc}"
    if isinstance(exc, StackwrightError) and exc.prop and exc.prop not in what:
        what = f"{exc.prop}: {what}"  # the property, as the CLI's headline of the error names it
    return f"{where}: {what}" if where else what


def _gone_hint(exc: Exception, kind: str, step: Step | None) -> str | None:
    """The way out of an update or a delete whose object the provider did not find."""
    if not isinstance(exc, NotFoundError) or step is None:
        return None
    if kind == "D" or (kind == "C" and step.op is Op.UPDATE):
        return ("it may have been deleted outside Stackwright: `stackwright refresh --yes` "
                "(or `stackwright up --refresh`) records that it is gone")
    return None


_OP_TEXT: Final = {op: str(op.value) for op in Op}
"""Each op's word (``Op.value`` is a Python-level property, read twice per step)."""
_RUN = uuid.uuid4().hex[:12]
_COUNTER = itertools.count()


def _token() -> str:
    """Unique per pending operation (one random prefix per process, then a counter)."""
    return f"{_RUN}-{next(_COUNTER)}"


def _diffs_json(diffs: tuple[PropertyDiff, ...]) -> list[dict[str, Any]]:
    return [{"path": d.path, "kind": d.kind, "old": masked(d.old), "new": masked(d.new)}
            for d in diffs]


def _check_matches_plan(urn: str, planned: Any, resolved: Any, path: str = "") -> None:
    """Every value the plan already knew must come out the same at apply time."""
    if planned is UNKNOWN or planned == resolved:
        return
    if isinstance(planned, Mapping) and isinstance(resolved, Mapping):
        for key in set(planned) | set(resolved):
            known, value = planned.get(key), resolved.get(key)
            if known is not UNKNOWN and known != value:
                _check_matches_plan(urn, known, value, f"{path}.{key}".lstrip("."))
    elif isinstance(planned, list) and isinstance(resolved, list) and len(planned) == len(resolved):
        for index, (a, b) in enumerate(zip(planned, resolved)):
            _check_matches_plan(urn, a, b, f"{path}[{index}]")
    elif planned != resolved:
        raise _DifferentFromPlan(
            f"{path or 'inputs'} came out different from the plan",
            resource=urn, hint="make a new plan: something it depended on changed",
        )


def action_graph(plan: Plan) -> Graph[Action]:
    """The order of actions: creates after their dependencies, deletes after the
    resources that depended on them have been deleted or moved away."""
    return ordered_action_graph(plan)[0]


def ordered_action_graph(plan: Plan) -> tuple[Graph[Action], list[Action]]:
    """``action_graph`` and its topological order, which the walk starts from (ordering
    it once: finding a cycle orders it anyway)."""
    steps = {s.urn: s for s in plan.steps}
    dependents = _dependents(plan.steps)
    graph: Graph[Action] = Graph()
    for step in plan.steps:
        if step.op is not Op.DELETE:
            deps = [("C", d) for d in step.deps if d in steps and steps[d].op is not Op.DELETE]
            if step.op is Op.REPLACE and step.delete_before_replace:
                deps.append(("D", step.urn))
            graph.add(("C", step.urn), deps)
        if step.op in (Op.DELETE, Op.REPLACE):
            graph.add(("D", step.urn), _delete_deps(step, dependents.get(step.urn, {})))
    for urn in dict.fromkeys(leftover.urn for leftover in plan.leftovers):
        graph.add(("L", urn), _leftover_deps(urn, steps.get(urn), dependents.get(urn, {})))
    try:
        order = graph.topological_order()
    except CycleFound as exc:
        raise _unorderable([(str(a[0]), str(a[1])) for a in exc.cycle], steps) from None  # type: ignore[index]
    if _chains_wait_for_their_needs(graph, plan.steps, order):
        order = graph.topological_order()
    if _removals_wait_for_the_rest(graph, plan.steps, order):
        order = graph.topological_order()
    return graph, order


REMOVALS: Final = ""
"""The key of the barrier (``WAIT``) that resources removed from the program are
deleted behind (``_removals_wait_for_the_rest``)."""


def _removals_wait_for_the_rest(graph: Graph[Action], steps: Iterable[Step], order: list[Action]) -> bool:
    """Resources removed from the program are deleted last, as Pulumi does: after every
    create and update that waits for no delete. When one of those fails, nothing is
    deleted, and the old objects stay (a renamed bucket whose new name is taken keeps
    the old bucket). Adds no cycle: what the barrier waits for waits for no delete.
    Returns whether it added anything."""
    removals = [("D", s.urn) for s in steps if s.op is Op.DELETE]
    if not removals:
        return False
    changing = {("C", s.urn) for s in steps if s.op is not Op.SAME and s.op is not Op.DELETE}
    needs = [action for action in _waits_for_no_delete(graph, order) if action in changing]
    if not needs:
        return False
    barrier = (WAIT, REMOVALS)
    graph.add(barrier, needs)
    for removal in removals:
        graph.add(removal, [barrier])
    return True


def _chains_wait_for_their_needs(graph: Graph[Action], steps: Iterable[Step], order: list[Action]) -> bool:
    """A resource replaced delete-first, and the chain deleted with it, are gone until
    they are created again; creating them needs creates and updates that nothing
    deletes first (the new subnets of a cluster). Those run before the chain's first
    delete: when one of them fails, the chain is skipped with its old objects in place,
    instead of a cluster deleted that cannot be created again. Chains that share an
    action wait behind one barrier (``WAIT``) for what all of them need. Adds no cycle:
    what a barrier waits for waits for no delete. Returns whether it added anything."""
    starts = [("C", s.urn) for s in steps if s.op is Op.REPLACE and s.delete_before_replace]
    if not starts:
        return False
    firm = _waits_for_no_delete(graph, order)
    added = False
    for first, (deletes, needs) in _chains(graph, starts, firm).items():
        if deletes and needs:
            barrier = (WAIT, first[1])
            graph.add(barrier, needs)
            for delete in deletes:
                graph.add(delete, [barrier])
            added = True
    return added


def _waits_for_no_delete(graph: Graph[Action], order: list[Action]) -> set[Action]:
    """Creates and updates that wait, directly or not, for no delete of any kind."""
    firm: set[Action] = set()
    for action in order:
        if action[0] == "C" and all(dep in firm for dep in graph.deps.get(action, ())):
            firm.add(action)
    return firm


def _chains(graph: Graph[Action], starts: list[Action],
            firm: set[Action]) -> dict[Action, tuple[list[Action], list[Action]]]:
    """For each group of delete-first chains (keyed by its first start): its deletes, and
    the ``firm`` actions they must wait for. Found by one walk down from every chain's
    create through the actions that wait for a delete; walks that meet are one group."""
    group: dict[Action, Action] = {}
    merged: dict[Action, Action] = {}

    def root(key: Action) -> Action:
        path = []
        while merged.get(key, key) != key:
            path.append(key)
            key = merged[key]
        for step in path:  # later lookups take one hop
            merged[step] = key
        return key

    found: dict[Action, tuple[list[Action], dict[Action, None]]] = {}
    for start in starts:
        if start in group:
            continue
        group[start] = start
        deletes, needs = found[start] = ([], {})
        todo = [start]
        while todo:
            action = todo.pop()
            if action[0] == "D":
                deletes.append(action)
            for dep in graph.deps.get(action, ()):
                if dep in firm:
                    needs[dep] = None
                elif dep not in group:
                    group[dep] = start
                    todo.append(dep)
                elif root(group[dep]) != start:
                    merged[root(group[dep])] = start
    out: dict[Action, tuple[list[Action], dict[Action, None]]] = {}
    for key, (deletes, needs) in found.items():
        into = out.setdefault(root(key), ([], {}))
        into[0].extend(deletes)
        into[1].update(needs)
    return {key: (deletes, list(needs)) for key, (deletes, needs) in out.items()}


def _unorderable(cycle: list[Action], steps: Mapping[str, Step]) -> PlanError:
    """Names the actions of a true cycle in order, and what forces each replacement in it."""
    words = {"C": "create", "D": "delete", "L": "delete old"}
    names = " -> ".join(f"{words[kind]} {urn_name(urn)}" for kind, urn in cycle)
    causes = [f"{urn_name(urn)} is replaced because {', '.join(steps[urn].replace_keys)} changed"
              for urn in dict.fromkeys(urn for _, urn in cycle)
              if urn in steps and steps[urn].op is Op.REPLACE and steps[urn].replace_keys]
    because = f" ({'; '.join(causes)})" if causes else ""
    return PlanError(f"the plan's deletes and replacements cannot be ordered: {names}{because}",
                     resource=cycle[0][1], hint="apply the change in two steps, or set "
                     "delete_before_replace on the resources named")


def _dependents(steps: tuple[Step, ...]) -> dict[str, dict[str, tuple[Step, bool]]]:
    """For each URN, the steps that depend (or depended) on it, and whether they did
    in the recorded state."""
    out: dict[str, dict[str, tuple[Step, bool]]] = {}
    for step in steps:
        for dep in step.deps:
            out.setdefault(dep, {})[step.urn] = (step, dep in step.old_deps)
        for dep in step.old_deps:
            out.setdefault(dep, {})[step.urn] = (step, True)
    return out


def _delete_deps(step: Step, dependents: Mapping[str, tuple[Step, bool]]) -> list[Action]:
    dbr = step.op is Op.REPLACE and step.delete_before_replace
    deps: list[Action] = []
    if step.op is Op.REPLACE and not dbr:
        deps.append(("C", step.urn))
    return deps + _moved_away(step.urn, dependents, dbr)


def _leftover_deps(urn: str, step: Step | None,
                   dependents: Mapping[str, tuple[Step, bool]]) -> list[Action]:
    """An old half goes after the resource's own step and after everything that used it
    was deleted or moved to the new half, like the old half of a replacement in this plan."""
    own: list[Action] = [("C", urn)] if step is not None and step.op is not Op.DELETE else []
    return own + _moved_away(urn, dependents, dbr=False)


def _moved_away(urn: str, dependents: Mapping[str, tuple[Step, bool]], dbr: bool) -> list[Action]:
    """What must finish before the object of ``urn`` may go: dependents being deleted
    (or losing their old half), and unless deleting first, every dependent's new state."""
    deps: list[Action] = []
    for other_urn, (other, was_dependent) in dependents.items():
        if other_urn == urn:
            continue
        if other.op in (Op.DELETE, Op.REPLACE) and was_dependent:
            deps.append(("D", other_urn))
        if not dbr and other.op is not Op.DELETE:
            deps.append(("C", other_urn))
    return deps
