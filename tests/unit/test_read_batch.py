"""Batched reads: a refresh announces the ids it will read, and a provider that can read
many objects in one call answers a whole chunk from one call, each answer once, only
while the refresh runs; a failed batch call is retried like any read."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from stackwright.engine.events import EventSink
from stackwright.engine.refresh import read_all
from stackwright.engine.retry import RetryPolicy
from stackwright.errors import ProviderError
from stackwright.providers.aws.read_batch import MISS, ReadBatch
from stackwright.providers.protocol import OperationContext, ReadResult
from stackwright.state.records import ResourceState, Snapshot
from unit.fakes import FakeProviders, ThingProvider


class Cloud:
    """Objects by id, and every batch call made (the keys it asked for)."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.objects = {i: {"id": i} for i in ids}
        self.calls: list[list[str]] = []
        self.fail_next = 0

    def fetch(self, keys: list[str]) -> Mapping[str, Any]:
        self.calls.append(keys)
        if self.fail_next:
            self.fail_next -= 1
            raise ProviderError.transient("RequestLimitExceeded")
        return {k: self.objects[k] for k in keys if k in self.objects}


def ids(n: int) -> list[str]:
    return [f"subnet-{i:03d}" for i in range(n)]


def test_a_batch_of_n_ids_costs_one_call_and_each_answer_serves_one_read() -> None:
    cloud = Cloud(ids(7))
    batch = ReadBatch(cloud.fetch)
    with batch.reads(ids(7)):
        answers = [batch.take(i) for i in ids(7)]
        again = batch.take("subnet-003")
    assert answers == [{"id": i} for i in ids(7)]
    assert cloud.calls == [ids(7)]
    assert again is MISS  # a second read of the same id asks the cloud itself


def test_an_id_that_is_gone_answers_none_and_the_others_still_read() -> None:
    cloud = Cloud(ids(4))
    del cloud.objects["subnet-002"]
    batch = ReadBatch(cloud.fetch)
    with batch.reads(ids(4)):
        answers = {i: batch.take(i) for i in ids(4)}
    assert answers["subnet-002"] is None
    assert [i for i, a in answers.items() if a is not None] == ["subnet-000", "subnet-001", "subnet-003"]
    assert len(cloud.calls) == 1


def test_ids_not_announced_or_read_after_the_refresh_are_misses() -> None:
    cloud = Cloud(ids(3))
    batch = ReadBatch(cloud.fetch)
    assert batch.take("subnet-000") is MISS
    with batch.reads(ids(2)):
        assert batch.take("subnet-002") is MISS
    assert batch.take("subnet-001") is MISS  # the refresh is over: nothing stale is served
    assert cloud.calls == []


def test_chunks_are_at_most_per_call_keys_and_fetched_only_when_read() -> None:
    cloud = Cloud(ids(250))
    batch = ReadBatch(cloud.fetch, per_call=100)
    with batch.reads(ids(250)):
        batch.take("subnet-000")
        batch.take("subnet-099")
        assert [len(c) for c in cloud.calls] == [100]
        batch.take("subnet-249")
    assert [len(c) for c in cloud.calls] == [100, 50]


def test_ids_sharing_a_key_share_one_answer() -> None:
    """Attachments of one role: one call lists them all."""
    calls: list[list[str]] = []

    def fetch(keys: list[str]) -> Mapping[str, Any]:
        calls.append(keys)
        return {"role-a": ["p1", "p2"]}

    batch = ReadBatch(fetch, key=lambda i: i.partition("/")[0], per_call=1)
    with batch.reads(["role-a/p1", "role-a/p2", "role-b/p1"]):
        assert batch.take("role-a/p1") == ["p1", "p2"]
        assert batch.take("role-a/p2") == ["p1", "p2"]
        assert batch.take("role-b/p1") is None
    assert calls == [["role-a"], ["role-b"]]


def test_a_failed_batch_call_is_raised_to_the_read_and_its_retry_calls_again() -> None:
    cloud = Cloud(ids(3))
    cloud.fail_next = 1
    batch = ReadBatch(cloud.fetch)
    with batch.reads(ids(3)):
        try:
            batch.take("subnet-001")
        except ProviderError as err:
            assert err.retryable
        else:
            raise AssertionError("the throttled batch call was not raised")
        assert batch.take("subnet-001") == {"id": "subnet-001"}
        assert batch.take("subnet-000") == {"id": "subnet-000"}
    assert len(cloud.calls) == 2


def test_reads_on_many_threads_at_once_make_one_call() -> None:
    cloud = Cloud(ids(32))
    batch = ReadBatch(cloud.fetch)
    start = threading.Barrier(8)
    answers: dict[str, Any] = {}

    def reader(part: list[str]) -> None:
        start.wait()
        for i in part:
            answers[i] = batch.take(i)

    with batch.reads(ids(32)):
        threads = [threading.Thread(target=reader, args=(ids(32)[n::8],)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert answers == {i: {"id": i} for i in ids(32)}
    assert len(cloud.calls) == 1


# --- the engine's side ------------------------------------------------------------------


class BatchingThings(ThingProvider):
    """Reads answered from one batch call while a refresh has announced them."""

    def __init__(self) -> None:
        super().__init__()
        self.batch = ReadBatch(self._fetch)
        self.announced: list[list[str]] = []

    def _fetch(self, keys: list[str]) -> Mapping[str, Any]:
        with self.lock:
            self.calls["batch"] += 1
            return {k: dict(self.objects[k]) for k in keys if k in self.objects}

    @contextmanager
    def _reads(self, ids: Sequence[str]) -> Iterator[None]:
        self.announced.append(sorted(ids))
        with self.batch.reads(ids):
            yield

    def batch_reads(self, ids: Sequence[str]) -> Any:
        return self._reads(ids)

    def read(self, ctx: OperationContext, id: str | None, inputs: Mapping[str, Any],
             outputs: Mapping[str, Any]) -> ReadResult | None:
        answer = self.batch.take(id) if id else MISS
        if answer is MISS:
            return super().read(ctx, id, inputs, outputs)
        return None if answer is None else ReadResult(str(id), answer, {"arn": f"arn:{id}"})


def snapshot_of(things: dict[str, dict[str, Any]]) -> Snapshot:
    resources = {
        f"dev::p::fake:Thing::{name}": ResourceState(
            urn=f"dev::p::fake:Thing::{name}", type="fake:Thing", id=f"{name}-id",
            inputs=dict(inputs), outputs={**inputs, "arn": f"arn:{name}-id"})
        for name, inputs in things.items()}
    return Snapshot("dev", "lineage", 1, resources, {})


def test_refresh_announces_each_types_ids_and_reads_them_through_one_batch_call() -> None:
    providers = FakeProviders()
    providers.thing = BatchingThings()
    recorded = {f"t{n}": {"label": "x", "zone": "a", "ref": ""} for n in range(6)}
    providers.thing.objects = {f"{name}-id": dict(inputs) for name, inputs in recorded.items()}
    providers.thing.objects["t2-id"]["label"] = "changed outside"
    del providers.thing.objects["t4-id"]

    result = asyncio.run(read_all(snapshot_of(recorded), providers, 4, EventSink(), RetryPolicy()))

    assert providers.thing.announced == [sorted(f"t{n}-id" for n in range(6))]
    assert providers.thing.calls == {"batch": 1}  # no read went to the cloud on its own
    assert result.errors == {} and result.checked == 6
    assert {(d.urn.rsplit("::", 1)[1], d.kind) for d in result.drift} == {("t2", "changed"), ("t4", "deleted")}
    assert providers.thing.batch.take("t0-id") is MISS  # nothing is served after the refresh
