"""`run up --shard I/K`: K workers (CI matrix jobs, machines) share one workspace run
through the shared state store.

Every worker runs the same command with the same run id. Stack ``n`` of the selection
(dependencies first) belongs to shard ``n mod K``; a worker takes the stacks of its own
shard first and then any other stack that is ready, so a slow or dead worker does
not hold the run back. The state store is the only channel between workers:

- a stack is *claimed* by taking its lock; the lock's operation names the run
  (``run-up <run id>``) and the holder renews it every ``lease / 6`` seconds;
- under the lock the worker checks that no worker finished the stack in this run,
  applies it, records a ``run`` event ``{run_id, status}`` in the stack's audit log,
  then releases the lock; so no stack is applied twice in a run;
- a stack starts only when every stack it depends on has an ``ok`` event of this run;
  if one failed or was skipped, it is recorded as skipped;
- a claim lock is *stale* when its holder ran on this host and its process is gone, or
  when it was not renewed for ``lease`` seconds (a dead machine); another worker then
  takes the lock over and applies the stack, resolving the interrupted operations
  first as any `up` does. Locks taken by anything else (`stackwright up`) are waited for.

A worker with nothing to do waits for another worker's next event: woken by it at once
on PostgreSQL (``NOTIFY``), else polling every ``poll`` to ``max_poll`` seconds.

Ordering by CloudFormation exports and imports means running every stack's program
once (with every ``StackReference`` unknown). No worker holds up its first stack for
that: a stack's links are found when it could start but for them, by the worker that
claims it (and only by that one). A stack whose program exports and imports nothing
then starts at once, its program run once for both (``StackRunner.links_of_claimed``);
one that does is let go until every stack's links are known.
The workers share finding those: a worker with such a stack and nothing else to do
works through its own shard's programs and records what they export and import as
``run-links`` events (one per project), and reads the others' as they come. Stacks
that no worker recorded within twice the time its own share took (a worker that
died, is late, or is busy with stacks that need no links) it works out itself. Links
are trusted across workers because every worker of a run runs the same command on
the same code; a stack whose program failed there is failed with that message. A
cycle of imports fails the run when the whole ordering is known, which may be after
stacks that are on no such cycle were applied.

Each worker returns when every selected stack has an event of this run, or after
Ctrl-C once the stack it was applying is recorded (it claims no other).
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, cast

from stackwright.dataclass_methods import FrozenCompared, frozen_record
from stackwright.errors import LockHeldError, ProjectError, StackwrightError, StateError
from stackwright.graph import Graph
from stackwright.operations.session import host_name, lock_is_stale
from stackwright.program.project import Project
from stackwright.program.workspace import Workspace
from stackwright.state.records import EventNotice, LockInfo
from stackwright.state.store import StateStore
from stackwright.workflow.multistack import (
    FAILED, NOT_STARTED, OK, SKIPPED, Listener, RunOptions, StackResult, StackRunner,
)

if TYPE_CHECKING:
    from stackwright.plan.links import StackLinks

RUN_EVENT = "run"
"""The audit-log event a worker records when a stack of the run is done."""
LINKS_EVENT = "run-links"
"""The audit-log event holding what the programs of a worker's share export and import."""
CLAIM = "run-up"
"""The operation of a claim lock: ``run-up <run id>``."""
DEFAULT_LEASE_S = 60.0
_SHARD = re.compile(r"^(\d+)/(\d+)$")


# A sharded run loads these classes: their methods are written, not generated (see
# stackwright.dataclass_methods); they behave as ``@dataclass(frozen=True)``.


@frozen_record
class Shard(FrozenCompared):
    """Worker ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __init__(self, index: int, count: int) -> None:
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "count", count)

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = _SHARD.match(text.strip())
        index, count = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
        if not match or not 1 <= index <= count:
            raise ProjectError(f"invalid shard {text!r}",
                               hint="write I/K with 1 <= I <= K, e.g. --shard 2/4")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@frozen_record
class ShardOptions(FrozenCompared):
    """How this worker takes part in a sharded run."""

    shard: Shard
    run_id: str
    lease: float = DEFAULT_LEASE_S
    """Seconds without renewal after which another worker takes a claim over."""
    poll: float = 0.05
    """First wait when nothing is ready; it grows to ``max_poll``."""
    max_poll: float = 0.25

    def __init__(self, shard: Shard, run_id: str, lease: float = DEFAULT_LEASE_S, poll: float = 0.05,
                 max_poll: float = 0.25) -> None:
        object.__setattr__(self, "shard", shard)
        object.__setattr__(self, "run_id", run_id)
        object.__setattr__(self, "lease", lease)
        object.__setattr__(self, "poll", poll)
        object.__setattr__(self, "max_poll", max_poll)


@frozen_record
class Done(FrozenCompared):
    """A stack's event in this run."""

    status: str
    cause: str | None
    worker: str

    def __init__(self, status: str, cause: str | None, worker: str) -> None:
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "cause", cause)
        object.__setattr__(self, "worker", worker)


def _done(data: Mapping[str, Any]) -> Done:
    """A run event's data as the stack's fate."""
    return Done(str(data.get("status")), data.get("cause"), str(data.get("worker")))


def run_shard(workspace: Workspace, graph: Graph[str], options: RunOptions, shard: ShardOptions,
              listener: Listener = Listener(),
              stores: dict[str, StateStore] | None = None) -> tuple[dict[str, StackResult], dict[str, Done]]:
    """Work on the run until every stack of ``graph`` has an event of this run, or
    Ctrl-C stopped a stack this worker applied. Returns the results of the stacks this
    worker ran or skipped, and every stack's event (including those other workers
    recorded; after Ctrl-C, the stacks without one as not started, recorded nowhere).
    ``stores``: opened already, by project name; closed here."""
    with StackRunner(workspace, options, stores) as runner, _Renewer(shard.lease) as renewer:
        if shard.shard.count == 1:
            worker = _Worker(runner, renewer, runner.linked(graph), shard)
        else:
            worker = _Worker(runner, renewer, graph, shard, _SharedLinks(runner, shard, graph))
        return worker.work(listener), worker.done


class _SharedLinks:
    """Finds every stack's exports and imports with the other workers (see above). The
    run does not wait for the whole ordering: a stack whose program exports and imports
    nothing is ordered by its dependencies alone, so it may start as soon as they are
    done (it can be on no cycle of imports either)."""

    CHUNK = 8
    """Programs run at a time while idle, so that a stack becoming ready waits for few."""

    def __init__(self, runner: StackRunner, shard: ShardOptions, graph: Graph[str]) -> None:
        self.runner = runner
        self.shard = shard
        self.graph = graph
        self.refs = list(graph.deps)
        self.mine = [ref for n, ref in enumerate(self.refs) if n % shard.shard.count == shard.shard.index - 1]
        self.links: dict[str, StackLinks] = {}
        self.whole: Graph[str] | None = None if len(self.refs) > 1 else graph
        """The ordering with every stack's imports, once they are all known."""
        self.spent = 0.0
        """Seconds spent finding links here, of ``found`` stacks."""
        self.found = 0
        self.deadline: float | None = None
        """Once this worker's share is recorded: after this, stacks nobody recorded are
        worked out here (their worker is gone, late or busy)."""

    def deps(self, ref: str) -> Sequence[str] | None:
        """What ``ref`` waits for, or None while that is not known yet."""
        if self.whole is not None:
            return self.whole.deps.get(ref, ())
        found = self.links.get(ref)
        if ref in self.runner.unlinked or (found is not None and not found):
            return self.graph.deps.get(ref, ())
        return None

    def unknown(self, ref: str) -> bool:
        """Nobody found ``ref``'s links yet, as far as this worker knows."""
        return ref not in self.links and ref not in self.runner.unlinked

    def learn(self, refs: list[str]) -> None:
        """Run the programs of ``refs`` (whose links nobody recorded yet) here."""
        started = time.monotonic()
        self._learned(self.runner.links_of(refs), len(refs), started)

    def learn_claimed(self, ref: str) -> None:
        """``learn([ref])`` for the stack this worker is about to apply: its program runs
        once for both (``StackRunner.links_of_claimed``)."""
        started = time.monotonic()
        self._learned(self.runner.links_of_claimed(ref), 1, started)

    def _learned(self, links: Mapping[str, StackLinks], count: int, started: float) -> None:
        self.links.update(links)
        self.spent += time.monotonic() - started
        self.found += count
        self._complete()

    def refresh(self) -> None:
        """Take in what the other workers recorded since (reading only the projects
        with stacks still unknown)."""
        if self.whole is None:
            self.links.update(self.read(self._missing()))
            self._complete()

    def idle(self, blocked: list[str]) -> bool:
        """Work while nothing can start, once some stack is known to export or import:
        find the next few links of this worker's share, record the share once complete
        (the other workers may need it), and past the deadline work out the rest. True
        when that may have let a stack start (look again before waiting). Until then no
        program runs here: a run whose stacks export and import nothing never needs it."""
        if not blocked and not any(self.links.values()):
            return False
        todo = [ref for ref in self.mine if self.unknown(ref)]
        if todo:
            self.learn(todo[:self.CHUNK])
            return True
        if self.deadline is None:
            self.publish(self.mine, self.links)
            share = self.spent / max(self.found, 1) * len(self.mine)
            self.deadline = time.monotonic() + 2 * share
        return self.settle(blocked)

    def settle(self, blocked: list[str]) -> bool:
        """Nothing can start on what is known, and the ``blocked`` stacks could but for
        the links of stacks nobody recorded: past the deadline, work them out here
        (every stack nobody recorded). True if that was done."""
        if (self.whole is not None or not blocked or self.deadline is None
                or time.monotonic() < self.deadline):
            return False
        self.learn(self._missing())
        return True

    def _missing(self) -> list[str]:
        return [ref for ref in self.refs if self.unknown(ref)]

    def _complete(self) -> None:
        if self.whole is None and not self._missing():
            self.whole = self.runner.with_links(self.graph, self.links)

    def publish(self, refs: list[str], links: Mapping[str, StackLinks]) -> None:
        """One event per project: the stacks worked out, their links, their failures."""
        for project, stacks in _by_project(refs).items():
            data = {"run_id": self.shard.run_id, "stacks": stacks,
                    "links": {s: {"exports": dict(links[ref].exports), "imports": dict(links[ref].imports)}
                              for s in stacks if (ref := f"{project}/{s}") in links and links[ref]},
                    "failed": {s: self.runner.unlinked[ref].headline()
                               for s in stacks if (ref := f"{project}/{s}") in self.runner.unlinked}}
            entry = self.runner.entry(f"{project}/{stacks[0]}")
            self.runner.store(entry.project).record_event(stacks[0], LINKS_EVENT, self.runner.options.who, data)

    def read(self, refs: list[str]) -> dict[str, StackLinks]:
        """What the workers of this run recorded (failures go to ``unlinked``)."""
        from stackwright.plan.links import NO_LINKS, StackLinks

        found: dict[str, StackLinks] = {}
        for project in _by_project(refs):
            entry = self.runner.entry(f"{project}/")
            for event in self.runner.store(entry.project).events(None, kinds=(LINKS_EVENT,)):
                data = event.data
                if data.get("run_id") != self.shard.run_id:
                    continue
                for stack in data.get("stacks", ()):
                    ref = f"{project}/{stack}"
                    if stack in data.get("failed", {}):
                        self.runner.unlinked.setdefault(ref, StackwrightError(str(data["failed"][stack])))
                    elif stack in data.get("links", {}):
                        found[ref] = StackLinks(**data["links"][stack])
                    else:
                        found[ref] = NO_LINKS
        return found


def _by_project(refs: Iterable[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for ref in refs:
        project, _, stack = ref.rpartition("/")
        out.setdefault(project, []).append(stack)
    return out


class _Waiter:
    """Waits for another worker's progress: woken at once by a new event where the
    store can tell (PostgreSQL's ``NOTIFY``), else a plain sleep. When every project of
    the run keeps its state in the database the waiter listens on, the notices name
    every event recorded since listening began (in commit order), so a worker reads
    only the stacks they name instead of every stack's events again."""

    def __init__(self, runner: StackRunner, projects: Sequence[str]) -> None:
        self.wait: Callable[[float], list[EventNotice | None]] = _sleep
        self.projects: dict[str, str] | None = None
        """The project (workspace name) of each schema, when the notices tell all."""
        stores = {name: runner.store(runner.entry(f"{name}/").project) for name in projects}
        first = stores[projects[0]] if projects else None
        wait = getattr(first, "wait_for_events", None)
        if not callable(wait):
            return
        self.wait = cast(Callable[[float], list[EventNotice | None]], wait)
        hears = getattr(first, "hears", None)
        schemas = {name: hears(store) if callable(hears) else None for name, store in stores.items()}
        if all(schemas.values()) and len(set(schemas.values())) == len(schemas):
            self.projects = {str(schema): name for name, schema in schemas.items()}

    def drain(self) -> list[EventNotice | None]:
        """The notices come already, without waiting (none where they do not tell all)."""
        return self.wait(0) if self.projects is not None else []


def _sleep(seconds: float) -> list[EventNotice | None]:
    time.sleep(seconds)
    return []


class _Worker:
    def __init__(self, runner: StackRunner, renewer: _Renewer, graph: Graph[str],
                 shard: ShardOptions, links: _SharedLinks | None = None) -> None:
        """``graph``: the ordering, whole unless ``links`` is still finding imports."""
        self.runner = runner
        self.renewer = renewer
        self.graph = graph
        self.links = links
        self.blocked: list[str] = []
        """Stacks whose dependencies are done that export or import: they wait for every
        stack's links."""
        self.options = shard
        self.order = preferred_order(list(graph.deps), shard.shard)
        self.done: dict[str, Done] = {}
        self.behind = False
        """A claim found a stack finished by another worker: ``done`` is out of date, and
        claiming on from it would take and release the lock of every stack others did."""
        self.held: dict[str, float] = {}
        """When a claim last found each stack's lock held by another holder, alive."""
        self.name = f"{shard.shard} {runner.options.who} pid {os.getpid()} on {socket.gethostname()}"

    def work(self, listener: Listener) -> dict[str, StackResult]:
        """Until every stack has an event of this run. What other workers did is caught
        up on only when nothing can go on what this worker knows (a claim checks under
        the lock anyway): from the notices where they tell all, else by reading the
        events again, once per wait."""
        results: dict[str, StackResult] = {}
        delay = self.options.poll
        known_enough = False
        waiter = self.waiter()
        waiter.wait(0)  # listening starts before the first read, so no event falls between
        news: list[EventNotice | None] | None = None
        while True:
            if not known_enough:
                self.catch_up(news, waiter)
            pending = [ref for ref in self.order if ref not in self.done]
            if not pending:
                return results
            result = self.step(pending, listener)
            news = []
            if result is not None:
                results[result.ref] = result
                if result.stopped:
                    self.stop(listener)
                    return results
                delay, known_enough = self.options.poll, True
            elif known_enough or self.behind:
                known_enough = False
                news = waiter.drain()
            elif self.links is not None and self.links.idle(self.blocked):
                news = waiter.drain()
            else:
                news = waiter.wait(delay) or None  # quiet: read, in case notices do not come
                delay = min(delay * 1.5, self.options.max_poll)

    def catch_up(self, news: list[EventNotice | None] | None, waiter: _Waiter) -> None:
        """Learn what the other workers did since: from ``news`` (the notices of the
        events recorded since the last wait) when they tell all, else (the first time,
        and after a wait that no notice ended: ``news`` None) by reading every stack's."""
        if news is None or waiter.projects is None or not self.learned(news, waiter.projects):
            self.done = self.read_done()
            if self.links is not None:
                self.links.refresh()
        self.behind = False

    def learned(self, news: list[EventNotice | None], projects: Mapping[str, str]) -> bool:
        """Take in the stacks of this run that ``news`` says finished, confirmed by
        reading their events, one read per project (a notice is only a pointer: anyone
        who can connect can send one); False when a notice could not tell (everything
        must be read)."""
        named: dict[str, set[str]] = {}
        for notice in news:
            if notice is None or notice.kind == LINKS_EVENT and notice.schema in projects:
                return False
            project = projects.get(notice.schema)
            ref = f"{project}/{notice.stack}"
            if project is None or notice.kind != RUN_EVENT or ref not in self.graph.deps or ref in self.done:
                continue
            named.setdefault(project, set()).add(notice.stack)
        for project, stacks in named.items():
            self.done.update(self.finished_of(project, stacks))
        return True

    def stop(self, listener: Listener) -> None:
        """After Ctrl-C: the stacks without an event of this run are not started here,
        and left to the other workers or a re-run (nothing is recorded for them)."""
        self.done = self.read_done()
        for ref in self.order:
            if ref not in self.done:
                self.done[ref] = Done(NOT_STARTED, None, self.name)
                listener.finished(StackResult(ref, NOT_STARTED))

    def waiter(self) -> _Waiter:
        return _Waiter(self.runner, sorted({ref.rpartition("/")[0] for ref in self.graph.deps}))

    def step(self, pending: list[str], listener: Listener) -> StackResult | None:
        """Skip or run the first stack that can go now; None when none can."""
        self.blocked = []
        for ref in pending:
            declared = self.graph.deps.get(ref, ())
            deps = declared if self.links is None else self.links.deps(ref)
            failed = next((d for d in deps or declared if d in self.done and self.done[d].status != OK), None)
            if failed is not None:
                cause = self.done[failed].cause or failed
                self.record(ref, SKIPPED, cause)
                result = StackResult(ref, SKIPPED, cause=cause)
                listener.finished(result)
                return result
            unknown = deps is None and self.links is not None and self.links.unknown(ref)
            if any(d not in self.done for d in (declared if unknown or deps is None else deps)):
                continue
            if not self.runner.exists(ref):
                done = self.finished(ref)
                if done is None:
                    return self.refuse_absent(ref, listener)
                self.done[ref] = done
                continue
            if deps is None and not unknown:
                self.blocked.append(ref)
                continue
            if self.held_elsewhere(ref):
                continue
            lock = self.claim(ref)
            if lock is None:
                if self.behind:
                    return None  # others finished stacks this worker does not know of: read first
                self.held[ref] = time.monotonic()
                continue
            self.renewer.keep(*self.locate(ref), lock)  # the program may run long before the update
            if unknown and not self.ready_once_linked(ref, lock):
                continue
            if self.renewer.taken_over():  # while its program ran: the taker applies it
                self.let_go(ref, lock)
                self.held[ref] = time.monotonic()
                continue
            return self.run_claimed(ref, lock, listener)
        return None

    def refuse_absent(self, ref: str, listener: Listener) -> StackResult:
        """A stack not in the state: `run up` did not create it, as the change gateway
        would refuse its change (a protected environment: only its approved plan's apply
        creates it). It has no lock to claim; its refusal, recorded as a failed attempt,
        and its failed run event are written by the worker that reaches it first (two
        at once may both write them; the run takes the first event)."""
        listener.started(ref)
        result = self.runner.run(ref)
        self.record(ref, result.status, None)
        listener.finished(result)
        return result

    def held_elsewhere(self, ref: str) -> bool:
        """Another holder, alive, had the stack's lock when this worker last tried, less
        than ``max_poll`` ago: it is at work, and trying on every wake-up only competes
        with it for the lock and the server (a dead holder's claim is taken over at most
        ``max_poll`` later)."""
        seen = self.held.get(ref)
        return seen is not None and time.monotonic() - seen < self.options.max_poll

    def ready_once_linked(self, ref: str, lock: LockInfo) -> bool:
        """Find the links of ``ref``, claimed before its program runs (so that only the
        worker that will apply it runs it). A stack that waits for stacks not done yet
        is let go again: it exports or imports, and the whole ordering is not known."""
        assert self.links is not None
        try:
            self.links.learn_claimed(ref)
            deps = self.links.deps(ref)
        except BaseException:  # Ctrl-C in the program, or an import cycle: not left claimed
            self.let_go(ref, lock)
            raise
        if deps is not None and all(d in self.done for d in deps):
            return True
        if deps is None:
            self.blocked.append(ref)
        self.let_go(ref, lock)
        return False

    def let_go(self, ref: str, lock: LockInfo) -> None:
        """Release a claim without applying the stack: no longer renewed, its program's
        run forgotten."""
        project, stack = self.locate(ref)
        self.renewer.stop()
        self.runner.forget(ref)
        self.runner.store(project).release_lock(stack, lock.token)

    def run_claimed(self, ref: str, lock: LockInfo, listener: Listener) -> StackResult:
        project, stack = self.locate(ref)
        store = self.runner.store(project)
        try:
            listener.started(ref)
            result = self.runner.run(ref, lock)
        finally:
            lost = self.renewer.stop()
        if lost is not None:
            result = _taken_over(result, lost)
        try:
            with _together(store):  # the stack's run event and its release: one commit
                self.record(ref, result.status, None)
                store.release_lock(stack, lock.token)
        except BaseException:
            store.release_lock(stack, lock.token)
            raise
        listener.finished(result)
        return result

    def claim(self, ref: str) -> LockInfo | None:
        """The stack's lock, unless another worker holds it (and is alive) or the
        stack was finished in this run meanwhile."""
        project, stack = self.locate(ref)
        store = self.runner.store(project)
        lock = LockInfo(owner=self.runner.options.who, pid=os.getpid(), host=host_name(),
                        acquired_at=time.time(), operation=f"{CLAIM} {self.options.run_id}",
                        token=uuid.uuid4().hex)
        with _together(store):  # taking the lock and reading the stack's run events: one commit
            if not self._take(store, stack, lock):
                return None
            done = self.finished(ref)
            if done is not None:
                store.release_lock(stack, lock.token)
                self.done[ref], self.behind = done, True
                return None
        return lock

    def _take(self, store: StateStore, stack: str, lock: LockInfo) -> bool:
        try:
            store.acquire_lock(stack, lock)
            return True
        except LockHeldError:
            held = store.read_lock(stack)
        if held is not None and not stale(held, self.options.lease):
            return False
        if held is not None:
            store.release_lock(stack, held.token)  # only that holder's lock, if still there
        try:
            store.acquire_lock(stack, lock)
        except LockHeldError:
            return False
        return True

    def finished(self, ref: str) -> Done | None:
        """The stack's event of this run, if a worker recorded one."""
        project, stack = self.locate(ref)
        events = self.runner.store(project).events(stack, kinds=(RUN_EVENT,))
        data = next((e.data for e in events if e.data.get("run_id") == self.options.run_id), None)
        return None if data is None else _done(data)

    def finished_of(self, name: str, stacks: Collection[str] | None = None) -> dict[str, Done]:
        """The first event of this run of each of project ``name``'s ``stacks`` (None:
        of its every stack) that has one, by ref."""
        entry = self.runner.entry(f"{name}/")
        found: dict[str, Done] = {}
        for event in self.runner.store(entry.project).events(kinds=(RUN_EVENT,), stacks=stacks):
            ref = f"{name}/{event.stack}"
            if event.data.get("run_id") == self.options.run_id and ref not in found:
                found[ref] = _done(event.data)
        return found

    def record(self, ref: str, status: str, cause: str | None) -> None:
        project, stack = self.locate(ref)
        data = {"run_id": self.options.run_id, "status": status, "cause": cause, "worker": self.name}
        self.runner.store(project).record_event(stack, RUN_EVENT, self.runner.options.who, data)
        self.done[ref] = Done(status, cause, self.name)

    def read_done(self) -> dict[str, Done]:
        """Every stack's first event of this run: one read per project."""
        done: dict[str, Done] = {}
        for name in sorted({ref.rpartition("/")[0] for ref in self.graph.deps}):
            done.update(self.finished_of(name))
        return done

    def locate(self, ref: str) -> tuple[Project, str]:
        return self.runner.entry(ref).project, ref.rpartition("/")[2]


def _together(store: StateStore) -> AbstractContextManager[None]:
    """Writes that commit as one where the store can (the SQL stores' ``together``)."""
    together = getattr(store, "together", None)
    return cast(AbstractContextManager[None], together()) if callable(together) else nullcontext()


def _taken_over(result: StackResult, lost: LockHeldError) -> StackResult:
    """The stack failed: another worker may have applied it at the same time."""
    error = StateError(f"the claim on {result.ref} was taken over while it was being applied: "
                       f"{lost.headline()}", hint="use a longer --lease")
    return StackResult(result.ref, FAILED, seconds=result.seconds, plan=result.plan,
                       outcome=result.outcome, error=error)


def preferred_order(refs: list[str], shard: Shard) -> list[str]:
    """This shard's stacks (every K-th, dependencies first), then everyone else's."""
    mine = [ref for n, ref in enumerate(refs) if n % shard.count == shard.index - 1]
    chosen = set(mine)
    return mine + [ref for ref in refs if ref not in chosen]


def stale(lock: LockInfo, lease: float, now: float | None = None) -> bool:
    """A claim lock whose holder is gone: its process on this host, or its lease."""
    if not lock.operation.startswith(CLAIM + " "):
        return False
    if lock_is_stale(lock):
        return True
    return (now if now is not None else time.time()) - lock.acquired_at > lease


class _Renewer:
    """Renews the claim being worked on, from the claim to its release (the program
    may run long before the update starts), from a thread of its own over its own
    connection to the store (the main thread's is busy applying)."""

    def __init__(self, lease: float) -> None:
        self.every = lease / 6
        self.mutex = threading.Lock()
        self.current: tuple[Project, str, LockInfo] | None = None
        self.lost: LockHeldError | None = None
        self.wake = threading.Event()
        self.closing = False
        self.thread = threading.Thread(target=self._loop, name="stackwright-lease", daemon=True)

    def __enter__(self) -> _Renewer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing = True
        self.wake.set()
        self.thread.join()

    def keep(self, project: Project, stack: str, lock: LockInfo) -> None:
        with self.mutex:
            self.current, self.lost = (project, stack, lock), None

    def taken_over(self) -> bool:
        """Renewing found that another worker took the claim over (it stays known until
        ``stop``)."""
        with self.mutex:
            return self.lost is not None

    def stop(self) -> LockHeldError | None:
        """After this returns, the claim is never renewed again (it may be released).
        Returns the error if renewing found that another worker took the claim over."""
        with self.mutex:
            self.current = None
            return self.lost

    def _loop(self) -> None:
        stores: dict[str, StateStore] = {}
        try:
            while not self.closing:
                self.wake.wait(self.every)
                with self.mutex:
                    if self.current is not None and not self.closing:
                        self._renew(stores, *self.current)
        finally:
            for store in stores.values():
                store.close()

    def _renew(self, stores: dict[str, StateStore], project: Project, stack: str,
               lock: LockInfo) -> None:
        """Another worker holding the lock, or none (a taker finished the stack and
        released it), means the claim is lost; a store that cannot be reached is tried
        again on a new connection next time (if it stays out of reach, the lease runs out
        and the main thread's own writes fail too)."""
        from stackwright.operations.session import open_store

        try:
            if project.name not in stores:
                stores[project.name] = open_store(project)
            store = stores[project.name]
            if store.read_lock(stack) is None:  # taking it again would apply a finished stack twice
                raise LockHeldError(f"the lock of stack {stack!r} was released by another worker")
            lock.acquired_at = time.time()
            store.acquire_lock(stack, lock)  # the same token: renews it; another's: raises
        except LockHeldError as exc:
            self.lost, self.current = exc, None
        except StateError:
            broken = stores.pop(project.name, None)
            if broken is not None:
                broken.close()


def shard_summary(done: Mapping[str, Done], refs: Iterable[str]) -> dict[str, int]:
    """How many stacks of the run ended in each status."""
    counts: dict[str, int] = {}
    for ref in refs:
        status = done[ref].status if ref in done else "missing"
        counts[status] = counts.get(status, 0) + 1
    return counts
