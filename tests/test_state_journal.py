"""The open operation (the journal a writer keeps while it runs), the lock it runs under
and the bookkeeping around them, as the next holder of a stack's lock sees them, on every
backend (``backend`` from test_state_store.py). A writer that never finishes stands for
one killed before its checkpoint: its store is simply dropped, in this process, so that
the mutation tests of ``state/sql_store.py`` (docs/mutation.md) reach the code.
"""

from __future__ import annotations

from typing import Any

import pytest

from stackwright.errors import StateError
from stackwright.state.records import Change
from test_state_store import Backend, backend, bucket, change, lock, pending

__all__ = ["backend"]  # the fixture, parametrised over SQLite, PostgreSQL and S3

INTERRUPTED_BY_ALICE = ("interrupted: the up by alice (up, pid 4242 on laptop, alice) stopped before "
                        "recording its checkpoint; closed by the next holder of the stack's lock")


def killed_writer(backend: Backend) -> Any:
    """A store whose writer `up` by alice, under alice's lock, recorded some changes and
    then stopped without its checkpoint; the stack holds three resources."""
    s = backend.open()
    s.create_stack("dev")
    w = s.begin("dev", "up", "setup")
    for n in (3, 4, 5):
        w.record_resource(bucket(n), change(bucket(n)))
    w.finish("succeeded", {"n": 3})
    s.acquire_lock("dev", lock("alice", "up", "tok-alice"))
    w = s.begin("dev", "up", "alice")
    w.record_pending(pending(bucket(1), "p1"))
    w.record_resource(bucket(1), change(bucket(1)), clears="p1")
    w.remove_resource(bucket(3).urn, change(bucket(3), "delete"))
    w.record_pending(pending(bucket(2), "p2"))
    w.clear_pending("p2", Change(bucket(2).urn, bucket(2).type, "create", error="quota exceeded"))
    w.add_change(Change(bucket(4).urn, bucket(4).type, "update", error="not saved until the next write"))
    w.remove_resource(bucket(5).urn, change(bucket(5), "delete"), resource_id=bucket(5).id)
    return s


def take_over(backend: Backend) -> Any:
    """The next holder: breaks the dead holder's lock and takes it."""
    s = backend.open()
    assert s.break_lock("dev").owner == "alice"
    s.acquire_lock("dev", lock("bob", "up", "tok-bob"))
    return s


def test_the_next_writer_closes_an_operation_left_open_as_interrupted(backend: Backend) -> None:
    dead = killed_writer(backend)
    serial = dead.snapshot("dev").serial
    s = take_over(backend)

    w = s.begin("dev", "up", "bob")

    *_, interrupted = s.history("dev")
    assert (interrupted.number, interrupted.kind, interrupted.who, interrupted.result) == (2, "up", "alice", "interrupted")
    assert interrupted.message == INTERRUPTED_BY_ALICE
    assert interrupted.counts == {"create": 2, "delete": 2, "update": 1}
    assert interrupted.serial == serial and interrupted.finished_at >= interrupted.started_at
    detail = s.checkpoint("dev", 2)
    assert [(c.urn, c.op, c.error) for c in detail.changes] == [
        (bucket(1).urn, "create", None),
        (bucket(3).urn, "delete", None),
        (bucket(2).urn, "create", "quota exceeded"),
        (bucket(4).urn, "update", "not saved until the next write"),
        (bucket(5).urn, "delete", None),
    ]
    assert detail.resources == [bucket(4), bucket(1)] and detail.outputs == {"n": 3}
    assert s.snapshot("dev").serial == serial, "closing it records what happened, it changes no state"

    w.record_resource(bucket(6), change(bucket(6)))
    done = w.finish("succeeded", None)
    assert done is not None and (done.number, done.who, done.counts) == (3, "bob", {"create": 1})
    s.begin("dev", "up", "carol").finish("succeeded", None)
    assert [c.result for c in s.history("dev")] == ["succeeded", "interrupted", "succeeded"], "closed once"


def test_a_read_only_store_leaves_the_open_operation_for_a_writer(backend: Backend) -> None:
    killed_writer(backend)
    reader = backend.open(read_only=True)

    reader.begin("dev", "preview", "bob")

    assert [c.result for c in reader.history("dev")] == ["succeeded"]
    take_over(backend).begin("dev", "up", "bob")
    assert [c.result for c in backend.open().history("dev")] == ["succeeded", "interrupted"]


def test_an_operation_that_only_failed_is_closed_with_its_failures(backend: Backend) -> None:
    s = backend.open()
    s.create_stack("dev")
    w = s.begin("dev", "destroy", "alice")
    w.record_pending(pending(bucket(1), "p1", "delete"))
    w.clear_pending("p1", Change(bucket(1).urn, bucket(1).type, "delete", error="AccessDenied"))

    backend.open().begin("dev", "up", "bob")

    [closed] = s.history("dev")
    assert (closed.kind, closed.who, closed.result, closed.counts) == ("destroy", "alice", "interrupted", {"delete": 1})
    assert "the destroy by alice stopped before" in closed.message, "no lock was held: none is named"
    assert s.snapshot("dev").pending == []


def test_a_writer_that_finishes_leaves_nothing_open(backend: Backend) -> None:
    s = backend.open()
    s.create_stack("dev")
    w = s.begin("dev", "up", "alice")
    w.record_resource(bucket(1), change(bucket(1)))
    w.finish("succeeded", None)
    w = s.begin("dev", "up", "alice")
    w.record_pending(pending(bucket(2), "p2"))
    w.clear_pending("p2")
    assert w.finish("succeeded", {"a": 1}) is None, "a write without a change is no checkpoint"

    backend.open().begin("dev", "up", "bob").finish("succeeded", None)

    assert [c.result for c in s.history("dev")] == ["succeeded"]
    assert s.snapshot("dev").outputs == {"a": 1}


def test_refusals_say_what_to_do(backend: Backend) -> None:
    s = backend.open()
    s.create_stack("dev")
    w = s.begin("dev", "up", "alice")
    w.record_resource(bucket(1), change(bucket(1)))
    w.record_resource(bucket(2), change(bucket(2)))
    with pytest.raises(StateError) as moved:
        w.rename_resource(bucket(1).urn, bucket(2).urn)
    assert moved.value.message == f"cannot move {bucket(1).urn} to {bucket(2).urn}: a resource is already recorded there"
    assert moved.value.hint == "remove one of the aliases"
    w.finish("succeeded", None)
    with pytest.raises(StateError) as removed:
        s.remove_stack("dev")
    assert removed.value.message == "stack 'dev' still has 2 resources"
    assert removed.value.hint == ("run `stackwright destroy` first, or force the removal to forget "
                                  "them (the cloud resources are left running)")
