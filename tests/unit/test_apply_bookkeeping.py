"""Apply bookkeeping: what the cheaper write path, worker pool and collector pause of a
parallel apply still guarantee (issue 14 point 3)."""

from __future__ import annotations

import asyncio
import gc
import threading
from pathlib import Path
from typing import Any

import pytest

from stackwright.engine.apply import young_collections_only
from stackwright.engine.calls import CallWithdrawn, ProviderCalls
from stackwright.engine.commit import GroupCommit
from stackwright.engine.events import EventSink
from stackwright.engine.retry import RetryPolicy
from stackwright.state.records import Change, PendingOperation, ResourceState
from stackwright.state.sqlite import SqliteStateStore


def thing(n: int) -> ResourceState:
    urn = f"dev::p::t:Thing::thing-{n}"
    return ResourceState(urn, "t:Thing", f"id-{n}", {"size": n}, {"size": n, "value": f"v{n}"})


def created(r: ResourceState) -> Change:
    return Change(r.urn, r.type, "create")


def pending(r: ResourceState, token: str) -> PendingOperation:
    return PendingOperation(token, r.urn, r.type, "create", dict(r.inputs))


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    path = tmp_path / "state.db"
    with SqliteStateStore(path) as store:
        store.create_stack("dev")
    return path


def test_a_writer_killed_after_a_group_commit_leaves_every_change_of_it(state_file: Path) -> None:
    """A group commit stores its writes' change lines together; an `up` that dies right
    after it is closed as interrupted, listing each change that landed, once."""
    store = SqliteStateStore(state_file)
    writer = store.begin("dev", "up", "alice")
    with writer.batch():
        for n in range(3):
            writer.record_pending(pending(thing(n), f"t{n}"))
    with writer.batch():
        for n in range(3):
            writer.record_resource(thing(n), created(thing(n)), clears=f"t{n}")
    with writer.batch():
        writer.record_pending(pending(thing(3), "t3"))
    # The process dies here: no finish, no checkpoint.
    with SqliteStateStore(state_file) as later:
        later.begin("dev", "up", "bob").finish("succeeded", None)
        [checkpoint] = later.history("dev")
        detail = later.checkpoint("dev", checkpoint.number)
    store.close()
    assert checkpoint.result == "interrupted"
    assert checkpoint.counts == {"create": 3}
    assert [c.urn for c in detail.changes] == [thing(n).urn for n in range(3)]


def test_a_group_commit_that_fails_reports_none_of_its_changes(state_file: Path) -> None:
    """Rolled back means not done: the checkpoint lists only changes that committed."""
    with SqliteStateStore(state_file) as store:
        writer = store.begin("dev", "up", "alice")
        writer.record_resource(thing(1), created(thing(1)))
        with pytest.raises(RuntimeError), writer.batch():
            writer.record_resource(thing(2), created(thing(2)))
            raise RuntimeError("the commit failed")
        checkpoint = writer.finish("succeeded", None)
        assert checkpoint is not None and checkpoint.counts == {"create": 1}
        assert [c.urn for c in store.checkpoint("dev", checkpoint.number).changes] == [thing(1).urn]
        assert list(store.snapshot("dev").resources) == [thing(1).urn]


def test_queued_calls_are_withdrawn_and_running_ones_finish() -> None:
    """One worker: the first call runs, the two queued behind it are withdrawn on an
    interrupt and never start; the running one delivers its result."""
    started: list[str] = []
    release = threading.Event()

    def call(name: str) -> str:
        started.append(name)
        release.wait(10)
        return name

    async def run() -> tuple[list[Any], int]:
        calls = ProviderCalls(1, RetryPolicy(), EventSink())
        try:
            tasks = [asyncio.ensure_future(calls.run(f"urn:{n}", "create", call, n)) for n in "abc"]
            while not started:
                await asyncio.sleep(0.01)
            withdrawn = calls.withdraw_queued()
            release.set()
            return await asyncio.gather(*tasks, return_exceptions=True), withdrawn
        finally:
            calls.close()

    results, withdrawn = asyncio.run(run())
    assert withdrawn == 2 and started == ["a"]
    assert results[0] == "a"
    assert all(isinstance(r, CallWithdrawn) for r in results[1:])


def test_at_most_parallel_workers_run_calls() -> None:
    running, most = 0, 0
    lock = threading.Lock()

    def call() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        threading.Event().wait(0.005)
        with lock:
            running -= 1

    async def run() -> None:
        calls = ProviderCalls(3, RetryPolicy(), EventSink())
        try:
            await asyncio.gather(*(calls.run(f"urn:{n}", "create", call) for n in range(20)))
        finally:
            calls.close()

    asyncio.run(run())
    assert most == 3


def test_the_collector_thresholds_come_back_after_overlapping_walks() -> None:
    """Full collections pause while any walk runs, and the thresholds are the user's
    again once the last one ends, even when one ended by raising."""
    before = gc.get_threshold()
    first, second = young_collections_only(), young_collections_only()
    first.__enter__()
    second.__enter__()
    during = gc.get_threshold()
    assert during[0] == max(before[0], 10_000) and during[1] == before[1] and during[2] > before[2]
    with pytest.raises(RuntimeError):
        with young_collections_only():
            raise RuntimeError("a walk failed")
    first.__exit__(None, None, None)
    assert gc.get_threshold() != before
    second.__exit__(None, None, None)
    assert gc.get_threshold() == before


def test_calls_that_return_at_once_do_not_start_a_worker_per_slot() -> None:
    """Workers are added as calls block: instant calls are served by a few threads
    however many slots there are, while blocking calls fill every slot (above)."""
    threads: set[str] = set()

    def call(n: int) -> int:
        threads.add(threading.current_thread().name)
        return n

    async def run() -> list[int]:
        calls = ProviderCalls(64, RetryPolicy(), EventSink())
        try:
            return list(await asyncio.gather(*(calls.run(f"urn:{n}", "create", call, n) for n in range(500))))
        finally:
            calls.close()

    assert asyncio.run(run()) == list(range(500))
    assert 1 <= len(threads) < 8


def test_writes_arriving_over_a_few_loop_turns_share_one_commit(state_file: Path) -> None:
    """Steps woken together reach their writes a turn or two apart: one transaction
    holds them all, and every write is committed when its await returns."""

    async def run() -> tuple[int, list[int]]:
        with SqliteStateStore(state_file) as store:
            writer = store.begin("dev", "up", "alice")
            commit = GroupCommit(writer)
            seen: list[int] = []

            async def step(n: int) -> None:
                for _ in range(n % 3):
                    await asyncio.sleep(0)
                await commit(writer.record_resource, thing(n), created(thing(n)))
                with SqliteStateStore(state_file) as reader:
                    seen.append(len(reader.snapshot("dev").resources))

            await asyncio.gather(*(step(n) for n in range(9)))
            writer.finish("succeeded", None)
            return commit.commits, seen

    commits, seen = asyncio.run(run())
    assert commits == 1
    assert seen == [9] * 9


def test_a_retry_withdrawn_on_an_interrupt_keeps_the_outcome_unknown() -> None:
    """A call failed transiently once, and its retry waits behind a running call when
    Ctrl-C withdraws the queue: the first attempt may have taken effect, so the step
    fails with that transient error (the apply keeps its pending record), never with
    the definitive ``CallWithdrawn`` (which would clear it)."""
    from stackwright.errors import ProviderError

    release = threading.Event()
    attempts: list[str] = []

    def flaky() -> str:
        attempts.append("flaky")
        raise ProviderError("throttled", retryable=True)

    def slow() -> str:
        release.wait(10)
        return "slow"

    async def run() -> list[Any]:
        slow_started = asyncio.Event()

        async def wait_for_slow(delay: float) -> None:
            await slow_started.wait()

        calls = ProviderCalls(1, RetryPolicy(sleep=wait_for_slow), EventSink())
        try:
            first = asyncio.ensure_future(calls.run("urn:flaky", "create", flaky))
            while not attempts:
                await asyncio.sleep(0.01)
            second = asyncio.ensure_future(calls.run("urn:slow", "create", slow))
            await asyncio.sleep(0.05)
            slow_started.set()
            await asyncio.sleep(0.05)  # the retry is queued behind the slow call now
            assert calls.withdraw_queued() == 1
            release.set()
            return await asyncio.gather(first, second, return_exceptions=True)
        finally:
            calls.close()

    flaky_result, slow_result = asyncio.run(run())
    assert attempts == ["flaky"]
    assert isinstance(flaky_result, ProviderError) and not isinstance(flaky_result, CallWithdrawn)
    assert flaky_result.retryable
    assert slow_result == "slow"
