"""The state store as the engine and the CLI see it, whichever backend holds it.

Every test taking ``backend`` (whose ``open()`` opens the test's state, again and
again) or ``store`` runs three times: against the embedded SQLite store, against a
throwaway PostgreSQL server (``pg_server.py``; the ``postgres`` runs skip when its
binaries are missing) and against a fresh bucket of the local AWS emulator
(``aws_emulator.py``). What only one backend can get wrong lives in
``test_state_sqlite.py``, ``test_state_postgres.py`` and ``test_state_s3.py``.
"""

from __future__ import annotations

import copy
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.fernet import Fernet

from stackwright.errors import LockHeldError, ReadOnlyStateError, StateError
from stackwright.model.values import UNKNOWN, Secret
from stackwright.operations.keyring import FernetKey, SecretsError
from stackwright.state.backends import open_state_store, state_read_only, state_url
from stackwright.state.postgres import DEFAULT_SCHEMA, PostgresStateStore
from stackwright.state.records import Change, LockInfo, PendingOperation, ResourceState, StackRecord
from stackwright.state.s3 import S3StateStore
from stackwright.state.sqlite import SqliteStateStore
from stackwright.state.store import StateStore

SRC = str(Path(__file__).resolve().parents[1] / "src")
KEY = Fernet.generate_key()


def bucket(n: int, **overrides: Any) -> ResourceState:
    fields: dict[str, Any] = {
        "urn": f"urn:sw:dev::app::aws:s3/Bucket::b{n}", "type": "aws:s3/Bucket",
        "id": f"b{n}-1", "inputs": {"name": f"b{n}", "tags": {"env": "dev"}},
        "outputs": {"arn": f"arn:b{n}"},
    }
    return ResourceState(**{**fields, **overrides})


def change(r: ResourceState, op: str = "create") -> Change:
    return Change(r.urn, r.type, op)


def pending(r: ResourceState, token: str, op: str = "create") -> PendingOperation:
    return PendingOperation(token, r.urn, r.type, op, r.inputs, started_at=123.0)


def lock(owner: str = "alice", operation: str = "up", token: str = "") -> LockInfo:
    return LockInfo(owner, 4242, "laptop", time.time() - 5, operation, token)


class Backend:
    """Where one test's state lives: a SQLite file, a fresh PostgreSQL database, or a
    fresh bucket."""

    def __init__(self, url: str, sqlite_file: Path | None = None) -> None:
        self.url = url
        """The state URL naming it, as ``STACKWRIGHT_STATE_URL`` would (child processes)."""
        self.sqlite_file = sqlite_file
        self.opened: list[StateStore] = []

    @property
    def s3(self) -> bool:
        return self.url.startswith("s3://")

    def open_unkeyed(self, read_only: bool = False) -> StateStore:
        store: StateStore = (SqliteStateStore(self.sqlite_file, read_only) if self.sqlite_file
                             else S3StateStore(self.url, read_only) if self.s3
                             else PostgresStateStore(self.url, read_only=read_only))
        self.opened.append(store)
        return store

    def open(self, key: bytes = KEY, read_only: bool = False) -> Any:
        """A new store on the same state (closed when the test ends), sealing secrets
        with ``key``."""
        store = self.open_unkeyed(read_only)
        store.use_cipher(FernetKey("test", lambda sealing: key, "use the test key"))
        return store

    def objects(self) -> dict[str, bytes]:
        """Every object of the test's bucket (S3 only), by key."""
        s3 = self.open_unkeyed()
        assert isinstance(s3, S3StateStore)
        client, bucket = s3._client, s3.where.bucket
        keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                for o in page.get("Contents", ())]
        return {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}

    def dump(self) -> str:
        """Every value of every table, checkpoint snapshots decompressed: what someone
        who reads the database (or the bucket) sees."""
        if self.s3:
            return "\n".join(f"{k}: {zlib.decompress(v).decode() if k.endswith('.z') else v.decode()}"
                             for k, v in sorted(self.objects().items()))
        if self.sqlite_file:
            with closing(sqlite3.connect(self.sqlite_file)) as lite:
                tables = [r[0] for r in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
                rows = [row for t in tables for row in lite.execute(f"SELECT * FROM {t}")]
        else:
            with psycopg.connect(self.url) as pg:
                pg.execute(f"SET search_path TO {DEFAULT_SCHEMA}")
                tables = [r[0] for r in pg.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                    (DEFAULT_SCHEMA,))]
                rows = [row for t in tables for row in pg.execute(f"SELECT * FROM {t}")]
        return "\n".join(repr([zlib.decompress(bytes(v)).decode() if isinstance(v, (bytes, memoryview)) else v
                                for v in row]) for row in rows)

    def spoil_resource_outputs(self) -> None:
        """Make every stored resource's outputs undecodable, behind stackwright's back."""
        if not self.s3:
            self.execute("UPDATE resources SET outputs = '{not json'")
            return
        s3 = self.open_unkeyed()
        assert isinstance(s3, S3StateStore)
        for key, body in self.objects().items():
            if "/journal/" in key:
                s3._client.put_object(Bucket=s3.where.bucket, Key=key, Body=body.replace(b'{\\"arn', b'{not json'))
            if key.endswith("head.json"):  # a new ETag: stores re-read the stack
                s3._client.put_object(Bucket=s3.where.bucket, Key=key, Body=body + b" ")

    def execute(self, statement: str) -> None:
        """Run SQL on the store's tables behind stackwright's back."""
        if self.sqlite_file:
            with closing(sqlite3.connect(self.sqlite_file)) as lite, lite:
                lite.execute(statement)
            return
        with psycopg.connect(self.url) as pg:
            pg.execute(f"SET search_path TO {DEFAULT_SCHEMA}")
            pg.execute(statement.encode())


@pytest.fixture(params=["sqlite", "postgres", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / ".stackwright" / "state.db"
        b = Backend(f"sqlite:///{path}", path)
    elif request.param == "s3":
        b = Backend(request.getfixturevalue("s3_state_url"))
    else:
        b = Backend(request.getfixturevalue("pg_url"))  # skips without PostgreSQL
    yield b
    for s in b.opened:
        s.close()


@pytest.fixture
def store(backend: Backend) -> Any:
    s = backend.open()
    s.create_stack("dev")
    return s


CHILD_PREAMBLE = """
import os, signal, sys, time
from pathlib import Path
from stackwright.state.backends import open_state_store
from stackwright.state.records import LockInfo, PendingOperation, ResourceState
s = open_state_store(sys.argv[1], Path("unused"))
"""


def run_child(backend: Backend, code: str) -> subprocess.Popen[str]:
    """Another process running ``code`` with ``s``, its own store on the test's state
    (made here, with the stack ``dev``), opened from the state URL."""
    with backend.open() as s:
        s.create_stack("dev")
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD_PREAMBLE + textwrap.dedent(code), backend.url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


# --- stacks ---------------------------------------------------------------------------


def test_lists_stacks_by_name(backend: Backend) -> None:
    s = backend.open()
    assert s.list_stacks() == []
    s.create_stack("prod")
    s.create_stack("dev")
    infos = s.list_stacks()
    assert [i.name for i in infos] == ["dev", "prod"]
    assert all(i.resource_count == 0 and i.serial == 0 and i.last_update is None for i in infos)
    assert infos[0].lineage != infos[1].lineage


def test_create_existing_stack_is_an_error(store: Any) -> None:
    with pytest.raises(StateError, match="already exists"):
        store.create_stack("dev")
    assert store.stack_exists("dev") and not store.stack_exists("nope")


@pytest.mark.parametrize("call", [
    lambda s: s.snapshot("nope"),
    lambda s: s.begin("nope", "up", "me"),
    lambda s: s.history("nope"),
    lambda s: s.checkpoint("nope", 1),
    lambda s: s.acquire_lock("nope", lock()),
    lambda s: s.read_lock("nope"),
    lambda s: s.break_lock("nope"),
    lambda s: s.remove_stack("nope"),
])
def test_unknown_stack_is_named_with_a_hint(
    store: Any, call: Callable[[Any], object]
) -> None:
    with pytest.raises(StateError) as err:
        call(store)
    assert err.value.message == "no stack named 'nope'"
    assert err.value.hint == "stackwright stack ls / stack init NAME"


def test_writer_on_a_removed_stack_fails_cleanly(store: Any) -> None:
    w = store.begin("dev", "up", "me")
    store.remove_stack("dev")
    with pytest.raises(StateError, match="no stack named 'dev'"):
        w.record_resource(bucket(1), change(bucket(1)))
    assert not store.stack_exists("dev")


def test_remove_stack_refuses_while_resources_remain(store: Any) -> None:
    w = store.begin("dev", "up", "me")
    w.record_resource(bucket(1), change(bucket(1)))
    w.finish("succeeded", {"x": 1})
    with pytest.raises(StateError, match="still has 1 resources") as err:
        store.remove_stack("dev")
    assert err.value.hint and "destroy" in err.value.hint
    assert store.snapshot("dev").resources
    store.remove_stack("dev", force=True)
    assert not store.stack_exists("dev")
    store.create_stack("dev")  # a fresh stack of the same name starts clean
    snap = store.snapshot("dev")
    assert snap.resources == {} and snap.serial == 0 and store.history("dev") == []


# --- round trips ----------------------------------------------------------------------


def test_resources_outputs_and_secrets_round_trip_across_reopen(backend: Backend) -> None:
    r = ResourceState(
        urn="urn:sw:dev::app::db:Instance::main", type="db:Instance", id="db-1",
        inputs={"password": Secret("hunter2"), "nested": {"k": [1, Secret({"a": "b"})]},
                "size": 20, "ratio": 0.5, "on": True, "none": None},
        outputs={"endpoint": "db.local", "token": Secret("t0k")},
        parent="urn:sw:dev::app::pkg:Comp::c", deps=["urn:a", "urn:b"],
        protect=True, retain_on_delete=True, external=True,
    )
    with backend.open() as s:
        s.create_stack("dev")
        w = s.begin("dev", "up", "me")
        w.record_resource(r, change(r))
        w.finish("succeeded", {"url": "https://x", "key": Secret("k3y")})
    with backend.open() as s:
        snap = s.snapshot("dev")
        assert [(i.name, i.resource_count) for i in s.list_stacks()] == [("dev", 1)]
    assert snap.resources == {r.urn: r}
    assert snap.outputs == {"url": "https://x", "key": Secret("k3y")}
    assert isinstance(snap.resources[r.urn].inputs["password"], Secret)


def test_secrets_are_stored_encrypted_at_every_depth(backend: Backend) -> None:
    deep = {"a": [{"b": Secret("deep-in-a-list")}], "c": {"d": {"e": Secret("deep-in-a-dict")}}}
    r = bucket(1, inputs={"password": Secret("top-level-pw"), "env": deep},
               outputs={"token": Secret("output-token")})
    with backend.open() as s:
        s.create_stack("dev")
        w = s.begin("dev", "up", "me")
        w.record_pending(pending(r, "t1"))
        w.record_resource(r, change(r), clears="t1")
        w.record_pending(pending(r, "t2", "update"))
        w.finish("failed", {"out": [Secret("stack-output")]})
        s.record_event("dev", "plan", "me", {"note": Secret("in-an-event")})
        assert s.snapshot("dev").resources[r.urn].inputs["env"] == deep
        assert s.checkpoint("dev", 1).resources == [r]
    dump = backend.dump()
    assert "$encrypted" in dump
    for plain in ("top-level-pw", "deep-in-a-list", "deep-in-a-dict", "output-token", "stack-output",
                  "in-an-event"):
        assert plain not in dump


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)  # S3 reads stacks one at a time
def test_stored_outputs_reads_many_stacks_at_once_sealed_and_leaves_out_missing_ones(backend: Backend) -> None:
    """One read of 1003 names (three batches of at most 500): the stacks at each batch's
    edges are found, names of no stack are left out, serials as recorded, secrets sealed."""
    applied = {"s0000": 1, "s0499": 2, "s0500": 1, "s0999": 1, "s1000": 3}
    with backend.open() as s:
        for name in [*applied, "s0001", "s0501"]:
            s.create_stack(name)
        for name, writes in applied.items():
            for n in range(writes):
                s.begin(name, "up", "me").finish("succeeded", {"name": name, "n": n, "token": Secret(f"t-{name}")})

        found = s.stored_outputs([f"s{n:04}" for n in range(1001)] + ["missing", "s9999"])

    assert sorted(found) == sorted([*applied, "s0001", "s0501"])
    assert {name: outputs.serial for name, outputs in found.items()} == {**applied, "s0001": 0, "s0501": 0}
    cipher = FernetKey("test", lambda sealing: KEY, "use the test key")
    for name, writes in applied.items():
        assert f"t-{name}" not in found[name].text
        assert found[name].open(lambda: cipher) == {"name": name, "n": writes - 1, "token": Secret(f"t-{name}")}
    assert found["s0001"].open(lambda: cipher) == {}
    with backend.open() as s:
        assert s.stored_outputs([]) == {}


def test_a_wrong_key_or_no_key_reads_and_writes_no_secret(backend: Backend) -> None:
    with backend.open() as s:
        s.create_stack("dev")
        w = s.begin("dev", "up", "me")
        w.record_resource(bucket(1, inputs={"pw": Secret("pw")}), None)
        w.finish("succeeded", None)
    before = backend.dump()
    with backend.open(Fernet.generate_key()) as s, pytest.raises(SecretsError, match="cannot decrypt"):
        s.snapshot("dev")
    unkeyed = backend.open_unkeyed()
    with pytest.raises(StateError, match="no key was given"):
        unkeyed.snapshot("dev")
    with pytest.raises(StateError, match="opened without a key"):
        unkeyed.begin("dev", "up", "me").record_resource(bucket(2, inputs={"pw": Secret("x")}), None)
    assert backend.dump() == before


class Resealer:
    """Opens with the store's key, seals with ``new``; only tokens of ``kind`` when given."""

    def __init__(self, new: bytes, kind: str | None = None) -> None:
        self.old = FernetKey("test", lambda sealing: KEY, "use the test key")
        self.new = FernetKey("new", lambda sealing: new, "use the new key")
        self.kind = kind
        self.seen: list[str] = []

    def reseal(self, token: str) -> str:
        self.seen.append(token)
        if self.kind is not None and not token.startswith(self.kind):
            return token
        return self.new.seal(self.old.open(token))

    def seal(self, plain: bytes) -> str | None:
        return self.new.seal(plain) if self.kind is None else None


def test_reseal_moves_every_secret_of_each_stack_to_its_new_key(backend: Backend) -> None:
    new_key = Fernet.generate_key()
    r = bucket(1, inputs={"pw": Secret("in-a-resource")})
    with backend.open() as s:
        for stack in ("dev", "prod", "plain"):
            s.create_stack(stack)
        for stack in ("dev", "prod"):
            w = s.begin(stack, "up", "me")
            w.record_resource(r, change(r))
            w.record_pending(pending(bucket(2, inputs={"pw": Secret("in-a-pending-op")}), "t"))
            w.finish("failed", {"out": Secret("an-output")})
            s.record_event(stack, "plan", "me", {"note": Secret("in-an-event")})
        w = s.begin("plain", "up", "me")
        w.record_resource(bucket(3), change(bucket(3)))
        w.finish("succeeded", {"out": "plain"})
        before = backend.dump()
        kept = Resealer(new_key, kind="elsewhere:")
        assert s.reseal({"prod": kept, "plain": kept}) == [], "tokens of another kind stay as they are"
        assert kept.seen and backend.dump() == before
        assert s.reseal({"dev": Resealer(new_key), "plain": Resealer(new_key), "prod": Resealer(new_key)}) == [
            "dev", "prod"]
    with backend.open(new_key) as s:
        for stack in ("dev", "prod"):
            snap = s.snapshot(stack)
            assert snap.resources[r.urn].inputs["pw"] == Secret("in-a-resource")
            assert snap.pending[0].inputs["pw"] == Secret("in-a-pending-op")
            assert snap.outputs == {"out": Secret("an-output")}
            assert s.checkpoint(stack, 1).resources == [r]
            assert s.events(stack)[0].data["note"] == Secret("in-an-event")
    with backend.open() as s, pytest.raises(SecretsError, match="cannot decrypt"):
        s.snapshot("dev")
    dump = backend.dump()
    assert not any(p in dump for p in ("in-a-resource", "in-a-pending-op", "an-output", "in-an-event"))


def test_a_reseal_that_cannot_open_a_secret_changes_no_stack(backend: Backend) -> None:
    with backend.open() as s:
        for stack in ("a", "b"):
            s.create_stack(stack)
            w = s.begin(stack, "up", "me")
            w.record_resource(bucket(1, inputs={"pw": Secret(stack)}), None)
            w.finish("succeeded", {"out": Secret(stack)})
    with backend.open(Fernet.generate_key()) as s:
        s.create_stack("c")
        w = s.begin("c", "up", "me")
        w.finish("succeeded", {"out": Secret("sealed with another key")})
    before = backend.dump()
    with backend.open() as s, pytest.raises(SecretsError, match="cannot decrypt"):
        s.reseal({"a": Resealer(Fernet.generate_key()), "b": Resealer(Fernet.generate_key()),
                  "c": Resealer(Fernet.generate_key())})
    assert backend.dump() == before


def test_pending_inputs_keep_secret_and_unknown_markers(store: Any) -> None:
    op = PendingOperation(
        "t1", "urn:x", "T", "update", {"pw": Secret("s"), "arn": UNKNOWN},
        resource_id="x-1", parent="urn:p", deps=["urn:d"], started_at=99.5,
    )
    store.begin("dev", "up", "me").record_pending(op)
    got = store.snapshot("dev").pending
    assert got == [op]
    assert got[0].inputs["arn"] is UNKNOWN
    assert store.pending_count("dev") == 1


def test_snapshot_keeps_first_recorded_order(store: Any) -> None:
    w = store.begin("dev", "up", "me")
    for n in (3, 1, 2):
        w.record_resource(bucket(n), change(bucket(n)))
    w.record_resource(bucket(3, id="b3-2"), change(bucket(3), "update"))
    assert [r.id for r in store.snapshot("dev").resources.values()] == ["b3-2", "b1-1", "b2-1"]


def test_many_resources_round_trip(store: Any) -> None:
    """Scale sanity for the batched decode path (timings live in the benchmarks); one
    more resource than a checkpoint reads in one batch of rows."""
    w = store.begin("dev", "up", "me")
    made = [bucket(n, deps=[f"urn:{n - 1}"], protect=n % 2 == 0) for n in range(2001)]
    for r in made:
        w.record_resource(r, change(r))
    cp = w.finish("succeeded", {})
    assert cp is not None and cp.counts == {"create": 2001}
    snap = store.snapshot("dev")
    assert list(snap.resources.values()) == made
    assert store.checkpoint("dev", 1).resources == made


def test_undecodable_row_is_reported_as_corrupt(backend: Backend, store: Any) -> None:
    store.begin("dev", "up", "me").record_resource(bucket(1), None)
    backend.spoil_resource_outputs()
    with pytest.raises(StateError, match="is corrupt") as err:
        store.snapshot("dev")
    assert err.value.hint and "restore it from a backup" in err.value.hint


# --- serial, pending operations, atomicity --------------------------------------------


def test_every_state_write_bumps_the_serial(store: Any) -> None:
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


def test_a_batch_bumps_the_serial_once_and_commits_together(store: Any) -> None:
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


def test_unchanged_outputs_do_not_bump_the_serial(store: Any) -> None:
    store.begin("dev", "up", "me").finish("succeeded", {"a": 1})
    assert store.snapshot("dev").serial == 1
    store.begin("dev", "up", "me").finish("succeeded", {"a": 1})
    store.begin("dev", "up", "me").finish("succeeded", None)
    assert store.snapshot("dev").serial == 1
    assert store.snapshot("dev").outputs == {"a": 1}


def test_record_resource_clears_its_pending_operation(store: Any) -> None:
    w = store.begin("dev", "up", "me")
    w.record_pending(pending(bucket(1), "t1"))
    w.record_pending(pending(bucket(2), "t2"))
    assert [p.token for p in store.snapshot("dev").pending] == ["t1", "t2"]
    w.record_resource(bucket(1), change(bucket(1)), clears="t1")
    snap = store.snapshot("dev")
    assert [p.token for p in snap.pending] == ["t2"]
    assert list(snap.resources) == [bucket(1).urn]


def test_failed_record_leaves_the_pending_operation(store: Any) -> None:
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


def test_remove_resource_only_when_the_id_still_matches(store: Any) -> None:
    w = store.begin("dev", "up", "me")
    w.record_resource(bucket(1, id="new-id"), change(bucket(1), "replace"))
    w.record_pending(pending(bucket(1), "del-old", "delete"))
    w.remove_resource(bucket(1).urn, None, clears="del-old", resource_id="old-id")
    snap = store.snapshot("dev")
    assert snap.resources[bucket(1).urn].id == "new-id" and snap.pending == []
    w.remove_resource(bucket(1).urn, change(bucket(1), "delete"), resource_id="new-id")
    assert store.snapshot("dev").resources == {}


def test_clear_pending(store: Any) -> None:
    w = store.begin("dev", "up", "me")
    w.record_pending(pending(bucket(1), "t1"))
    w.clear_pending("t1", Change(bucket(1).urn, "T", "create", error="boom"))
    assert store.snapshot("dev").pending == []
    cp = w.finish("failed", None)
    assert cp is not None and cp.counts == {"failed": 1}


def test_rename_moves_the_record_and_references_to_it(store: Any) -> None:
    w = store.begin("dev", "up", "me")
    w.record_resource(bucket(1), change(bucket(1)))
    child = bucket(2, parent=bucket(1).urn, deps=[bucket(1).urn, "urn:other"])
    w.record_resource(child, change(child))
    w.rename_resource(bucket(1).urn, "urn:renamed")
    res = store.snapshot("dev").resources
    assert set(res) == {"urn:renamed", child.urn}
    assert res["urn:renamed"].id == "b1-1"
    assert res[child.urn].parent == "urn:renamed"
    assert res[child.urn].deps == ["urn:renamed", "urn:other"]
    with pytest.raises(StateError, match="already recorded"):
        w.rename_resource(child.urn, "urn:renamed")


def test_writes_survive_the_process_being_killed(backend: Backend) -> None:
    child = run_child(backend, """
        w = s.begin("dev", "up", "me")
        w.record_resource(ResourceState("urn:a", "T", "a-1", {}, {"v": 1}), None)
        w.record_pending(PendingOperation("t2", "urn:b", "T", "create", {}))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    with backend.open() as s:
        snap = s.snapshot("dev")
    assert snap.resources["urn:a"].outputs == {"v": 1}
    assert [p.token for p in snap.pending] == ["t2"]


def test_store_made_in_one_thread_is_usable_from_another(backend: Backend) -> None:
    made: list[Any] = []
    t = threading.Thread(target=lambda: made.append(backend.open()))
    t.start()
    t.join()
    made[0].create_stack("dev")
    assert made[0].stack_exists("dev")


# --- checkpoints ----------------------------------------------------------------------


def test_checkpoint_only_when_something_changed_or_failed(store: Any) -> None:
    assert store.begin("dev", "up", "me").finish("succeeded", {}) is None
    assert store.history("dev") == []
    failed = store.begin("dev", "up", "me").finish("interrupted", None, "ctrl-c")
    assert failed is not None and failed.number == 1 and failed.counts == {}
    assert [c.result for c in store.history("dev")] == ["interrupted"]


def test_history_numbers_and_counts(store: Any) -> None:
    w = store.begin("dev", "up", "alice")
    for n in (1, 2, 3):
        w.record_resource(bucket(n), change(bucket(n)))
    w.add_change(Change("urn:x", "T", "create", error="quota exceeded"))
    first = w.finish("failed", {"n": 3}, "first try")

    w = store.begin("dev", "destroy", "bob")
    w.remove_resource(bucket(1).urn, change(bucket(1), "delete"))
    w.record_resource(bucket(2, id="b2-2"), change(bucket(2), "replace"))
    w.record_resource(bucket(3), change(bucket(3), "refresh"))
    second = w.finish("succeeded", None)

    history = store.history("dev")
    assert history == [first, second]
    assert [c.number for c in history] == [1, 2]
    assert (history[0].kind, history[0].who, history[0].message) == ("up", "alice", "first try")
    assert history[0].counts == {"create": 3, "failed": 1}, "a failed change is counted apart"
    assert history[1].counts == {"delete": 1, "replace": 1, "refresh": 1}
    assert history[1].serial == store.snapshot("dev").serial
    assert history[0].finished_at >= history[0].started_at
    assert store.checkpoint("dev", 1).outputs == {"n": 3}  # a failed run keeps its outputs
    other = store.begin("dev", "up", "me")
    assert other.finish("succeeded", None) is None


def test_checkpoint_detail_is_the_state_at_that_point(store: Any) -> None:
    w = store.begin("dev", "up", "me")
    secret = bucket(1, outputs={"key": Secret("s3cr3t")})
    w.record_resource(secret, change(secret))
    w.record_resource(bucket(2), Change(bucket(2).urn, "T", "create", diffs=[{"path": "a"}]))
    w.finish("succeeded", {"out": Secret("o")})
    w = store.begin("dev", "destroy", "me")
    w.remove_resource(bucket(2).urn, change(bucket(2), "delete"))
    w.finish("succeeded", {})

    one = store.checkpoint("dev", 1)
    assert one.checkpoint == store.history("dev")[0]
    assert one.resources == [secret, bucket(2)]
    assert one.outputs == {"out": Secret("o")}
    assert [(c.op, c.diffs) for c in one.changes] == [("create", []), ("create", [{"path": "a"}])]
    two = store.checkpoint("dev", 2)
    assert two.resources == [secret] and two.outputs == {}
    with pytest.raises(StateError, match="no checkpoint 3"):
        store.checkpoint("dev", 3)


def test_a_finished_writer_refuses_more_writes(store: Any) -> None:
    w = store.begin("dev", "up", "me")
    w.finish("succeeded", None)
    with pytest.raises(StateError, match="already finished"):
        w.record_resource(bucket(1), None)


# --- events ---------------------------------------------------------------------------


def test_events_append_and_filter(store: Any) -> None:
    first = store.record_event("dev", "plan", "alice", {"plan_hash": "abc", "pw": Secret("x")})
    store.record_event("prod", "approve", "bob", {"comment": "ok"})
    store.record_event("dev", "apply", "carol", {"result": "succeeded"})
    assert [e.kind for e in store.events()] == ["plan", "approve", "apply"]
    assert [e.who for e in store.events("dev")] == ["alice", "carol"]
    assert [e.kind for e in store.events(kinds=("approve", "apply"))] == ["approve", "apply"]
    [got] = store.events("dev", ("plan",))
    assert got == first and got.data["pw"] == Secret("x")


def test_events_of_several_stacks_in_one_read(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A waiter confirms a burst of notices with one read: the events of the stacks
    named, oldest first, none of the others'; no stack named, no event. (Two names per
    statement here, so that the SQL stores split the list and merge the rows.)"""
    monkeypatch.setattr("stackwright.state.sql_store._IN_LIST", 2)
    for stack, kind in (("d", "run"), ("a", "run"), ("b", "run"), ("c", "run"), ("a", "up"), ("b", "run")):
        store.record_event(stack, kind, "ci", {"on": stack})
    got = store.events(kinds=("run",), stacks=["d", "b", "a"])
    assert [(e.stack, e.kind) for e in got] == [("d", "run"), ("a", "run"), ("b", "run"), ("b", "run")]
    got = store.events(kinds=("run",), stacks={"b", "a"})
    assert [(e.stack, e.kind) for e in got] == [("a", "run"), ("b", "run"), ("b", "run")]
    assert [e.stack for e in store.events(stacks=["a"])] == ["a", "a"]
    assert store.events(kinds=("run",), stacks=()) == []


# --- moving stacks between stores --------------------------------------------------------


def exported(tmp_path: Path) -> list[StackRecord]:
    """Stacks ``a`` and ``b`` of another store whose audit log goes a, b, a."""
    with SqliteStateStore(tmp_path / "source.db") as source:
        for stack in ("a", "b"):
            source.create_stack(stack)
        writer = source.begin("a", "up", "alice")
        writer.record_resource(bucket(1), change(bucket(1)))
        writer.finish("succeeded", {})
        for stack, kind in (("a", "plan"), ("b", "plan"), ("a", "apply")):
            source.record_event(stack, kind, "alice", {"on": stack})
        return [source.export_stack("a"), source.export_stack("b")]


def test_an_import_of_several_stacks_keeps_the_order_of_the_audit_log(backend: Backend, tmp_path: Path) -> None:
    target = backend.open_unkeyed()
    target.import_stacks(exported(tmp_path))
    assert [(e.stack, e.kind) for e in target.events()] == [("a", "plan"), ("b", "plan"), ("a", "apply")]
    assert [s.name for s in target.list_stacks()] == ["a", "b"]


def test_an_import_over_existing_stacks_names_them_all_and_writes_nothing(backend: Backend, tmp_path: Path) -> None:
    records = exported(tmp_path)
    target = backend.open_unkeyed()
    target.create_stack("b")
    target.record_event("b", "plan", "carol", {})
    with pytest.raises(StateError) as info:
        target.import_stacks([*records, StackRecord("c", "l", 0, 1.0, None, "{}", [], [], [], [])])
    assert info.value.message.startswith("stack 'b' already exists in ")
    assert info.value.message.endswith("; nothing was copied")
    target.create_stack("a")
    with pytest.raises(StateError, match="^stacks 'a', 'b' already exist in "):
        target.import_stacks(records)
    assert [s.name for s in target.list_stacks()] == ["a", "b"]
    assert [(e.stack, e.who) for e in target.events()] == [("b", "carol")]


def test_an_import_that_fails_half_way_leaves_the_store_as_it_was(backend: Backend, tmp_path: Path) -> None:
    """The second stack's resource row is broken: the first stack, the checkpoints and
    the events written before it are gone again, and the import can be made again."""
    records = exported(tmp_path)
    broken = copy.copy(records[1])
    broken.resources = [[]]
    target = backend.open_unkeyed()
    with pytest.raises((StateError, IndexError)):  # the SQL stores wrap their driver's error
        target.import_stacks([records[0], broken])
    assert target.list_stacks() == [] and target.events() == []
    if backend.s3:
        assert [k for k in backend.objects() if "/stacks/" in k or "/events/" in k] == []
    target.import_stacks(records)
    assert [(e.stack, e.kind) for e in target.events()] == [("a", "plan"), ("b", "plan"), ("a", "apply")]
    assert target.export_stack("a") == records[0]


# --- locks ----------------------------------------------------------------------------


def test_held_lock_names_its_holder(store: Any) -> None:
    mine = lock("alice", "up", token="tok-a")
    store.acquire_lock("dev", mine)
    store.acquire_lock("dev", mine)  # the holder may take it again
    with pytest.raises(LockHeldError) as err:
        store.acquire_lock("dev", lock("bob", "destroy"))
    text = err.value.message
    for part in ("alice", "4242", "laptop", "'up'", "5s ago"):
        assert part in text
    assert err.value.hint and "stackwright unlock" in err.value.hint
    assert "confirming the holder is gone" in err.value.hint
    assert store.read_lock("dev") == mine


def test_release_needs_the_token_and_break_returns_the_holder(store: Any) -> None:
    info = lock()
    store.acquire_lock("dev", info)
    assert info.token  # filled in so the caller can release
    store.release_lock("dev", "someone-else")
    assert store.read_lock("dev") == info
    store.release_lock("dev", info.token)
    assert store.read_lock("dev") is None
    store.acquire_lock("dev", lock("carol"))
    broken = store.break_lock("dev")
    assert broken is not None and broken.owner == "carol"
    assert store.break_lock("dev") is None
    store.acquire_lock("dev", lock("dave"))


def test_lock_held_by_another_process(backend: Backend) -> None:
    child = run_child(backend, """
        info = LockInfo("ci-bot", os.getpid(), "runner-7", time.time() - 90, "up")
        s.acquire_lock("dev", info)
        print("locked", info.token, flush=True)
        time.sleep(120)
    """)
    try:
        assert child.stdout is not None
        said, _, token = child.stdout.readline().strip().partition(" ")
        assert said == "locked", child.stderr
        with backend.open() as s:
            with pytest.raises(LockHeldError) as err:
                s.acquire_lock("dev", lock("me"))
            for part in ("ci-bot", f"pid {child.pid}", "runner-7", "'up'", "1m"):
                assert part in err.value.message
            held = s.read_lock("dev")
            assert held is not None
            assert (held.owner, held.pid, held.host, held.operation, held.token) == (
                "ci-bot", child.pid, "runner-7", "up", token)
            child.kill()
            child.communicate(timeout=60)
            assert s.read_lock("dev") == held  # a killed holder leaves its lock behind
            assert s.break_lock("dev") == held
            s.acquire_lock("dev", lock("me"))
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate(timeout=60)


# --- choosing the backend -------------------------------------------------------------


def test_backend_choice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("STACKWRIGHT_STATE_URL", raising=False)
    assert state_url({}) is None
    assert state_url({"state": {"url": "sqlite:///s.db"}}) == "sqlite:///s.db"
    monkeypatch.setenv("STACKWRIGHT_STATE_URL", "postgresql://h/db")
    assert state_url({"state": {"url": "sqlite:///s.db"}}) == "postgresql://h/db"
    store = open_state_store("sqlite:///s.db", tmp_path / "default.db", root=tmp_path)
    store.create_stack("dev")
    store.close()
    assert (tmp_path / "s.db").is_file() and not (tmp_path / "default.db").exists()
    with pytest.raises(StateError, match="unsupported state URL"):
        open_state_store("mysql://h/db", tmp_path / "default.db")
    assert os.environ["STACKWRIGHT_STATE_URL"] == "postgresql://h/db"


# --- read-only mode -------------------------------------------------------------------


def test_a_read_only_store_reads_and_refuses_every_write(backend: Backend) -> None:
    with backend.open() as s:
        s.create_stack("dev")
        w = s.begin("dev", "up", "me")
        w.record_resource(bucket(1), change(bucket(1)))
        w.finish("succeeded", {"x": 1})
        s.record_event("dev", "plan", "me", {"plan_hash": "abc"})
    before = backend.dump()
    ro = backend.open(read_only=True)
    assert list(ro.snapshot("dev").resources) == [bucket(1).urn]
    assert [c.number for c in ro.history("dev")] == [1]
    assert ro.checkpoint("dev", 1).resources == [bucket(1)]
    assert [e.kind for e in ro.events("dev")] == ["plan"]
    assert ro.read_lock("dev") is None and ro.pending_count("dev") == 0
    writer = ro.begin("dev", "up", "me")
    refused: list[Callable[[], object]] = [
        lambda: ro.acquire_lock("dev", lock()),
        lambda: ro.break_lock("dev"),
        lambda: ro.create_stack("prod"),
        lambda: ro.remove_stack("dev", force=True),
        lambda: ro.record_event("dev", "approve", "me", {}),
        lambda: ro.reseal({"dev": Resealer(KEY)}),
        lambda: writer.record_resource(bucket(2), change(bucket(2))),
        lambda: writer.record_pending(pending(bucket(2), "t")),
        lambda: writer.finish("failed", None),
    ]
    for call in refused:
        with pytest.raises(ReadOnlyStateError) as err:
            call()
        assert "read-only" in err.value.message and "STACKWRIGHT_STATE_READ_ONLY" in err.value.message
    assert backend.dump() == before


def test_the_read_only_switch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("STACKWRIGHT_STATE_READ_ONLY", raising=False)
    assert not state_read_only({}) and state_read_only({"state": {"read_only": True}})
    assert state_url({"state": {"read_only": True}}) is None
    with pytest.raises(StateError, match="true or false"):
        state_read_only({"state": {"read_only": "yes"}})
    monkeypatch.setenv("STACKWRIGHT_STATE_READ_ONLY", "1")
    assert state_read_only({"state": {"read_only": False}})
    store = open_state_store(None, tmp_path / "state.db")  # the variable alone is enough
    with pytest.raises(ReadOnlyStateError):
        store.create_stack("dev")
    store.close()
    assert not (tmp_path / "state.db").exists()
    monkeypatch.setenv("STACKWRIGHT_STATE_READ_ONLY", "maybe")
    with pytest.raises(StateError, match="neither true nor false"):
        state_read_only({})
