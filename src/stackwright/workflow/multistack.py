"""Running one command over many stacks: dependencies first, independent stacks in
parallel, a failure stopping only the stacks that depend on it.

Each stack runs in its own `stackwright` process, in its project's folder. Programs
run in the process that plans them, and a process holds one program well: the
program context, ``sys.modules`` (two projects may both have a ``helpers.py``) and the
working directory (the local provider resolves paths against it) are all
process-wide. A process per stack also means each stack goes through exactly the
checks its single-stack command makes (environments, gates, policies), and its
output can be kept together and printed when it finishes.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackwright.graph import Graph, walk
from stackwright.model.values import Secret
from stackwright.operations.session import (
    StackSession, identity, open_store, provider_config, stack_config,
)
from stackwright.plan.plan import Plan
from stackwright.plan.planner import make_plan
from stackwright.program.project import Project
from stackwright.program.workspace import ProjectEntry, Workspace
from stackwright.providers.registry import ProviderRegistry
from stackwright.state.records import Snapshot

if TYPE_CHECKING:
    from stackwright.workflow.policies import Violation

OK, FAILED, SKIPPED, NOT_STARTED = "ok", "failed", "skipped", "not-started"
STATE_FILE = Path(".stackwright") / "state.db"


@dataclass(frozen=True)
class Job:
    """The command line that runs one stack, and the folder it runs in."""

    argv: tuple[str, ...]
    cwd: Path


@dataclass
class StackResult:
    ref: str
    status: str
    output: str = ""
    seconds: float = 0.0
    cause: str | None = None
    """For a skipped stack: the failed stack it depends on."""

    @property
    def ok(self) -> bool:
        return self.status == OK


@dataclass(frozen=True)
class Listener:
    """Called on the main thread as stacks start and finish (or are skipped)."""

    started: Callable[[str], None] = lambda ref: None
    finished: Callable[[StackResult], None] = lambda result: None


def subgraph(graph: Graph[str], refs: Iterable[str]) -> Graph[str]:
    """The selected stacks and the dependencies among them, in the order given.

    Selections are closed under dependents, so any path between two selected stacks
    runs through selected stacks only: dropping the others loses no ordering."""
    keep = list(refs)
    chosen = set(keep)
    return Graph({ref: [d for d in graph.deps.get(ref, ()) if d in chosen] for ref in keep})


def run_stacks(graph: Graph[str], job_for: Callable[[str], Job], *, parallel: int,
               env: Mapping[str, str], listener: Listener = Listener()) -> dict[str, StackResult]:
    """Run every stack of ``graph`` after its dependencies, at most ``parallel`` at once.

    SIGINT or SIGTERM stops new stacks from starting; SIGTERM is passed on to the
    stacks in flight (SIGINT from a terminal reaches them already), which stop the way
    a single `stackwright up` does. Returns each stack's result."""
    return asyncio.run(_Runner(graph, job_for, env, listener).run(parallel))


class _Runner:
    def __init__(self, graph: Graph[str], job_for: Callable[[str], Job],
                 env: Mapping[str, str], listener: Listener) -> None:
        self.graph = graph
        self.job_for = job_for
        self.env = dict(env)
        self.listener = listener
        self.results: dict[str, StackResult] = {}
        self.processes: set[asyncio.subprocess.Process] = set()
        self.stopping = False

    async def run(self, parallel: int) -> dict[str, StackResult]:
        self._handle_signals()
        try:
            fates = await walk(self.graph, self._visit, parallel=parallel, on_skip=self._skipped,
                               should_stop=lambda: self.stopping)
        finally:
            self._restore_signals()
        for ref, fate in fates.items():
            if ref not in self.results:
                self.results[ref] = StackResult(ref, NOT_STARTED if fate == NOT_STARTED else FAILED)
        return {ref: self.results[ref] for ref in self.graph.deps}

    async def _visit(self, ref: str) -> bool:
        job = self.job_for(ref)
        self.listener.started(ref)
        started = time.monotonic()
        try:
            process = await asyncio.create_subprocess_exec(
                *job.argv, cwd=job.cwd, env=self.env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        except OSError as exc:
            return self._finish(StackResult(ref, FAILED, f"cannot start: {exc}\n"))
        self.processes.add(process)
        try:
            output, _ = await process.communicate()
        finally:
            self.processes.discard(process)
        status = OK if process.returncode == 0 else FAILED
        text = output.decode("utf-8", errors="replace")
        return self._finish(StackResult(ref, status, text, time.monotonic() - started))

    def _finish(self, result: StackResult) -> bool:
        self.results[result.ref] = result
        self.listener.finished(result)
        return result.ok

    def _skipped(self, ref: str, cause: str) -> None:
        self._finish(StackResult(ref, SKIPPED, cause=cause))

    def _handle_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._stop, sig)
            except (NotImplementedError, RuntimeError):
                pass

    def _restore_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):
                pass

    def _stop(self, sig: signal.Signals) -> None:
        self.stopping = True
        if sig == signal.SIGTERM:
            for process in list(self.processes):
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)


def initialized(workspace: Workspace, refs: Iterable[str]) -> set[str]:
    """Which of ``refs`` exist in their project's state store (never creating one)."""
    found: set[str] = set()
    for entry, stacks in _by_project(workspace, refs):
        path = entry.root / STATE_FILE
        if not path.is_file():
            continue
        store = open_store(entry.project)
        try:
            found.update(f"{entry.name}/{s}" for s in stacks if store.stack_exists(s))
        finally:
            store.close()
    return found


def initialize(workspace: Workspace, refs: Iterable[str]) -> list[str]:
    """Create the stacks of ``refs`` that do not exist yet; the workspace file lists
    them, which is the intent `stack init` would otherwise record. Returns the new ones."""
    created: list[str] = []
    for entry, stacks in _by_project(workspace, refs):
        store = open_store(entry.project)
        try:
            for stack in stacks:
                if not store.stack_exists(stack):
                    store.create_stack(stack)
                    created.append(f"{entry.name}/{stack}")
        finally:
            store.close()
    return created


def _by_project(workspace: Workspace, refs: Iterable[str]) -> list[tuple[ProjectEntry, list[str]]]:
    """``refs`` grouped by project, so that each state store is opened once."""
    out: dict[str, tuple[ProjectEntry, list[str]]] = {}
    for ref in refs:
        project_key, _, stack = ref.rpartition("/")
        entry = workspace.project(project_key)
        if entry is not None:
            out.setdefault(entry.name, (entry, []))[1].append(stack)
    return list(out.values())


def preview_new_stack(project: Project, stack: str, who: str | None = None) -> Plan:
    """The plan of a stack that exists in the workspace file but not yet in state:
    everything it declares, to create. Records nothing (no stack is created)."""
    session = _new_session(project, stack, who)
    try:
        return _plan_new(session)
    finally:
        session.close()


def _new_session(project: Project, stack: str, who: str | None) -> StackSession:
    config = stack_config(project, stack)
    return StackSession(project, stack, open_store(project, stack), config,
                        ProviderRegistry(provider_config(project, config.data)), identity(who))


def _plan_new(session: StackSession) -> Plan:
    desired = session.run_program()
    empty = Snapshot(stack=session.stack, lineage="", serial=0, resources={}, outputs={})
    return make_plan(desired, empty, session.providers)


# --- reviews: one stack's plan handed from its process to the one that renders all ---


Review = tuple[Plan, "list[Violation]"]


def review_stack(project: Project, stack: str, who: str | None = None) -> Review:
    """What `preview` shows for the stack (the plan of creating it, if it is not
    initialized yet) and what its environment's policies say of that plan."""
    from stackwright.operations.session import open_session
    from stackwright.operations.update import preview
    from stackwright.workflow.environments import environment_for
    from stackwright.workflow.policies import evaluate

    store = open_store(project)
    try:
        exists = store.stack_exists(stack)
    finally:
        store.close()
    session = open_session(project, stack, who) if exists else _new_session(project, stack, who)
    try:
        plan = preview(session) if exists else _plan_new(session)
        if not plan.has_changes:
            return plan, []
        env = environment_for(project, stack)
        return plan, evaluate(plan, project, env, providers=session.providers)
    finally:
        session.close()


def save_review(path: Path, review: Review) -> None:
    """Secrets are reduced to markers before the review touches the disk: a review is
    for showing, and the renderers mask secrets anyway."""
    plan, violations = review
    path.write_bytes(pickle.dumps((_scrubbed_plan(plan), list(violations))))


def load_review(path: Path) -> Review:
    """A review this run's own stack process wrote (a private temporary folder)."""
    plan, violations = pickle.loads(path.read_bytes())
    return plan, violations


def _scrubbed_plan(plan: Plan) -> Plan:
    steps = tuple(replace(
        step, inputs=_scrub(step.inputs), old_inputs=_scrub(step.old_inputs),
        old_outputs=_scrub(step.old_outputs),
        diffs=tuple(replace(d, old=_scrub(d.old), new=_scrub(d.new)) for d in step.diffs),
    ) for step in plan.steps)
    return replace(plan, steps=steps, outputs=_scrub(plan.outputs),
                   old_outputs=_scrub(plan.old_outputs))


def _scrub(value: Any) -> Any:
    if isinstance(value, Secret):
        return Secret(None)
    if isinstance(value, Mapping):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    return value


def child_env(who: str | None) -> dict[str, str]:
    """The environment of a stack's process: ours, acting as ``who`` when given, and
    without a selected stack (each process names its stack)."""
    env = {k: v for k, v in os.environ.items() if k != "STACKWRIGHT_STACK"}
    if who:
        env["STACKWRIGHT_USER"] = who
    return env
