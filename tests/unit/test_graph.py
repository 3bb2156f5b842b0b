"""The generic graph: ordering, cycles and the bounded asynchronous walk."""

from __future__ import annotations

import asyncio

import pytest

from stackwright.graph import CycleFound, Graph, Outcome, walk, walk_in_order


def test_topological_order_puts_dependencies_first() -> None:
    graph = Graph.from_mapping({1: [2, 3], 2: [4], 3: [4], 4: []})
    order = graph.topological_order()
    assert order.index(4) < order.index(2) < order.index(1)
    assert order.index(3) < order.index(1)


def test_cycle_is_reported_in_order() -> None:
    with pytest.raises(CycleFound) as info:
        Graph.from_mapping({1: [2], 2: [3], 3: [1], 4: []}).topological_order()
    cycle = info.value.cycle
    assert cycle[0] == cycle[-1] and sorted(cycle[:-1]) == [1, 2, 3]
    for a, b in zip(cycle, cycle[1:]):
        assert b in {1: [2], 2: [3], 3: [1]}[a]


def test_self_loop_is_a_cycle() -> None:
    with pytest.raises(CycleFound):
        Graph.from_mapping({1: [1]}).topological_order()


def test_closure_follows_dependencies() -> None:
    graph = Graph.from_mapping({1: [2], 2: [3], 3: [], 4: [3]})
    assert graph.closure([1]) == {1, 2, 3}


def test_walk_failure_skips_only_dependents() -> None:
    graph = Graph.from_mapping({"app": ["db"], "db": ["net"], "net": [], "logs": []})
    skipped: list[tuple[str, str]] = []

    async def visit(v: str) -> bool:
        return v != "db"

    fate = asyncio.run(walk(graph, visit, parallel=4, on_skip=lambda v, c: skipped.append((v, c))))
    assert fate == {"net": "done", "db": "failed", "app": "skipped", "logs": "done"}
    assert skipped == [("app", "db")]


def test_walk_never_exceeds_parallel_limit() -> None:
    graph = Graph.from_mapping({i: [] for i in range(40)})
    running = peak = 0

    async def visit(v: int) -> bool:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= 1
        return True

    asyncio.run(walk(graph, visit, parallel=5))
    assert peak == 5


def test_walk_has_no_level_barriers() -> None:
    """A slow vertex at level 0 must not hold back the chain next to it: "slow" finishes
    only once "c", two levels further, has run (with level barriers it never would)."""
    graph = Graph.from_mapping({"slow": [], "a": [], "b": ["a"], "c": ["b"]})
    finished: list[str] = []

    async def run() -> None:
        c_ran = asyncio.Event()

        async def visit(v: str) -> bool:
            if v == "slow":
                await asyncio.wait_for(c_ran.wait(), timeout=30)
            if v == "c":
                c_ran.set()
            finished.append(v)
            return True

        await walk(graph, visit, parallel=4)

    asyncio.run(run())
    assert finished.index("c") < finished.index("slow")


def test_walk_stops_starting_new_vertices_when_asked() -> None:
    graph = Graph.from_mapping({i: [i - 1] if i else [] for i in range(5)})
    visited: list[int] = []

    async def visit(v: int) -> bool:
        visited.append(v)
        return True

    fate = asyncio.run(walk(graph, visit, parallel=1, should_stop=lambda: len(visited) >= 2))
    assert visited == [0, 1]
    assert [fate[i] for i in range(5)] == ["done", "done", "not-started", "not-started", "not-started"]


def test_a_vertex_with_several_dependencies_starts_after_the_last_of_them() -> None:
    graph = Graph.from_mapping({4: [1, 2, 3], 1: [], 2: [], 3: [0], 0: []})
    finished: list[int] = []

    async def visit(v: int) -> bool:
        await asyncio.sleep(0.01 * (3 - v) if v < 4 else 0)
        finished.append(v)
        return True

    fate = asyncio.run(walk(graph, visit, parallel=8))
    assert finished[-1] == 4 and sorted(finished) == [0, 1, 2, 3, 4]
    assert set(fate.values()) == {"done"}


def test_a_vertex_is_skipped_once_when_several_of_its_dependencies_fail() -> None:
    graph = Graph.from_mapping({4: [1, 2, 3], 5: [4], 1: [], 2: [], 3: []})
    skipped: list[tuple[int, int]] = []
    visited: list[int] = []

    async def visit(v: int) -> bool:
        visited.append(v)
        return v == 3

    fate = asyncio.run(walk(graph, visit, parallel=1, on_skip=lambda v, c: skipped.append((v, c))))
    assert fate == {1: "failed", 2: "failed", 3: "done", 4: "skipped", 5: "skipped"}
    assert sorted(visited) == [1, 2, 3]
    assert [v for v, _ in skipped] == [4, 5] and skipped[0][1] == skipped[1][1] in (1, 2)


def test_an_exception_in_a_visit_is_raised_by_the_walk_after_visits_in_flight_end() -> None:
    graph = Graph.from_mapping({1: [], 2: [], 3: [1], 4: [2]})
    finished: list[int] = []

    async def visit(v: int) -> bool:
        if v == 1:
            raise ValueError("visit 1 broke")
        await asyncio.sleep(0.02)
        finished.append(v)
        return True

    with pytest.raises(ValueError, match="visit 1 broke"):
        asyncio.run(walk(graph, visit, parallel=4))
    assert finished == [2], "the visit in flight finishes; nothing new starts, 3 never runs"


def test_exceptions_of_several_visits_are_all_raised() -> None:
    graph = Graph.from_mapping({1: [], 2: [], 3: []})

    async def visit(v: int) -> bool:
        await asyncio.sleep(0)
        if v < 3:
            raise KeyError(v)
        return True

    with pytest.raises(ExceptionGroup) as info:
        asyncio.run(walk(graph, visit, parallel=4))
    assert sorted(e.args[0] for e in info.value.exceptions) == [1, 2]


def test_a_cancelled_visit_is_an_error_not_a_silent_failure() -> None:
    graph = Graph.from_mapping({1: [], 2: [1]})

    async def visit(v: int) -> bool:
        asyncio.current_task().cancel()  # type: ignore[union-attr]
        await asyncio.sleep(0)
        return True

    with pytest.raises(RuntimeError, match="visit of 1 was cancelled"):
        asyncio.run(walk(graph, visit, parallel=2))


def test_a_visit_that_withdraws_leaves_it_and_its_dependents_not_started() -> None:
    graph = Graph.from_mapping({"a": [], "b": ["a"], "x": []})
    skipped: list[str] = []

    async def visit(v: str) -> bool | None:
        return None if v == "a" else True

    fate = asyncio.run(walk(graph, visit, parallel=2, on_skip=lambda v, cause: skipped.append(v)))
    assert fate == {"a": "not-started", "b": "not-started", "x": "done"}
    assert skipped == []


def test_a_walk_that_could_start_nothing_is_refused() -> None:
    async def visit(v: int) -> bool:
        return True

    with pytest.raises(ValueError, match="parallel must be at least 1"):
        asyncio.run(walk(Graph.from_mapping({1: []}), visit, parallel=0))


def test_edges_added_one_at_a_time_order_like_a_mapping() -> None:
    graph: Graph[int] = Graph()
    graph.add(1, [2])
    graph.add(1, [3])
    graph.add(2)
    assert graph.deps == {1: [2, 3], 2: []}
    order = graph.topological_order()
    assert order.index(2) < order.index(1) and order.index(3) < order.index(1)


def test_the_reversed_graph_orders_dependents_first() -> None:
    graph = Graph.from_mapping({"app": ["db"], "db": ["net"], "net": []})
    assert graph.reversed().deps == {"app": [], "db": ["app"], "net": ["db"]}
    assert graph.reversed().topological_order() == ["app", "db", "net"]


def test_a_cycle_error_names_the_cycle() -> None:
    with pytest.raises(CycleFound, match=r"^dependency cycle: a -> b -> a$"):
        Graph.from_mapping({"a": ["b"], "b": ["a"]}).topological_order()


def test_find_cycle_looks_past_vertices_already_cleared() -> None:
    graph = Graph.from_mapping({1: [2], 2: [], 3: [4], 4: [3]})
    assert graph.find_cycle() == [3, 4, 3]
    assert graph.find_cycle([1, 2, 3]) == [3, 4, 3]


def test_find_cycle_searches_only_from_the_candidates() -> None:
    graph = Graph.from_mapping({1: [2], 2: [1], 3: []})
    assert graph.find_cycle([3]) == []
    assert graph.find_cycle() == [1, 2, 1]


def test_closure_reaches_dependencies_that_declare_none() -> None:
    assert Graph.from_mapping({1: [2, 3]}).closure([1]) == {1, 2, 3}


def test_the_longest_chain_starts_before_shallow_vertices_listed_first() -> None:
    graph = Graph.from_mapping({"a": [], "b": ["a"], "c": ["b"], "x": [], "y": []})
    started: list[str] = []

    async def visit(v: str) -> bool:
        started.append(v)
        return True

    asyncio.run(walk(graph, visit, parallel=1))
    assert started[:2] == ["a", "b"]
    assert sorted(started) == ["a", "b", "c", "x", "y"]


def test_a_cancelled_walk_returns_only_after_every_visit_has_wound_down() -> None:
    cleaned: list[str] = []

    async def main() -> None:
        both_running = asyncio.Event()
        count = 0

        async def visit(v: str) -> bool:
            nonlocal count
            count += 1
            if count == 2:
                both_running.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                for _ in range(20 if v == "slow" else 0):
                    await asyncio.sleep(0)
                cleaned.append(v)
                raise
            return True

        task = asyncio.create_task(walk(Graph.from_mapping({"fast": [], "slow": []}), visit, parallel=2))
        await both_running.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sorted(cleaned) == ["fast", "slow"]

    asyncio.run(main())


def test_many_ready_vertices_start_in_bursts_without_waiting_for_a_visit_to_finish() -> None:
    """The first visits get going while the rest are still being started, and every
    ready vertex is started before any visit has to finish."""
    events: list[tuple[str, int]] = []

    async def visit(v: int) -> bool:
        events.append(("start", v))
        await asyncio.sleep(0)
        events.append(("resumed", v))
        for _ in range(4):
            await asyncio.sleep(0)
        events.append(("end", v))
        return True

    fate = asyncio.run(walk(Graph.from_mapping({i: [] for i in range(40)}), visit, parallel=40))
    assert set(fate.values()) == {"done"} and len(fate) == 40
    starts = [v for kind, v in events if kind == "start"]
    assert events.index(("resumed", starts[0])) < events.index(("start", starts[16]))
    first_end = next(i for i, (kind, _) in enumerate(events) if kind == "end")
    assert sum(1 for kind, _ in events[:first_end] if kind == "start") == 40


def test_find_cycle_finds_a_cycle_entered_from_outside_it() -> None:
    assert Graph.from_mapping({1: [2], 2: [3], 3: [2]}).find_cycle() == [2, 3, 2]


def test_find_cycle_passes_through_dependencies_that_declare_none() -> None:
    assert Graph.from_mapping({1: [2, 3], 3: [4]}).find_cycle() == []


def test_the_walk_in_order_visits_like_a_walk_one_at_a_time() -> None:
    """Longest chain of work first, dependencies before dependents, failures skipping
    only their dependents, a withdrawn visit leaving its dependents not started."""
    graph = Graph.from_mapping({"app": ["db"], "db": ["net"], "net": [], "logs": [], "cron": ["logs"],
                                "web": ["app"], "cache": ["gone"], "gone": []})
    answers: dict[str, Outcome] = {"logs": False, "gone": None}
    skipped: list[tuple[str, str]] = []

    def run_both() -> tuple[list[str], dict[str, str], list[str], dict[str, str]]:
        async_visits: list[str] = []

        async def visit(v: str) -> Outcome:
            async_visits.append(v)
            return answers.get(v, True)

        fate = asyncio.run(walk(graph, visit, parallel=1))
        in_order: list[str] = []

        def visit_now(v: str) -> Outcome:
            in_order.append(v)
            return answers.get(v, True)

        return async_visits, fate, in_order, walk_in_order(
            graph, visit_now, on_skip=lambda v, c: skipped.append((v, c)))

    async_visits, fate, in_order, fate_in_order = run_both()
    assert in_order == async_visits and in_order[:2] == ["net", "db"]
    assert fate_in_order == fate == {"net": "done", "db": "done", "app": "done", "web": "done",
                                     "logs": "failed", "cron": "skipped", "gone": "not-started",
                                     "cache": "not-started"}
    assert skipped == [("cron", "logs")]


def test_the_walk_in_order_stops_when_asked_and_raises_what_a_visit_raises() -> None:
    graph = Graph.from_mapping({i: [i - 1] if i else [] for i in range(5)})
    visited: list[int] = []

    def visit(v: int) -> bool:
        visited.append(v)
        if v == 3:
            raise RuntimeError("bug")
        return True

    fate = walk_in_order(graph, visit, should_stop=lambda: len(visited) >= 2)
    assert visited == [0, 1] and [fate[i] for i in range(5)] == ["done", "done", *["not-started"] * 3]
    with pytest.raises(RuntimeError, match="bug"):
        walk_in_order(graph, visit)


@pytest.mark.parametrize("order", [["a", "b", "c", "d"], ["c", "a", "b", "d"], ["b", "c", "a", "d"]])
def test_a_walk_given_the_order_breaks_ties_by_it(order: list[str]) -> None:
    """Vertices with equal chains of work behind them start in the order the caller
    gave (the graph's own order is not computed again), in both walks."""
    graph = Graph.from_mapping({"a": [], "b": [], "c": [], "d": ["a", "b", "c"]})
    started: list[str] = []

    async def visit(v: str) -> bool:
        started.append(v)
        return True

    fate = asyncio.run(walk(graph, visit, parallel=1, order=order))
    in_order: list[str] = []

    def visit_now(v: str) -> bool:
        in_order.append(v)
        return True

    fate_in_order = walk_in_order(graph, visit_now, order=order)

    assert started == in_order == order
    assert fate == fate_in_order == dict.fromkeys(order, "done")
