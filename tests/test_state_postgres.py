"""The PostgreSQL state store: the backend-agnostic checks of ``test_state_sqlite.py``
against a throwaway server (``pg_server.py``), plus what only a server can get wrong."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from stackwright.errors import LockHeldError, StateError
from stackwright.model.values import UNKNOWN, Secret
from stackwright.state.backends import open_state_store, state_url
from stackwright.state.postgres import PostgresStateStore, shown_url
from stackwright.state.records import SCHEMA_VERSION, Change, PendingOperation, ResourceState
from stackwright.state.sqlite import SqliteStateStore
from test_state_sqlite import bucket, change, lock, pending


@pytest.fixture
def store(pg_url: str) -> Iterator[PostgresStateStore]:
    s = PostgresStateStore(pg_url)
    s.create_stack("dev")
    yield s
    s.close()


def test_resources_outputs_and_secrets_round_trip_across_reopen(pg_url: str) -> None:
    r = ResourceState(
        urn="urn:sw:dev::app::db:Instance::main", type="db:Instance", id="db-1",
        inputs={"password": Secret("hunter2"), "nested": {"k": [1, Secret({"a": "b"})]},
                "size": 20, "ratio": 0.5, "on": True, "none": None},
        outputs={"endpoint": "db.local", "token": Secret("t0k")},
        parent="urn:sw:dev::app::pkg:Comp::c", deps=["urn:a", "urn:b"],
        protect=True, retain_on_delete=True, external=True,
    )
    with PostgresStateStore(pg_url) as s:
        s.create_stack("dev")
        w = s.begin("dev", "up", "me")
        w.record_resource(r, change(r))
        w.finish("succeeded", {"url": "https://x", "key": Secret("k3y")})
    with PostgresStateStore(pg_url) as s:
        snap = s.snapshot("dev")
        assert [(i.name, i.resource_count) for i in s.list_stacks()] == [("dev", 1)]
    assert snap.resources == {r.urn: r}
    assert snap.outputs == {"url": "https://x", "key": Secret("k3y")}
    assert isinstance(snap.resources[r.urn].inputs["password"], Secret)


def test_values_are_stored_exactly_as_sqlite_stores_them(pg_url: str, tmp_path: Path) -> None:
    r = bucket(1, inputs={"pw": Secret("s"), "n": 1.5})
    with PostgresStateStore(pg_url) as s:
        s.create_stack("dev")
        s.begin("dev", "up", "me").record_resource(r, None)
    with SqliteStateStore(tmp_path / "state.db") as s:
        s.create_stack("dev")
        s.begin("dev", "up", "me").record_resource(r, None)
    import sqlite3
    conn = sqlite3.connect(tmp_path / "state.db")
    lite = conn.execute("SELECT inputs, outputs, deps FROM resources").fetchone()
    conn.close()
    with psycopg.connect(pg_url) as pg:
        row = pg.execute("SELECT inputs, outputs, deps FROM stackwright.resources").fetchone()
    assert row == lite


def test_pending_inputs_keep_secret_and_unknown_markers(store: PostgresStateStore) -> None:
    op = PendingOperation(
        "t1", "urn:x", "T", "update", {"pw": Secret("s"), "arn": UNKNOWN},
        resource_id="x-1", parent="urn:p", deps=["urn:d"], started_at=99.5,
    )
    store.begin("dev", "up", "me").record_pending(op)
    got = store.snapshot("dev").pending
    assert got == [op]
    assert got[0].inputs["arn"] is UNKNOWN
    assert store.pending_count("dev") == 1


def test_snapshot_keeps_first_recorded_order(store: PostgresStateStore) -> None:
    w = store.begin("dev", "up", "me")
    for n in (3, 1, 2):
        w.record_resource(bucket(n), change(bucket(n)))
    w.record_resource(bucket(3, id="b3-2"), change(bucket(3), "update"))
    assert [r.id for r in store.snapshot("dev").resources.values()] == ["b3-2", "b1-1", "b2-1"]


def test_every_state_write_bumps_the_serial(store: PostgresStateStore) -> None:
    lineage = store.snapshot("dev").lineage
    w = store.begin("dev", "up", "me")
    serials = [store.snapshot("dev").serial]
    w.record_pending(pending(bucket(1), "t1"))
    serials.append(store.snapshot("dev").serial)
    w.record_resource(bucket(1), change(bucket(1)), clears="t1")
    serials.append(store.snapshot("dev").serial)
    w.rename_resource(bucket(1).urn, "urn:new")
    serials.append(store.snapshot("dev").serial)
    w.remove_resource("urn:new", Change("urn:new", "T", "delete"))
    serials.append(store.snapshot("dev").serial)
    assert serials == [0, 1, 2, 3, 4]
    store.acquire_lock("dev", lock())  # locks are not stack state
    assert store.snapshot("dev").serial == 4
    assert store.snapshot("dev").lineage == lineage


def test_a_batch_bumps_the_serial_once_and_commits_together(store: PostgresStateStore) -> None:
    w = store.begin("dev", "up", "me")
    with w.batch():
        for n in range(5):
            w.record_pending(pending(bucket(n), f"t{n}"))
            w.record_resource(bucket(n), change(bucket(n)), clears=f"t{n}")
    snap = store.snapshot("dev")
    assert snap.serial == 1 and len(snap.resources) == 5 and snap.pending == []
    with pytest.raises(RuntimeError), w.batch():
        w.record_resource(bucket(9), change(bucket(9)))
        raise RuntimeError("boom")
    assert bucket(9).urn not in store.snapshot("dev").resources
    assert store.snapshot("dev").serial == 1


def test_unchanged_outputs_do_not_bump_the_serial(store: PostgresStateStore) -> None:
    store.begin("dev", "up", "me").finish("succeeded", {"a": 1})
    assert store.snapshot("dev").serial == 1
    store.begin("dev", "up", "me").finish("succeeded", {"a": 1})
    store.begin("dev", "up", "me").finish("succeeded", None)
    assert store.snapshot("dev").serial == 1
    assert store.snapshot("dev").outputs == {"a": 1}


def test_failed_record_leaves_the_pending_operation(store: PostgresStateStore) -> None:
    """The row write and the pending clear are one transaction: both or neither."""
    w = store.begin("dev", "up", "me")
    w.record_pending(pending(bucket(1), "t1"))
    broken = bucket(1, id=None)  # NOT NULL violation inside the transaction
    with pytest.raises(StateError):
        w.record_resource(broken, change(broken), clears="t1")
    snap = store.snapshot("dev")
    assert [p.token for p in snap.pending] == ["t1"] and snap.resources == {}
    assert snap.serial == 1
    assert w.finish("succeeded", None) is None  # the failed write was not counted


def test_remove_resource_only_when_the_id_still_matches(store: PostgresStateStore) -> None:
    w = store.begin("dev", "up", "me")
    w.record_resource(bucket(1, id="new-id"), change(bucket(1), "replace"))
    w.record_pending(pending(bucket(1), "del-old", "delete"))
    w.remove_resource(bucket(1).urn, None, clears="del-old", resource_id="old-id")
    snap = store.snapshot("dev")
    assert snap.resources[bucket(1).urn].id == "new-id" and snap.pending == []
    w.remove_resource(bucket(1).urn, change(bucket(1), "delete"), resource_id="new-id")
    assert store.snapshot("dev").resources == {}


def test_rename_moves_the_record_and_references_to_it(store: PostgresStateStore) -> None:
    w = store.begin("dev", "up", "me")
    w.record_resource(bucket(1), change(bucket(1)))
    child = bucket(2, parent=bucket(1).urn, deps=[bucket(1).urn, "urn:other"])
    w.record_resource(child, change(child))
    w.rename_resource(bucket(1).urn, "urn:renamed")
    res = store.snapshot("dev").resources
    assert set(res) == {"urn:renamed", child.urn}
    assert res[child.urn].parent == "urn:renamed"
    assert res[child.urn].deps == ["urn:renamed", "urn:other"]
    with pytest.raises(StateError, match="already recorded"):
        w.rename_resource(child.urn, "urn:renamed")


def test_history_and_checkpoint_detail(store: PostgresStateStore) -> None:
    assert store.begin("dev", "up", "me").finish("succeeded", {}) is None
    w = store.begin("dev", "up", "alice")
    secret = bucket(1, outputs={"key": Secret("s3cr3t")})
    w.record_resource(secret, change(secret))
    w.record_resource(bucket(2), Change(bucket(2).urn, "T", "create", diffs=[{"path": "a"}]))
    w.add_change(Change("urn:x", "T", "create", error="quota exceeded"))
    first = w.finish("failed", {"out": Secret("o")}, "first try")
    w = store.begin("dev", "destroy", "bob")
    w.remove_resource(bucket(2).urn, change(bucket(2), "delete"))
    second = w.finish("succeeded", {})

    history = store.history("dev")
    assert history == [first, second] and [c.number for c in history] == [1, 2]
    assert (history[0].kind, history[0].who, history[0].message) == ("up", "alice", "first try")
    assert history[0].counts == {"create": 3}
    assert history[1].serial == store.snapshot("dev").serial
    one = store.checkpoint("dev", 1)
    assert one.checkpoint == history[0]
    assert one.resources == [secret, bucket(2)]
    assert one.outputs == {"out": Secret("o")}
    assert [(c.op, c.diffs) for c in one.changes][:2] == [("create", []), ("create", [{"path": "a"}])]
    assert store.checkpoint("dev", 2).resources == [secret]
    with pytest.raises(StateError, match="no checkpoint 3"):
        store.checkpoint("dev", 3)


def test_held_lock_names_its_holder(store: PostgresStateStore) -> None:
    mine = lock("alice", "up", token="tok-a")
    store.acquire_lock("dev", mine)
    store.acquire_lock("dev", mine)  # the holder may take it again
    with pytest.raises(LockHeldError) as err:
        store.acquire_lock("dev", lock("bob", "destroy"))
    for part in ("alice", "4242", "laptop", "'up'", "5s ago"):
        assert part in err.value.message
    assert err.value.hint and "stackwright unlock" in err.value.hint
    assert store.read_lock("dev") == mine
    store.release_lock("dev", "someone-else")
    assert store.read_lock("dev") == mine
    store.release_lock("dev", mine.token)
    assert store.read_lock("dev") is None
    store.acquire_lock("dev", lock("carol"))
    broken = store.break_lock("dev")
    assert broken is not None and broken.owner == "carol"


def test_lock_held_by_another_connection(pg_url: str) -> None:
    """Two runners, two connections: the second one is refused, naming the first."""
    with PostgresStateStore(pg_url) as a, PostgresStateStore(pg_url) as b:
        a.create_stack("dev")
        a.acquire_lock("dev", lock("ci-bot", "up"))
        with pytest.raises(LockHeldError, match="ci-bot"):
            b.acquire_lock("dev", lock("bob", "destroy"))
        assert b.read_lock("dev") == a.read_lock("dev")


def test_lock_race_on_the_insert_is_a_lock_held_error(pg_url: str) -> None:
    """A concurrent insert loses on the unique key: reported as the holder, not a crash."""
    with PostgresStateStore(pg_url) as s:
        s.create_stack("dev")
        with psycopg.connect(pg_url) as other:  # holds an uncommitted lock row
            other.execute(
                "INSERT INTO stackwright.locks VALUES ('dev', 'racer', 1, 'h', %s, 'up', 'x')",
                (time.time(),))
            import threading
            threading.Timer(0.3, other.commit).start()
            with pytest.raises(LockHeldError, match="racer"):
                s.acquire_lock("dev", lock("bob"))


def test_events_append_and_filter(store: PostgresStateStore) -> None:
    first = store.record_event("dev", "plan", "alice", {"plan_hash": "abc", "pw": Secret("x")})
    store.record_event("prod", "approve", "bob", {"comment": "ok"})
    store.record_event("dev", "apply", "carol", {"result": "succeeded"})
    assert [e.kind for e in store.events()] == ["plan", "approve", "apply"]
    assert [e.who for e in store.events("dev")] == ["alice", "carol"]
    assert [e.kind for e in store.events(kinds=("approve", "apply"))] == ["approve", "apply"]
    [got] = store.events("dev", ("plan",))
    assert got == first and got.data["pw"] == Secret("x")


def test_newer_schema_is_refused_and_untouched(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA stackwright")
        conn.execute("CREATE TABLE stackwright.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO stackwright.meta VALUES ('schema_version', %s)",
                     (str(SCHEMA_VERSION + 1),))
    with pytest.raises(StateError) as err:
        PostgresStateStore(pg_url)
    assert str(SCHEMA_VERSION + 1) in err.value.message
    assert err.value.hint and "upgrade stackwright" in err.value.hint
    with psycopg.connect(pg_url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'stackwright'")]
    assert tables == ["meta"]


def test_projects_sharing_a_database_are_kept_apart(pg_url: str, tmp_path: Path) -> None:
    web = open_state_store(pg_url, tmp_path / "x.db", project="web")
    api = open_state_store(pg_url, tmp_path / "x.db", project="api")
    try:
        web.create_stack("dev")
        api.create_stack("dev")
        web.begin("dev", "up", "me").record_resource(bucket(1), None)
        assert api.snapshot("dev").resources == {}
        assert list(web.snapshot("dev").resources) == [bucket(1).urn]
    finally:
        web.close()
        api.close()


def test_connection_error_names_the_url_without_the_password() -> None:
    url = "postgresql://deploy:hunter2@127.0.0.1:1/state?connect_timeout=2"
    with pytest.raises(StateError) as err:
        PostgresStateStore(url)
    assert "hunter2" not in err.value.message + (err.value.hint or "")
    assert "deploy:***@127.0.0.1:1/state" in err.value.message
    assert err.value.hint and "STACKWRIGHT_STATE_URL" in err.value.hint
    assert shown_url("postgresql://h/db?password=pw") == "postgresql://h/db?password=%2A%2A%2A"


def test_backend_choice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("STACKWRIGHT_STATE_URL", raising=False)
    assert state_url({}) is None
    assert state_url({"state": {"url": "sqlite:///s.db"}}) == "sqlite:///s.db"
    monkeypatch.setenv("STACKWRIGHT_STATE_URL", "postgresql://h/db")
    assert state_url({"state": {"url": "sqlite:///s.db"}}) == "postgresql://h/db"
    open_state_store("sqlite:///s.db", tmp_path / "default.db", root=tmp_path).close()
    assert (tmp_path / "s.db").is_file() and not (tmp_path / "default.db").exists()
    with pytest.raises(StateError, match="unsupported state URL"):
        open_state_store("mysql://h/db", tmp_path / "default.db")
    assert os.environ["STACKWRIGHT_STATE_URL"] == "postgresql://h/db"
