"""The open operation (the journal a writer keeps while it runs), the lock it runs under
and the bookkeeping around them, as the next holder of a stack's lock sees them, on every
backend (``backend`` from test_state_store.py). A writer that never finishes stands for
one killed before its checkpoint: its store is simply dropped, in this process, so that
the mutation tests of ``state/sql_store.py`` (docs/mutation.md) reach the code.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from stackwright.errors import LockHeldError, NotRecordedError, ReadOnlyStateError, StateError
from stackwright.state.records import Change
from stackwright.state.sqlite import SqliteStateStore
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
    assert interrupted.counts == {"create": 1, "delete": 2, "failed": 2}, "failures are counted apart"
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
    assert s.snapshot("dev").resources == dead.snapshot("dev").resources
    if not backend.s3:  # the S3 journal stores the close as a commit of its own, which moves the serial
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
    assert (closed.kind, closed.who, closed.result, closed.counts) == ("destroy", "alice", "interrupted", {"failed": 1})
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


def test_a_snapshot_names_its_stack_and_lineage(backend: Backend) -> None:
    s = backend.open()
    s.create_stack("dev")
    s.create_stack("prod")

    snap = s.snapshot("prod")

    assert (snap.stack, snap.lineage) == ("prod", [i.lineage for i in s.list_stacks() if i.name == "prod"][0])


def test_lock_refusals_name_the_stack(backend: Backend) -> None:
    s = backend.open()
    s.create_stack("dev")
    s.acquire_lock("dev", lock("alice", "up", "tok-a"))
    with pytest.raises(LockHeldError) as held:
        s.acquire_lock("dev", lock("bob"))
    assert held.value.message.startswith("stack 'dev' is locked by alice (pid 4242 on laptop), running 'up'")
    with pytest.raises(ReadOnlyStateError) as refused:
        backend.open(read_only=True).acquire_lock("dev", lock("bob"))
    assert refused.value.message.startswith("cannot take the lock of stack 'dev': the state store is open read-only")


def test_a_missing_checkpoint_points_to_the_history(backend: Backend) -> None:
    s = backend.open()
    s.create_stack("dev")
    with pytest.raises(StateError) as missing:
        s.checkpoint("dev", 7)
    assert (missing.value.message, missing.value.hint) == ("stack 'dev' has no checkpoint 7", "stackwright history")


@pytest.mark.parametrize("number", [0, -1, 2**64])
def test_a_checkpoint_number_no_store_can_hold_is_not_recorded_either(backend: Backend, number: int) -> None:
    s = backend.open()
    s.create_stack("dev")
    with pytest.raises(NotRecordedError) as missing:
        s.checkpoint("dev", number)
    assert missing.value.message == f"stack 'dev' has no checkpoint {number}"


def test_finishing_on_a_removed_stack_names_it(backend: Backend) -> None:
    s = backend.open()
    s.create_stack("dev")
    w = s.begin("dev", "up", "alice")
    backend.open().remove_stack("dev")
    with pytest.raises(StateError) as gone:
        w.finish("succeeded", {"url": "https://x"})
    assert gone.value.message == "no stack named 'dev'"


def sqlite_store(tmp_path: Path) -> SqliteStateStore:
    store = SqliteStateStore(tmp_path / "state.db")
    store.create_stack("dev")
    return store


def test_a_lock_race_lost_at_the_insert_names_the_winner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL: another writer inserted its lock between our check and our insert."""
    store = sqlite_store(tmp_path)
    db = store._db

    def lose(params: tuple[Any, ...]) -> bool:
        db.conn.execute("INSERT INTO locks VALUES (?, ?, ?, ?, ?, ?, ?)",
                        ("dev", "carol", 77, "ci-9", params[4], "destroy", "tok-carol"))
        return False

    monkeypatch.setattr(db, "insert_lock", lose)
    with pytest.raises(LockHeldError) as lost:
        store.acquire_lock("dev", lock("bob"))
    assert lost.value.message.startswith("stack 'dev' is locked by carol (pid 77 on ci-9), running 'destroy'")


def test_a_lock_race_lost_to_a_holder_already_gone_says_try_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = sqlite_store(tmp_path)
    monkeypatch.setattr(store._db, "insert_lock", lambda params: False)
    with pytest.raises(LockHeldError) as lost:
        store.acquire_lock("dev", lock("bob"))
    assert (lost.value.message, lost.value.hint) == (
        "the lock of stack 'dev' changed hands while taking it", "try again")
    assert store.read_lock("dev") is None


def test_a_schema_3_file_is_read_with_its_options(tmp_path: Path) -> None:
    """Schema 3 added resource options, schema 4 the open operation: a schema-3 file
    that a read-only command opens (so does not upgrade) still shows the options."""
    store = sqlite_store(tmp_path)
    w = store.begin("dev", "up", "alice")
    w.record_resource(bucket(1, options={"aliases": ["old"]}), change(bucket(1)))
    w.finish("succeeded", None)
    store.close()
    with closing(sqlite3.connect(tmp_path / "state.db")) as db, db:
        db.execute("DROP TABLE operations")
        db.execute("DROP TABLE operation_changes")
        db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")

    with SqliteStateStore(tmp_path / "state.db", read_only=True) as old:
        assert old.snapshot("dev").resources[bucket(1).urn].options == {"aliases": ["old"]}
        assert [r.options for r in old.checkpoint("dev", 1).resources] == [{"aliases": ["old"]}]
        old.begin("dev", "preview", "bob")


def test_a_read_only_writer_that_changed_nothing_finishes_without_writing(backend: Backend) -> None:
    """`preview` and other read-only commands begin and finish an operation too."""
    s = backend.open()
    s.create_stack("dev")
    before = backend.dump()

    assert backend.open(read_only=True).begin("dev", "preview", "bob").finish("succeeded", None) is None

    assert backend.dump() == before and s.history("dev") == []


def test_closing_an_operation_leaves_none_of_its_rows(tmp_path: Path) -> None:
    """`finish` and the next holder's close both remove the open operation and its change lines."""
    store = sqlite_store(tmp_path)
    w = store.begin("dev", "up", "alice")
    w.record_resource(bucket(1), change(bucket(1)))
    w.record_resource(bucket(2), change(bucket(2)))
    SqliteStateStore(tmp_path / "state.db").begin("dev", "up", "bob").finish("succeeded", None)
    w = store.begin("dev", "up", "carol")
    w.record_resource(bucket(3), change(bucket(3)))
    w.finish("succeeded", None)

    with closing(sqlite3.connect(tmp_path / "state.db")) as db:
        left = [db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("operations", "operation_changes")]
    assert left == [0, 0]
    assert [c.result for c in store.history("dev")] == ["interrupted", "succeeded"]


def test_a_group_commit_counts_each_of_its_changes(backend: Backend) -> None:
    s = backend.open()
    s.create_stack("dev")
    w = s.begin("dev", "up", "alice")
    with w.batch():
        w.record_resource(bucket(1), change(bucket(1)))
        w.remove_resource(bucket(1).urn, change(bucket(1), "delete"))
        w.record_pending(pending(bucket(2), "p2"))
        w.clear_pending("p2", change(bucket(2), "update"))

    done = w.finish("succeeded", None)

    assert done is not None and done.counts == {"create": 1, "delete": 1, "update": 1}


def test_a_finished_writer_names_the_operation_and_stack(backend: Backend) -> None:
    s = backend.open()
    s.create_stack("dev")
    w = s.begin("dev", "destroy", "alice")
    w.finish("succeeded", None)
    with pytest.raises(StateError) as late:
        w.record_resource(bucket(1), None)
    assert late.value.message == "the destroy on stack 'dev' already finished"


def test_creating_a_stack_says_why_not(backend: Backend) -> None:
    s = backend.open()
    s.create_stack("dev")
    with pytest.raises(StateError) as exists:
        s.create_stack("dev")
    assert (exists.value.message, exists.value.hint) == ("stack 'dev' already exists", "stackwright stack ls")
    with pytest.raises(ReadOnlyStateError) as refused:
        backend.open(read_only=True).create_stack("prod")
    assert refused.value.message.startswith("cannot create stack 'prod': the state store is open read-only")


def test_an_unreadable_schema_version_is_corrupt(tmp_path: Path) -> None:
    sqlite_store(tmp_path).close()
    with closing(sqlite3.connect(tmp_path / "state.db")) as db, db:
        db.execute("UPDATE meta SET value = 'four' WHERE key = 'schema_version'")
    with pytest.raises(StateError) as corrupt:
        SqliteStateStore(tmp_path / "state.db").snapshot("dev")
    assert corrupt.value.message == (f"state file {tmp_path / 'state.db'} is corrupt: "
                                     "its schema version is missing or unreadable")


def test_a_resource_row_holds_its_own_inputs_whatever_its_pending_record_held(backend: Backend) -> None:
    """The row a call's outcome writes holds that outcome's inputs, sealed with the key
    in use: not the inputs its pending record held (another object, or the same one
    sealed before the store took another key)."""
    from cryptography.fernet import Fernet

    from stackwright.model.values import Secret
    from stackwright.operations.keyring import FernetKey

    new_key = Fernet.generate_key()
    s = backend.open()
    s.create_stack("dev")
    earlier = s.begin("dev", "up", "me")
    earlier.record_pending(pending(bucket(3), "p0"))
    earlier.finish("failed", None)
    w = s.begin("dev", "up", "me")
    w.record_resource(bucket(3), change(bucket(3)), clears="p0")  # a call an earlier run left pending
    planned = bucket(1, inputs={"name": "b1", "size": 1})
    w.record_pending(pending(planned, "p1"))
    w.record_resource(bucket(1, inputs={"name": "b1", "size": 2}), change(planned), clears="p1")
    kept = bucket(2, inputs={"name": "b2", "pw": Secret("kept")})
    w.record_pending(pending(kept, "p2"))
    s.use_cipher(FernetKey("new", lambda sealing: new_key, "use the new key"))
    w.record_resource(kept, change(kept), clears="p2")
    w.finish("succeeded", None)
    snapshot = backend.open(new_key).snapshot("dev")
    rows = dict(snapshot.resources)
    assert not snapshot.pending and rows[bucket(3).urn].inputs == bucket(3).inputs
    assert rows[planned.urn].inputs == {"name": "b1", "size": 2}
    assert rows[kept.urn].inputs == {"name": "b2", "pw": Secret("kept")}
