"""Running one command over many stacks of a workspace, in this process.

`stackwright run` walks the selected stacks one at a time, dependencies first (for
``destroy``, dependents first); a failed stack skips only the stacks that need it.
Each stack goes through the checks its single-stack command makes (environment,
staging gate, policies) and ends as a ``StackResult`` value the CLI renders.

Programs run one after another in this process: each has its own program context (a
``ContextVar``), the modules it imported from its project are forgotten when it ends,
and nothing reads the working directory or ``os.environ`` to learn its project, its
stack or who is acting: those are passed explicitly.

A stack planned earlier in the same run lends its planned outputs to the stacks that
reference it, so a workspace that was never applied can be previewed whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from stackwright.dataclass_methods import Compared, FrozenCompared, frozen_record
from stackwright.engine.events import EventSink
from stackwright.errors import StackNotApplied, StackwrightError, StateError
from stackwright.graph import Graph
from stackwright.model.context import ConfigSource
from stackwright.operations.keyring import Keyring
from stackwright.operations.session import StackSession, open_store, provider_config, stack_config
from stackwright.operations.update import UpdateOutcome, preview, preview_new
from stackwright.plan.plan import Plan
from stackwright.program.project import Project
from stackwright.program.workspace import ProjectEntry, Workspace
from stackwright.providers.registry import ProviderRegistry
from stackwright.state.records import LockInfo
from stackwright.state.store import StateStore

if TYPE_CHECKING:
    from stackwright.model.desired import DesiredGraph
    from stackwright.plan.links import StackLinks
    from stackwright.workflow.gateway import ChangeRequest, Kind
    from stackwright.workflow.policies import Violation

OK, FAILED, SKIPPED, NOT_STARTED = "ok", "failed", "skipped", "not-started"
PREVIEW, PLAN, UP, DESTROY = "preview", "plan", "up", "destroy"
ACTIONS = (PREVIEW, PLAN, UP, DESTROY)

Outputs = Mapping[str, Any]


# Every `run` loads these classes: their methods are written, not generated (see
# stackwright.dataclass_methods); they behave as the ``@dataclass`` they are declared.


@frozen_record
class RunOptions(FrozenCompared):
    """What one `run` does to every stack it selects."""

    action: str
    who: str
    """Who is acting, resolved once for the whole run."""
    parallel: int = 16
    """Provider calls at once within one stack."""
    out_dir: Path | None = None
    """``plan``: save each stack's plan as ``out_dir/<project>/<stack>.plan``."""
    sink: Callable[[], EventSink] = EventSink
    """Makes the event sink of each stack's apply (progress listeners)."""
    emergency: str | None = None
    """The reason for changing protected stacks without approved plans (see ``gateway``)."""
    allow_destroy: bool = False
    """Let policy ``no-destroy-stateful`` pass deletions (``destroy --allow-destroy``)."""

    def __init__(self, action: str, who: str, parallel: int = 16, out_dir: Path | None = None,
                 sink: Callable[[], EventSink] = EventSink, emergency: str | None = None,
                 allow_destroy: bool = False) -> None:
        object.__setattr__(self, "action", action)
        object.__setattr__(self, "who", who)
        object.__setattr__(self, "parallel", parallel)
        object.__setattr__(self, "out_dir", out_dir)
        object.__setattr__(self, "sink", sink)
        object.__setattr__(self, "emergency", emergency)
        object.__setattr__(self, "allow_destroy", allow_destroy)


@dataclass(init=False, repr=False, eq=False)
class StackResult(Compared):
    """What happened to one stack; the CLI renders it."""

    ref: str
    status: str
    seconds: float = 0.0
    plan: Plan | None = None
    violations: list[Violation] = field(default_factory=list)
    outcome: UpdateOutcome | None = None
    error: StackwrightError | None = None
    cause: str | None = None
    """For a skipped stack: the failed stack it needs."""
    new: bool = False
    """Not initialized yet: previewed as creating everything, or nothing to destroy."""
    plan_file: Path | None = None

    def __init__(self, ref: str, status: str, seconds: float = 0.0, plan: Plan | None = None,
                 violations: list[Violation] | None = None, outcome: UpdateOutcome | None = None,
                 error: StackwrightError | None = None, cause: str | None = None, new: bool = False,
                 plan_file: Path | None = None) -> None:
        self.ref = ref
        self.status = status
        self.seconds = seconds
        self.plan = plan
        self.violations = [] if violations is None else violations
        self.outcome = outcome
        self.error = error
        self.cause = cause
        self.new = new
        self.plan_file = plan_file

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def stopped(self) -> bool:
        """Ctrl-C or SIGTERM arrived while it applied: the run starts no other stack."""
        return self.outcome is not None and self.outcome.stopped


@frozen_record
class Listener(FrozenCompared):
    """Called as stacks start and finish (or are skipped)."""

    started: Callable[[str], None] = lambda ref: None
    finished: Callable[[StackResult], None] = lambda result: None

    def __init__(self, started: Callable[[str], None] = started,
                 finished: Callable[[StackResult], None] = finished) -> None:
        object.__setattr__(self, "started", started)
        object.__setattr__(self, "finished", finished)


def subgraph(graph: Graph[str], refs: Iterable[str]) -> Graph[str]:
    """The selected stacks and the dependencies among them, in the order given.

    Selections are closed under dependents, so any path between two selected stacks
    runs through selected stacks only: dropping the others loses no ordering."""
    keep = list(refs)
    chosen = set(keep)
    return Graph({ref: [d for d in graph.deps.get(ref, ()) if d in chosen] for ref in keep})


def walk_order(graph: Graph[str], action: str) -> tuple[list[str], Mapping[str, list[str]]]:
    """The stacks in the order ``action`` visits them, and what each must wait for:
    its dependencies, or for ``destroy`` its dependents. ``graph`` lists dependencies
    before dependents (as selections do)."""
    if action == DESTROY:
        return list(reversed(graph.deps)), graph.dependents()
    return list(graph.deps), graph.deps


def run_stacks(workspace: Workspace, graph: Graph[str], options: RunOptions,
               listener: Listener = Listener()) -> dict[str, StackResult]:
    """Run ``options.action`` over every stack of ``graph``, each after the stacks it
    waits for; one that failed skips those that wait for it, and after Ctrl-C none
    starts. Returns each result."""
    results: dict[str, StackResult] = {}
    with StackRunner(workspace, options) as runner:
        graph = runner.linked(graph)
        order, waits_for = walk_order(graph, options.action)
        stopped = False
        for ref in order:
            blocked = next((results[d] for d in waits_for.get(ref, ()) if not results[d].ok), None)
            if stopped:
                result = StackResult(ref, NOT_STARTED)
            elif blocked is not None:
                result = StackResult(ref, SKIPPED, cause=blocked.cause or blocked.ref)
            else:
                listener.started(ref)
                result = runner.run(ref)
                stopped = result.stopped
            results[ref] = result
            listener.finished(result)
    return {ref: results[ref] for ref in graph.deps}


class Prepared:
    """A claimed stack's session and its program's graph, and the seconds they took."""

    __slots__ = ("session", "desired", "seconds")

    def __init__(self, session: StackSession, desired: DesiredGraph, seconds: float) -> None:
        self.session = session
        self.desired = desired
        self.seconds = seconds


class StackRunner:
    """Runs one stack at a time for one `run`; remembers what earlier stacks planned
    or recorded as outputs, for the stacks that reference them, and keeps each
    project's state store open until the run ends (opening and closing one per stack
    is most of a trivial stack's cost)."""

    def __init__(self, workspace: Workspace, options: RunOptions,
                 stores: dict[str, StateStore] | None = None) -> None:
        """``stores``: projects' stores opened already (by ``initialize``), by project
        name; the runner closes them with its own."""
        self.workspace = workspace
        self.options = options
        self.known: dict[str, Outputs] = {}
        self.stores: dict[str, StateStore] = {} if stores is None else stores
        self.configs: dict[str, tuple[Keyring, ConfigSource]] = {}
        """Each stack's keys and config, read once: finding links reads them first."""
        self.unlinked: dict[str, StackwrightError] = {}
        """Stacks whose exports and imports could not be found: each fails with its error."""
        self.existing: dict[str, set[str]] = {}
        """Each project's stacks, listed once: a run never removes a stack."""
        self.prepared: dict[str, Prepared] = {}
        """A claimed stack's program, run while finding its links (``links_of_claimed``),
        for the ``up`` that follows at once."""

    def __enter__(self) -> StackRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        for store in self.stores.values():
            store.close()
        self.stores.clear()

    def store(self, project: Project) -> StateStore:
        if project.name not in self.stores:
            self.stores[project.name] = open_store(project)
        return self.stores[project.name]

    def run(self, ref: str, lock: LockInfo | None = None) -> StackResult:
        """The stack's result; a user error (``StackwrightError``) fails it. With
        ``lock``, the caller holds the stack's lock and updates work under it."""
        prepared = self.prepared.pop(ref, None)
        started = time.monotonic() - (prepared.seconds if prepared else 0.0)
        try:
            if ref in self.unlinked:
                self._unlinked(ref)
            result = self._act(ref, lock, prepared)
        except StackwrightError as exc:
            result = StackResult(ref, FAILED, error=exc)
        result.seconds = time.monotonic() - started
        return result

    def linked(self, graph: Graph[str]) -> Graph[str]:
        """``graph`` with each stack also after the stacks that export a name its
        resources import (CloudFormation ``Export`` / ``Fn::ImportValue``), as if it
        had ``depends_on`` them. A stack whose names cannot be found (its program
        fails) is remembered, and fails with that error when its turn comes."""
        if len(graph.deps) < 2:
            return graph
        return self.with_links(graph, self.links_of(graph.deps))

    def links_of(self, refs: Iterable[str]) -> dict[str, StackLinks]:
        """What each stack exports and imports; one whose names cannot be found is
        remembered in ``unlinked`` instead."""
        links: dict[str, StackLinks] = {}
        for ref in refs:
            try:
                links[ref] = self._links(ref)
            except StackwrightError as exc:
                self.unlinked[ref] = exc
        return links

    def links_of_claimed(self, ref: str) -> dict[str, StackLinks]:
        """``links_of([ref])`` for a stack about to be applied here, its program run only
        once: for real, kept in ``prepared`` for the ``up`` (whose caller takes it or
        calls ``forget``). A program that declares nothing of a type that exports or
        imports has no links whatever values it reads, so that run tells them. Else
        (and when that run fails, or for another action) they come from ``links_of``,
        as every worker of the run finds them."""
        if self.options.action != UP:
            return self.links_of([ref])
        from stackwright.plan.links import NO_LINKS, declares_links

        started = time.monotonic()
        try:
            session = self._session(self.entry(ref).project, ref.rpartition("/")[2])
            if session is None:  # not in the state: `up` refuses it
                return self.links_of([ref])
            desired = session.run_program()
            linking = declares_links(desired, session.providers)
        except StackwrightError:
            return self.links_of([ref])  # its `up` meets the error again, and fails as it would have
        self.prepared[ref] = Prepared(session, desired, time.monotonic() - started)
        return self.links_of([ref]) if linking else {ref: NO_LINKS}

    def forget(self, ref: str) -> None:
        """The stack claimed was let go: the program's graph may be out of date when it
        is claimed again."""
        self.prepared.pop(ref, None)

    def with_links(self, graph: Graph[str], links: Mapping[str, StackLinks]) -> Graph[str]:
        from stackwright.plan.links import stack_edges
        from stackwright.workflow.workspace import with_links

        return with_links(graph, stack_edges(links), self.workspace.shown)

    def _links(self, ref: str) -> StackLinks:
        """What the stack exports and imports: for ``destroy`` what it recorded, else
        what its program declares, run here with every ``StackReference`` unknown (as
        for a stack never applied: its planned outputs are not known yet)."""
        from stackwright.plan.links import NO_LINKS, desired_links, stack_links
        from stackwright.program.runner import run_program

        project, stack = self.entry(ref).project, ref.rpartition("/")[2]
        store = self.store(project)
        if self.options.action == DESTROY:
            if not store.stack_exists(stack):
                return NO_LINKS
            session = self._new_session(project, stack)
            recorded = store.snapshot(stack).resources.values()
            return stack_links(((r.urn, r.type, r.inputs) for r in recorded), session.providers)
        session = self._new_session(project, stack)
        desired = run_program(project, stack, session.config, read_stack_outputs=_unapplied,
                              python_path=self.workspace.python_path)
        return desired_links(desired, session.providers)

    def _act(self, ref: str, lock: LockInfo | None, prepared: Prepared | None = None) -> StackResult:
        entry = self.entry(ref)
        stack = ref.rpartition("/")[2]
        session, desired = ((prepared.session, prepared.desired) if prepared
                            else (self._session(entry.project, stack, self.request()), None))
        if session is None:
            return self._absent(ref, entry.project, stack)
        session.held_lock = lock
        return self._on(session, ref, desired)

    def request(self) -> ChangeRequest | None:
        """The change each stack of `run up|destroy` passes through the gateway with
        (None for `run preview|plan`, which change nothing)."""
        from stackwright.workflow.gateway import ChangeRequest

        action = self.options.action
        kind: Kind | None = "up" if action == UP else "destroy" if action == DESTROY else None
        if kind is None:
            return None
        return ChangeRequest(kind, parallel=self.options.parallel, emergency=self.options.emergency,
                             allow_destroy=self.options.allow_destroy)

    def _unlinked(self, ref: str) -> NoReturn:
        """Fail the stack whose exports and imports could not be found (its program
        failed): for `run up|destroy`, a change of it that stopped before applying, which
        the change gateway records as its single-stack command's would be (a stack that
        cannot be opened: as that; one `run up` would create: as ``check_new_stack``)."""
        error = self.unlinked[ref]
        request = self.request()
        if request is None:
            raise error
        project, stack = self.entry(ref).project, ref.rpartition("/")[2]
        session = self._session(project, stack, request)
        if session is None:
            if self.options.action == UP:
                self._check_new(project, stack, request)
            raise error
        from stackwright.workflow.gateway import attempted

        with attempted(session, request):
            raise error

    def entry(self, ref: str) -> ProjectEntry:
        entry = self.workspace.project(ref.rpartition("/")[0])
        if entry is None:
            raise StackwrightError(f"the workspace has no project for stack {ref}")
        return entry

    def _session(self, project: Project, stack: str, change: ChangeRequest | None = None) -> StackSession | None:
        """The stack's session, or None when it is not in the state store yet. With
        ``change``, a failure to open it is that change's failed attempt, recorded
        (``gateway.open_for``)."""
        if not self._exists(project, stack):
            return None
        if change is None:
            return self._new_session(project, stack)
        from stackwright.workflow.gateway import Where, open_for

        return open_for(change, Where(project, stack, self.options.who, self.store(project)),
                        lambda: self._new_session(project, stack))

    def _check_new(self, project: Project, stack: str, change: ChangeRequest) -> None:
        """Refuse, recorded, the change of a stack not in the state that protection
        keeps `run up` from creating (``gateway.check_new_stack``)."""
        from stackwright.workflow.gateway import Where, check_new_stack

        check_new_stack(change, Where(project, stack, self.options.who, self.store(project)))

    def exists(self, ref: str) -> bool:
        """Whether the stack is in the state store."""
        return self._exists(self.entry(ref).project, ref.rpartition("/")[2])

    def _exists(self, project: Project, stack: str) -> bool:
        store = self.store(project)
        if project.name not in self.existing:
            self.existing[project.name] = {info.name for info in store.list_stacks()}
        known = self.existing[project.name]
        if stack not in known and store.stack_exists(stack):
            known.add(stack)
        return stack in known

    def _new_session(self, project: Project, stack: str) -> StackSession:
        """A session over the run's store of the project; closing the store is the run's."""
        store = self.store(project)
        key = f"{project.name}/{stack}"
        if key not in self.configs:
            keys = Keyring.for_stack(project, stack)
            self.configs[key] = keys, stack_config(project, stack, keys)
        keys, config = self.configs[key]
        store.use_cipher(keys)
        registry = ProviderRegistry(provider_config(project, config.data))
        session = StackSession(project, stack, store, config, registry, self.options.who)
        session.link_workspace(self.workspace, self.known, self.store)
        return session

    def _on(self, session: StackSession, ref: str, desired: DesiredGraph | None = None) -> StackResult:
        action = self.options.action
        if action == UP:
            return self._change(session, ref, "up", desired)
        if action == DESTROY:
            return self._change(session, ref, "destroy")
        if action == PLAN and self.options.out_dir is not None:
            return self._save_plan(session, ref)
        plan = preview(session)
        self.known[ref] = plan.outputs
        return StackResult(ref, OK, plan=plan, violations=violations(session, plan))

    def _change(self, session: StackSession, ref: str, kind: Kind,
                desired: DesiredGraph | None = None) -> StackResult:
        """The stack's update or destroy, through the change gateway like its
        single-stack command (gate, policies, protection); the run was confirmed once."""
        from stackwright.workflow.gateway import change

        request = self.request()
        assert request is not None and request.kind == kind
        result = change(session, request, confirm=lambda prompt: True, sink=self.options.sink(), desired=desired)
        outcome = result.outcome
        assert outcome is not None
        return StackResult(ref, OK if outcome.ok else FAILED, plan=outcome.plan,
                           violations=result.violations, outcome=outcome)

    def _save_plan(self, session: StackSession, ref: str, new: bool = False) -> StackResult:
        """``new``: the stack is not in the state yet; the plan creates it (see ``save_plan``)."""
        from stackwright.workflow.plan_file import save_plan

        assert self.options.out_dir is not None
        path = self.options.out_dir / self.entry(ref).name / f"{session.stack}.plan"
        path.parent.mkdir(parents=True, exist_ok=True)
        written = save_plan(session, path, new=new)
        self.known[ref] = written.plan.outputs
        return StackResult(ref, OK, plan=written.plan, violations=written.violations, plan_file=path, new=new)

    def _absent(self, ref: str, project: Project, stack: str) -> StackResult:
        """A stack the workspace lists but the state does not have yet."""
        action = self.options.action
        if action == DESTROY:
            return StackResult(ref, OK, new=True)
        if action == UP:
            request = self.request()
            assert request is not None
            self._check_new(project, stack, request)
            raise StackwrightError(f"stack {ref} is not initialized yet",
                                   hint="`stackwright run up` creates the stacks the workspace lists")
        session = self._new_session(project, stack)
        if action == PLAN and self.options.out_dir is not None:
            return self._save_plan(session, ref, new=True)
        plan = preview_new(session)
        self.known[ref] = plan.outputs
        return StackResult(ref, OK, plan=plan, new=True)


def _unapplied(ref: str) -> Outputs:
    raise StackNotApplied(f"stack {ref} is read as never applied while finding exports and imports")


def violations(session: StackSession, plan: Plan) -> list[Violation]:
    """What the stack's environment's policies say of ``plan`` (nothing to judge when
    it changes nothing)."""
    if not plan.has_changes:
        return []
    from stackwright.workflow.environments import environment_for
    from stackwright.workflow.policies import evaluate

    env = environment_for(session.project, session.stack)
    return evaluate(plan, session.project, env, providers=session.providers)


def initialize(workspace: Workspace, refs: Iterable[str],
               keep: dict[str, StateStore] | None = None, emergency: str | None = None) -> list[str]:
    """Create the stacks of ``refs`` that do not exist yet; the workspace file lists
    them, which is the intent `stack init` would otherwise record. Returns the new ones.
    A stack the change gateway would refuse to change (a protected environment, unless
    an ``emergency`` it allows) is not created: its approved plan's apply creates it,
    and its `run up` is refused, recorded (``gateway.check_new_stack``).
    With ``keep``, the stores opened stay open there (by project name) for a runner."""
    from stackwright.workflow.gateway import ChangeRequest, may_create

    request = ChangeRequest("up", emergency=emergency)
    created: list[str] = []
    for entry, stacks in _by_project(workspace, refs):
        store = open_store(entry.project)
        try:
            existing = {info.name for info in store.list_stacks()}
            for stack in stacks:
                if stack not in existing and may_create(entry.project, stack, request) and _created(store, stack):
                    created.append(f"{entry.name}/{stack}")
        except BaseException:
            store.close()
            raise
        if keep is not None and entry.project.name not in keep:
            keep[entry.project.name] = store
        else:
            store.close()
    return created


def _created(store: StateStore, stack: str) -> bool:
    """Create the stack; False if another worker of the run created it first."""
    try:
        store.create_stack(stack)
    except StateError:
        if store.stack_exists(stack):
            return False
        raise
    return True


def _by_project(workspace: Workspace, refs: Iterable[str]) -> list[tuple[ProjectEntry, list[str]]]:
    """``refs`` grouped by project, so that each state store is opened once."""
    out: dict[str, tuple[ProjectEntry, list[str]]] = {}
    for ref in refs:
        project_key, _, stack = ref.rpartition("/")
        entry = workspace.project(project_key)
        if entry is not None:
            out.setdefault(entry.name, (entry, []))[1].append(stack)
    return list(out.values())

