"""A stack exported from one SQLite store and imported into another is the same stack:
records, pending operations, outputs, history with its snapshots, audit log, lineage and
serial (what `state migrate` relies on), in process."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from stackwright.errors import ReadOnlyStateError, StateError
from stackwright.state.records import Change, PendingOperation, ResourceState
from stackwright.state.sqlite import SqliteStateStore


def filled(path: Path) -> SqliteStateStore:
    store = SqliteStateStore(path)
    store.create_stack("dev")
    store.create_stack("other")
    writer = store.begin("dev", "up", "alice")
    for name in ("b", "a"):
        writer.record_resource(ResourceState(
            urn=f"u::{name}", type="fake:Thing", id=f"{name}-1", inputs={"n": name}, outputs={"arn": name},
            parent="u::p" if name == "a" else None, deps=["u::b"] if name == "a" else [], protect=name == "b",
            retain_on_delete=name == "a", external=name == "b", options={"aliases": ["u::old"]}),
            Change(f"u::{name}", "fake:Thing", "create"))
    writer.finish("succeeded", {"url": "https://x"})
    writer = store.begin("dev", "destroy", "bob")
    writer.record_pending(PendingOperation("t1", "u::a", "fake:Thing", "delete", {"n": "a"}, "a-1", "u::p",
                                           ["u::b"], 5.0))
    writer.finish("failed", None, "interrupted")
    store.record_event("dev", "plan", "alice", {"hash": "h1"})
    store.record_event("other", "plan", "carol", {"hash": "h2"})
    store.record_event("dev", "apply", "bob", {"result": "ok"})
    return store


def test_an_imported_stack_is_the_exported_one(tmp_path: Path) -> None:
    source = filled(tmp_path / "a.db")
    record = source.export_stack("dev")
    target = SqliteStateStore(tmp_path / "b.db")

    target.import_stack(record)

    assert target.export_stack("dev") == record
    was, now = source.snapshot("dev"), target.snapshot("dev")
    assert (now.lineage, now.serial, now.outputs) == (was.lineage, was.serial, {"url": "https://x"})
    assert list(now.resources) == ["u::b", "u::a"] and now.resources == was.resources
    assert now.pending == was.pending and now.pending[0].resource_id == "a-1"
    assert target.history("dev") == source.history("dev")
    assert [(c.kind, c.who, c.result, c.message) for c in target.history("dev")] == [
        ("up", "alice", "succeeded", ""), ("destroy", "bob", "failed", "interrupted")]
    first = target.checkpoint("dev", 1)
    assert first == source.checkpoint("dev", 1) and sorted(r.urn for r in first.resources) == ["u::a", "u::b"]
    assert [(e.kind, e.who, e.data) for e in target.events("dev")] == [
        ("plan", "alice", {"hash": "h1"}), ("apply", "bob", {"result": "ok"})]
    assert [s.name for s in target.list_stacks()] == ["dev"]


def test_an_export_holds_only_its_stack(tmp_path: Path) -> None:
    record = filled(tmp_path / "a.db").export_stack("other")
    assert (record.name, record.serial, record.resources, record.pending, record.checkpoints) == (
        "other", 0, [], [], [])
    assert [e[:2] for e in record.events] == [["plan", "carol"]]


def test_importing_over_an_existing_stack_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    source = filled(tmp_path / "a.db")
    record = source.export_stack("dev")
    target = SqliteStateStore(tmp_path / "b.db")
    target.create_stack("dev")
    with pytest.raises(StateError) as info:
        target.import_stack(record)
    assert info.value.message.startswith("stack 'dev' already exists in ")
    assert info.value.hint == "remove it there first, or migrate to another store"
    assert target.snapshot("dev").resources == {} and target.history("dev") == []


def test_exporting_a_missing_stack_is_an_error(tmp_path: Path) -> None:
    store = filled(tmp_path / "a.db")
    with pytest.raises(StateError, match="no stack named 'gone'"):
        store.export_stack("gone")


def test_an_imported_stack_keeps_when_it_was_last_changed(tmp_path: Path) -> None:
    source = filled(tmp_path / "a.db")
    target = SqliteStateStore(tmp_path / "b.db")

    target.import_stack(source.export_stack("dev"))

    [was] = [s for s in source.list_stacks() if s.name == "dev"]
    [now] = target.list_stacks()
    assert now == was and now.last_update is not None


def test_a_checkpoint_that_does_not_decode_is_named_and_nothing_is_exported(tmp_path: Path) -> None:
    source = filled(tmp_path / "a.db")
    with closing(sqlite3.connect(tmp_path / "a.db")) as db, db:
        db.execute("UPDATE checkpoints SET snapshot = x'00ff' WHERE number = 2")

    with pytest.raises(StateError) as info:
        source.export_stack("dev")

    assert info.value.message == f"state file {tmp_path / 'a.db'} is corrupt: checkpoint 2 does not decode"
    assert info.value.hint == "restore it from a backup; stackwright will not modify or repair it"


def test_a_read_only_store_refuses_an_import(tmp_path: Path) -> None:
    record = filled(tmp_path / "a.db").export_stack("dev")
    SqliteStateStore(tmp_path / "b.db").create_stack("other")
    target = SqliteStateStore(tmp_path / "b.db", read_only=True)

    with pytest.raises(ReadOnlyStateError) as info:
        target.import_stack(record)

    assert info.value.message.startswith("cannot create stack 'dev': the state store is open read-only")
    assert [s.name for s in SqliteStateStore(tmp_path / "b.db").list_stacks()] == ["other"]
