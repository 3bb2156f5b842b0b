"""A generic dependency graph over hashable vertices: ordering, cycles, an
asynchronous walk with bounded parallelism and its one-at-a-time twin. It knows nothing about resources.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from stackwright.errors import StackwrightError

if TYPE_CHECKING:
    import asyncio  # imported where a walk runs: a command that walks nothing never loads it

V = TypeVar("V", bound=Hashable)


class CycleFound(StackwrightError):
    """The graph has a cycle; ``cycle`` lists its vertices in order, first repeated last."""

    def __init__(self, cycle: list[object]) -> None:
        super().__init__("dependency cycle: " + " -> ".join(map(str, cycle)))
        self.cycle = cycle


@dataclass
class Graph(Generic[V]):
    """Vertices with edges ``v -> dependency``: a vertex waits for its dependencies."""

    deps: dict[V, list[V]] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, deps: Mapping[V, Iterable[V]]) -> Graph[V]:
        return cls({v: list(ds) for v, ds in deps.items()})

    def add(self, vertex: V, depends_on: Iterable[V] = ()) -> None:
        self.deps.setdefault(vertex, []).extend(depends_on)

    def dependents(self) -> dict[V, list[V]]:
        """The reverse edges: for each vertex, who waits for it."""
        out: dict[V, list[V]] = {v: [] for v in self.deps}
        for vertex, deps in self.deps.items():
            for dep in deps:
                out.setdefault(dep, []).append(vertex)
        return out

    def reversed(self) -> Graph[V]:
        return Graph(self.dependents())

    def topological_order(self) -> list[V]:
        """Dependencies first; ties keep insertion order. Raises CycleFound."""
        remaining = {v: len(set(ds)) for v, ds in self.deps.items()}
        for ds in self.deps.values():
            for d in ds:
                remaining.setdefault(d, 0)
        dependents = self.dependents()
        ready = [v for v, n in remaining.items() if n == 0]
        order: list[V] = []
        while ready:
            vertex = ready.pop()
            order.append(vertex)
            for dependent in set(dependents.get(vertex, ())):
                remaining[dependent] -= 1
                if remaining[dependent] == 0:
                    ready.append(dependent)
        if len(order) != len(remaining):
            raise CycleFound(self.find_cycle(v for v, n in remaining.items() if n > 0))
        return order

    def find_cycle(self, candidates: Iterable[V] | None = None) -> list[object]:
        """One cycle, as a list that starts and ends with the same vertex."""
        state: dict[V, int] = {}
        for start in candidates if candidates is not None else self.deps:
            if state.get(start):
                continue
            found = self._cycle_from(start, state)
            if found:
                return found
        return []

    def _cycle_from(self, start: V, state: dict[V, int]) -> list[object]:
        path: list[V] = []
        stack: list[tuple[V, Iterable[V]]] = [(start, iter(self.deps.get(start, ())))]
        state[start], path = 1, [start]
        while stack:
            vertex, children = stack[-1]
            child = next(iter(children), None)
            if child is None:
                state[vertex] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return [*path[path.index(child):], child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(self.deps.get(child, ()))))
        return []

    def closure(self, roots: Iterable[V]) -> set[V]:
        """The roots and everything they depend on, transitively."""
        seen: set[V] = set()
        todo = list(roots)
        while todo:
            vertex = todo.pop()
            if vertex not in seen:
                seen.add(vertex)
                todo.extend(self.deps.get(vertex, ()))
        return seen


BURST = 16
"""Visits started per event-loop turn: when many vertices become ready at once, the
first ones get going while the rest are still being started."""

Outcome = bool | None
"""A visit's result: True lets dependents run; False skips them; None says the visit
did not start after all (it saw ``should_stop``): its dependents are not started."""


def heights(graph: Graph[V], order: list[V], dependents: dict[V, list[V]]) -> dict[V, int]:
    """Each vertex's longest path to a vertex nothing waits for (1 for those)."""
    height: dict[V, int] = {}
    for vertex in reversed(order):
        height[vertex] = 1 + max((height[d] for d in dependents.get(vertex, ())), default=0)
    return height


async def walk(
    graph: Graph[V],
    visit: Callable[[V], Awaitable[Outcome]],
    *,
    parallel: int,
    on_skip: Callable[[V, V], None] = lambda vertex, cause: None,
    should_stop: Callable[[], bool] = lambda: False,
    order: list[V] | None = None,
) -> dict[V, str]:
    """Visit every vertex after its dependencies, at most ``parallel`` at once.

    A vertex starts the moment its last dependency finishes (no level barriers).
    Among ready vertices, the one with the longest chain of work behind it starts
    first (critical-path-first list scheduling), so deep chains never wait behind
    wide, shallow ones. When a visit returns False its dependents are skipped
    (``on_skip`` names the failed cause) while independent branches go on.
    When ``should_stop`` turns true no new visits start; visits in flight finish (a
    visit returning None says it withdrew before doing anything).
    Returns each vertex's fate: "done", "failed", "skipped" or "not-started".
    ``order``: the graph's ``topological_order()``, when the caller has it already.

    A visit that raises (or is cancelled) is a bug of the caller, never a result: no
    new visit starts, those in flight finish, and the walk raises the exception (an
    ``ExceptionGroup`` when several visits raised). Nothing is dropped.
    """
    import asyncio

    if parallel < 1:
        raise ValueError(f"parallel must be at least 1, not {parallel}: nothing could ever start")
    plan = _Schedule(graph, order)
    ready = plan.ready
    fate: dict[V, str] = {}
    running: set[asyncio.Task[Outcome]] = set()
    task_vertex: dict[asyncio.Task[Outcome], V] = {}

    finished: deque[asyncio.Task[Outcome]] = deque()
    wake = asyncio.Event()
    errors: list[BaseException] = []

    def on_done(task: asyncio.Task[Outcome]) -> None:
        finished.append(task)
        wake.set()

    async def drive() -> None:
        while ready or running:
            started = 0
            while ready and len(running) < parallel and not should_stop() and not errors:
                if started == BURST:
                    await asyncio.sleep(0)
                    started = 0
                    continue
                vertex = plan.next()
                if vertex in fate:
                    continue
                task = asyncio.ensure_future(visit(vertex))
                task.add_done_callback(on_done)
                running.add(task)
                task_vertex[task] = vertex
                started += 1
            if not running:
                break
            if not finished:
                wake.clear()
                await wake.wait()
            while finished:
                task = finished.popleft()
                running.discard(task)
                vertex = task_vertex.pop(task)
                if task.cancelled():
                    errors.append(RuntimeError(f"the visit of {vertex!r} was cancelled"))
                    fate[vertex] = "failed"
                    continue
                error = task.exception()
                if error is not None:
                    errors.append(error)
                    fate[vertex] = "failed"
                    continue
                outcome = task.result()
                if outcome is None:
                    fate[vertex] = "not-started"
                elif outcome:
                    fate[vertex] = "done"
                    plan.release(vertex, fate)
                else:
                    fate[vertex] = "failed"
                    plan.skip(vertex, vertex, fate, on_skip)

    try:
        await drive()
    finally:
        await _settle(running)
    if errors:
        raise errors[0] if len(errors) == 1 else BaseExceptionGroup(f"{len(errors)} visits raised", errors)
    for vertex in plan.order:
        fate.setdefault(vertex, "not-started")
    return fate


def walk_in_order(
    graph: Graph[V],
    visit: Callable[[V], Outcome],
    *,
    on_skip: Callable[[V, V], None] = lambda vertex, cause: None,
    should_stop: Callable[[], bool] = lambda: False,
    order: list[V] | None = None,
) -> dict[V, str]:
    """``walk`` with ``parallel=1`` on this thread, without an event loop: for visits
    that finish at once, where a loop would cost more than it saves. Same order
    (longest chain first), outcomes and fates as ``walk``; a visit that raises ends
    the walk with its exception."""
    plan = _Schedule(graph, order)
    fate: dict[V, str] = {}
    while plan.ready and not should_stop():
        vertex = plan.next()
        if vertex in fate:
            continue
        try:
            outcome = visit(vertex)
        except BaseException:
            fate[vertex] = "failed"
            raise
        if outcome is None:
            fate[vertex] = "not-started"
            continue
        fate[vertex] = "done" if outcome else "failed"
        if outcome:
            plan.release(vertex, fate)
        else:
            plan.skip(vertex, vertex, fate, on_skip)
    for vertex in plan.order:
        fate.setdefault(vertex, "not-started")
    return fate


class _Schedule(Generic[V]):
    """The ready vertices of a walk, longest chain of work behind them first."""

    def __init__(self, graph: Graph[V], order: list[V] | None = None) -> None:
        self.order = graph.topological_order() if order is None else order
        self.waiting = {v: len(set(graph.deps.get(v, ()))) for v in self.order}
        self.dependents = {v: list(set(ds)) for v, ds in graph.dependents().items()}
        self.height = heights(graph, self.order, self.dependents)
        self.position = {v: i for i, v in enumerate(self.order)}
        self.ready: list[tuple[int, int, V]] = []
        for vertex in self.order:
            if self.waiting[vertex] == 0:
                self.make_ready(vertex)

    def make_ready(self, vertex: V) -> None:
        heapq.heappush(self.ready, (-self.height[vertex], self.position[vertex], vertex))

    def next(self) -> V:
        return heapq.heappop(self.ready)[2]

    def release(self, vertex: V, fate: Mapping[V, str]) -> None:
        """``vertex`` is done: dependents whose last dependency it was become ready."""
        for dependent in self.dependents.get(vertex, ()):
            self.waiting[dependent] -= 1
            if self.waiting[dependent] == 0 and dependent not in fate:
                self.make_ready(dependent)

    def skip(self, vertex: V, cause: V, fate: dict[V, str], on_skip: Callable[[V, V], None]) -> None:
        """Everything that depends on ``vertex``, transitively, is skipped."""
        for dependent in self.dependents.get(vertex, ()):
            if dependent not in fate:
                fate[dependent] = "skipped"
                on_skip(dependent, cause)
                self.skip(dependent, cause, fate, on_skip)


async def _settle(running: set[asyncio.Task[Outcome]]) -> None:
    """When the walk itself is cancelled, its visits are cancelled too and awaited:
    no visit outlives the walk that started it."""
    import asyncio

    for task in running:
        task.cancel()
    if running:
        await asyncio.gather(*running, return_exceptions=True)
