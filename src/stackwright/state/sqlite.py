"""The embedded SQLite state store: the default backend, one file per project.

WAL with ``synchronous=NORMAL`` makes a committed write survive the process being
killed (the store's durability contract) without an fsync per commit. Every
``StackWriter`` call is one ``BEGIN IMMEDIATE`` transaction, so a crash leaves the
state at a call boundary, never half-way through one.

The stack ``serial`` identifies the content of a stack's state (resources, pending
operations, outputs): every write of that content bumps it. Lock rows and
checkpoint rows are bookkeeping about the state, so they leave it alone.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from stackwright.errors import StateError
from stackwright.state.codec import (
    Corrupt as _Corrupt, change_json as _change_json, checkpoint_detail as _checkpoint_detail,
    checkpoint_row as _checkpoint_row, compress_snapshot as _compress_snapshot,
    dumps as _dumps, gc_paused as _gc_paused, loads as _loads, lock_held as _lock_held,
    no_stack as _no_stack, pending_row as _pending_row, resource_params as _resource_params,
    resource_rows as _resource_rows,
)
from stackwright.state.records import (
    SCHEMA_VERSION, Change, Checkpoint, CheckpointDetail, Event, LockInfo, PendingOperation,
    ResourceState, Snapshot, StackInfo,
)

if TYPE_CHECKING:
    from stackwright.state.store import StackWriter, StateStore

_SQLITE_HEADER: Final = b"SQLite format 3\x00"
_BUSY_TIMEOUT_MS: Final = 5000
_CACHE_KIB: Final = 65536
"""Page cache ceiling: big enough that snapshot() of ~10k resources stays in memory."""

_SCHEMA_V1: Final = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE stacks (
        name TEXT PRIMARY KEY, lineage TEXT NOT NULL, serial INTEGER NOT NULL,
        created_at REAL NOT NULL, updated_at REAL)""",
    "CREATE TABLE outputs (stack TEXT PRIMARY KEY, outputs TEXT NOT NULL)",
    """CREATE TABLE resources (
        stack TEXT NOT NULL, urn TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL,
        inputs TEXT NOT NULL, outputs TEXT NOT NULL, parent TEXT, deps TEXT NOT NULL,
        protect INTEGER NOT NULL, retain_on_delete INTEGER NOT NULL,
        external INTEGER NOT NULL, UNIQUE (stack, urn))""",
    """CREATE TABLE pending (
        stack TEXT NOT NULL, token TEXT NOT NULL, urn TEXT NOT NULL, type TEXT NOT NULL,
        op TEXT NOT NULL, inputs TEXT NOT NULL, resource_id TEXT, parent TEXT,
        deps TEXT NOT NULL, started_at REAL NOT NULL, PRIMARY KEY (stack, token))""",
    """CREATE TABLE locks (
        stack TEXT PRIMARY KEY, owner TEXT NOT NULL, pid INTEGER NOT NULL,
        host TEXT NOT NULL, acquired_at REAL NOT NULL, operation TEXT NOT NULL,
        token TEXT NOT NULL)""",
    """CREATE TABLE checkpoints (
        stack TEXT NOT NULL, number INTEGER NOT NULL, kind TEXT NOT NULL,
        who TEXT NOT NULL, started_at REAL NOT NULL, finished_at REAL NOT NULL,
        result TEXT NOT NULL, counts TEXT NOT NULL, message TEXT NOT NULL,
        serial INTEGER NOT NULL, changes TEXT NOT NULL, snapshot BLOB NOT NULL,
        PRIMARY KEY (stack, number))""",
)
"""Big columns (changes, snapshot) come last so history() never reads their pages."""

_SCHEMA_V2: Final = (
    """CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, stack TEXT NOT NULL, kind TEXT NOT NULL,
        who TEXT NOT NULL, at REAL NOT NULL, data TEXT NOT NULL)""",
    "CREATE INDEX events_by_stack ON events (stack, kind)",
)
_WAL_CHECKPOINT_PAGES: Final = 16384
"""Fold the WAL into the database every ~64 MiB instead of every 4 MiB: a checkpoint
fsyncs, and during a large apply it would otherwise land on the commit path every few
hundred steps. The WAL is folded in at the latest when the last connection closes."""

_MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {0: _SCHEMA_V1, 1: _SCHEMA_V2}
"""Statements that take the schema from version ``n`` to ``n + 1`` (0 = empty file)."""

_RESOURCE_COLUMNS: Final = (
    "urn, type, id, inputs, outputs, parent, deps, protect, retain_on_delete, external"
)
_UPSERT_RESOURCE: Final = f"""
    INSERT INTO resources (stack, {_RESOURCE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)
    ON CONFLICT (stack, urn) DO UPDATE SET type = excluded.type, id = excluded.id,
        inputs = excluded.inputs, outputs = excluded.outputs, parent = excluded.parent,
        deps = excluded.deps, protect = excluded.protect,
        retain_on_delete = excluded.retain_on_delete, external = excluded.external"""
_SELECT_RESOURCES: Final = (
    f"SELECT {_RESOURCE_COLUMNS} FROM resources WHERE stack = ? ORDER BY rowid"
)
_PENDING_COLUMNS: Final = (
    "token, urn, type, op, inputs, resource_id, parent, deps, started_at"
)
_CHECKPOINT_COLUMNS: Final = (
    "number, kind, who, started_at, finished_at, result, counts, message, serial"
)
_LOCK_COLUMNS: Final = "owner, pid, host, acquired_at, operation, token"
_BUMP: Final = "UPDATE stacks SET serial = serial + 1, updated_at = ? WHERE name = ?"
_DELETE_PENDING: Final = "DELETE FROM pending WHERE stack = ? AND token = ?"


class _Db:
    """The connection plus the transaction and error plumbing shared by store and writers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.depth = 0
        self.batched: set[str] | None = None
        _check_header(path)
        try:
            self.conn = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False,
                timeout=_BUSY_TIMEOUT_MS / 1000,
            )
        except sqlite3.Error as exc:
            raise StateError(f"cannot open state file {path}: {exc}") from exc
        try:
            with self.guard():
                self._open()
        except BaseException:
            self.conn.close()
            raise

    def _open(self) -> None:
        """Check the version read-only first, so a newer or foreign file is never touched."""
        self.conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        with self.read():
            self._schema_version()
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute(f"PRAGMA wal_autocheckpoint = {_WAL_CHECKPOINT_PAGES}")
        self.conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
        with self.write():
            found = self._schema_version()
            for version in range(found, SCHEMA_VERSION):
                for statement in _MIGRATIONS[version]:
                    self.conn.execute(statement)
            if found < SCHEMA_VERSION:
                self.conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )

    def _schema_version(self) -> int:
        """0 for an empty file; raises for a newer or foreign one."""
        tables = {r[0] for r in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            if tables:
                raise StateError(
                    f"{self.path} is a SQLite database but not a stackwright state file",
                    hint="point stackwright at its own state file; this one was left unchanged",
                )
            return 0
        row = self.conn.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        try:
            version = int(row[0])
        except (TypeError, ValueError):
            raise _Corrupt("its schema version is missing or unreadable") from None
        if version > SCHEMA_VERSION:
            raise StateError(
                f"state file {self.path} has schema version {version}, newer than the "
                f"version {SCHEMA_VERSION} this stackwright understands",
                hint="upgrade stackwright to use it; the file was left unchanged",
            )
        return version

    def corrupt(self, detail: str) -> StateError:
        return StateError(
            f"state file {self.path} is corrupt: {detail}",
            hint="restore it from a backup; stackwright will not modify or repair it",
        )

    def _sqlite_error(self, exc: sqlite3.Error) -> StateError:
        text = str(exc)
        if "not a database" in text or "malformed" in text:
            return self.corrupt(text)
        if "locked" in text or "busy" in text:
            return StateError(
                f"state file {self.path} stayed busy for {_BUSY_TIMEOUT_MS // 1000}s",
                hint="another stackwright process is writing it; try again",
            )
        return StateError(f"state file {self.path}: {text}")

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Turn SQLite and decode failures into StateError naming the file."""
        try:
            yield
        except _Corrupt as exc:
            raise self.corrupt(str(exc)) from None
        except sqlite3.Error as exc:
            raise self._sqlite_error(exc) from exc

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction, so multi-table reads see a single commit."""
        with self.guard():
            self.conn.execute("BEGIN")
            try:
                yield self.conn
            finally:
                self._end("COMMIT")

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One committed write; IMMEDIATE takes the write lock up front (no upgrade deadlock).

        Nested inside another ``write()`` (a writer's ``batch()``), it joins the outer
        transaction, which commits once for all of them.
        """
        if self.depth:
            yield self.conn
            return
        with self.guard():
            self.conn.execute("BEGIN IMMEDIATE")
            self.depth += 1
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException:
                self._end("ROLLBACK")
                raise
            finally:
                self.depth -= 1

    def _end(self, verb: str) -> None:
        """Close a transaction without masking the error that got us here."""
        with suppress(sqlite3.Error):
            if self.conn.in_transaction:
                self.conn.execute(verb)

    def bump(self, stack: str) -> None:
        """Advance the stack's serial; also the existence check of every state write.

        Inside a batch the serial moves once, when the batch ends: readers only ever see
        committed transactions, so one step per transaction is all they can tell apart.
        """
        if self.batched is not None:
            self.batched.add(stack)
            return
        if self.conn.execute(_BUMP, (time.time(), stack)).rowcount != 1:
            raise _no_stack(stack)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for every write inside, with one serial bump per stack."""
        with self.write():
            if self.batched is not None:
                yield
                return
            self.batched = set()
            try:
                yield
                stacks, self.batched = self.batched, None
                for stack in stacks:
                    self.bump(stack)
            finally:
                self.batched = None

    def serial(self, stack: str) -> int:
        row = self.conn.execute("SELECT serial FROM stacks WHERE name = ?", (stack,)).fetchone()
        if row is None:
            raise _no_stack(stack)
        return int(row[0])

    def require(self, stack: str) -> None:
        self.serial(stack)


def _check_header(path: Path) -> None:
    """Refuse a non-SQLite file before SQLite gets a chance to write anything to it."""
    try:
        with path.open("rb") as f:
            head = f.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StateError(f"cannot read state file {path}: {exc}") from exc
    if head and head != _SQLITE_HEADER:
        raise StateError(
            f"state file {path} is corrupt: it is not a SQLite database",
            hint="restore it from a backup; stackwright will not modify or repair it",
        )


class SqliteStateStore:
    """``StateStore`` over one SQLite file (default ``<project>/.stackwright/state.db``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create {self.path.parent}: {exc}") from exc
        self._db = _Db(self.path)
        self._closed = False

    def __enter__(self) -> SqliteStateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def list_stacks(self) -> list[StackInfo]:
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT name, (SELECT COUNT(*) FROM resources r WHERE r.stack = s.name),"
                " updated_at, lineage, serial FROM stacks s ORDER BY name").fetchall()
        return [StackInfo(*row) for row in rows]

    def create_stack(self, stack: str) -> None:
        with self._db.write() as conn:
            if conn.execute("SELECT 1 FROM stacks WHERE name = ?", (stack,)).fetchone():
                raise StateError(
                    f"stack {stack!r} already exists", hint="stackwright stack ls")
            conn.execute(
                "INSERT INTO stacks VALUES (?, ?, 0, ?, NULL)",
                (stack, str(uuid.uuid4()), time.time()))
            conn.execute("INSERT INTO outputs VALUES (?, '{}')", (stack,))

    def stack_exists(self, stack: str) -> bool:
        with self._db.guard():
            row = self._db.conn.execute(
                "SELECT 1 FROM stacks WHERE name = ?", (stack,)).fetchone()
        return row is not None

    def remove_stack(self, stack: str, force: bool = False) -> None:
        with self._db.write() as conn:
            self._db.require(stack)
            (count,) = conn.execute(
                "SELECT COUNT(*) FROM resources WHERE stack = ?", (stack,)).fetchone()
            if count and not force:
                raise StateError(
                    f"stack {stack!r} still has {count} resources",
                    hint="run `stackwright destroy` first, or force the removal to forget "
                    "them (the cloud resources are left running)",
                )
            for table in ("resources", "pending", "locks", "checkpoints", "outputs"):
                conn.execute(f"DELETE FROM {table} WHERE stack = ?", (stack,))
            conn.execute("DELETE FROM stacks WHERE name = ?", (stack,))

    def snapshot(self, stack: str) -> Snapshot:
        with _gc_paused():
            with self._db.read() as conn:
                row = conn.execute(
                    "SELECT lineage, serial, outputs FROM stacks JOIN outputs ON stack = name"
                    " WHERE name = ?", (stack,)).fetchone()
                if row is None:
                    raise _no_stack(stack)
                resources = conn.execute(_SELECT_RESOURCES, (stack,)).fetchall()
                pending = conn.execute(
                    f"SELECT {_PENDING_COLUMNS} FROM pending WHERE stack = ? ORDER BY rowid",
                    (stack,)).fetchall()
            with self._db.guard():
                return Snapshot(
                    stack=stack, lineage=row[0], serial=row[1],
                    resources=_resource_rows(resources),
                    outputs=_loads(row[2]), pending=[_pending_row(p) for p in pending],
                )

    def pending_count(self, stack: str) -> int:
        with self._db.read() as conn:
            self._db.require(stack)
            (count,) = conn.execute("SELECT count(*) FROM pending WHERE stack = ?", (stack,)).fetchone()
        return int(count)

    def acquire_lock(self, stack: str, info: LockInfo) -> None:
        """Take the lock; an empty ``info.token`` is filled in so the caller can release."""
        if not info.token:
            info.token = uuid.uuid4().hex
        with self._db.write() as conn:
            self._db.require(stack)
            held = self._lock(stack)
            if held is not None and held.token != info.token:
                raise _lock_held(stack, held)
            conn.execute(
                "INSERT OR REPLACE INTO locks VALUES (?, ?, ?, ?, ?, ?, ?)",
                (stack, info.owner, info.pid, info.host, info.acquired_at,
                 info.operation, info.token))

    def release_lock(self, stack: str, token: str) -> None:
        """No-op if the lock was broken and possibly re-taken by someone else."""
        with self._db.write() as conn:
            conn.execute("DELETE FROM locks WHERE stack = ? AND token = ?", (stack, token))

    def read_lock(self, stack: str) -> LockInfo | None:
        with self._db.read():
            self._db.require(stack)
            return self._lock(stack)

    def break_lock(self, stack: str) -> LockInfo | None:
        with self._db.write() as conn:
            self._db.require(stack)
            held = self._lock(stack)
            conn.execute("DELETE FROM locks WHERE stack = ?", (stack,))
        return held

    def _lock(self, stack: str) -> LockInfo | None:
        row = self._db.conn.execute(
            f"SELECT {_LOCK_COLUMNS} FROM locks WHERE stack = ?", (stack,)).fetchone()
        return None if row is None else LockInfo(*row)

    def begin(self, stack: str, kind: str, who: str) -> SqliteStackWriter:
        with self._db.guard():
            self._db.require(stack)
        return SqliteStackWriter(self._db, stack, kind, who)

    def history(self, stack: str) -> list[Checkpoint]:
        """Oldest first; never reads the snapshot blobs."""
        with self._db.read() as conn:
            self._db.require(stack)
            rows = conn.execute(
                f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints WHERE stack = ?"
                " ORDER BY number", (stack,)).fetchall()
        with self._db.guard():
            return [_checkpoint_row(r) for r in rows]

    def checkpoint(self, stack: str, number: int) -> CheckpointDetail:
        with self._db.read() as conn:
            self._db.require(stack)
            row = conn.execute(
                f"SELECT {_CHECKPOINT_COLUMNS}, changes, snapshot FROM checkpoints"
                " WHERE stack = ? AND number = ?", (stack, number)).fetchone()
        if row is None:
            raise StateError(
                f"stack {stack!r} has no checkpoint {number}", hint="stackwright history")
        with self._db.guard(), _gc_paused():
            return self._detail(row)

    @staticmethod
    def _detail(row: Sequence[Any]) -> CheckpointDetail:
        return _checkpoint_detail(row)

    def record_event(self, stack: str, kind: str, who: str, data: dict[str, Any]) -> Event:
        at = time.time()
        with self._db.write() as conn:
            cursor = conn.execute("INSERT INTO events (stack, kind, who, at, data) VALUES (?,?,?,?,?)",
                                  (stack, kind, who, at, _dumps(data)))
        return Event(int(cursor.lastrowid or 0), stack, kind, who, at, dict(data))

    def events(self, stack: str | None = None, kinds: tuple[str, ...] = ()) -> list[Event]:
        query, params = "SELECT id, stack, kind, who, at, data FROM events", []
        clauses = []
        if stack is not None:
            clauses.append("stack = ?")
            params.append(stack)
        if kinds:
            clauses.append(f"kind IN ({','.join('?' * len(kinds))})")
            params.extend(kinds)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        with self._db.read() as conn:
            rows = conn.execute(query + " ORDER BY id", params).fetchall()
        return [Event(int(r[0]), r[1], r[2], r[3], float(r[4]), _loads(r[5])) for r in rows]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._db.conn.close()


class SqliteStackWriter:
    """``StackWriter``: each method is one committed transaction on the stack."""

    def __init__(self, db: _Db, stack: str, kind: str, who: str) -> None:
        self._db = db
        self._stack = stack
        self._kind = kind
        self._who = who
        self._started_at = time.time()
        self._counts: dict[str, int] = {}
        self._changes: list[Change] = []
        self._finished = False

    def _note(self, change: Change | None) -> None:
        """Counted only after the commit, so a failed write is not reported as done."""
        if change is not None:
            self._counts[change.op] = self._counts.get(change.op, 0) + 1
            self._changes.append(change)

    def _check_open(self) -> None:
        if self._finished:
            raise StateError(f"the {self._kind} on stack {self._stack!r} already finished")

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group commit: every write inside the block commits in one transaction."""
        with self._db.batch():
            yield

    def record_pending(self, op: PendingOperation) -> None:
        self._check_open()
        params = (
            self._stack, op.token, op.urn, op.type, op.op, _dumps(op.inputs),
            op.resource_id, op.parent, _dumps(op.deps), op.started_at,
        )
        with self._db.write() as conn:
            self._db.bump(self._stack)
            conn.execute(
                f"INSERT OR REPLACE INTO pending (stack, {_PENDING_COLUMNS})"
                " VALUES (?,?,?,?,?,?,?,?,?,?)", params)

    def record_resource(
        self, resource: ResourceState, change: Change | None, clears: str | None = None
    ) -> None:
        """Insert or replace a resource; clear pending op ``clears`` in the same commit."""
        self._check_open()
        params = _resource_params(self._stack, resource)
        with self._db.write() as conn:
            self._db.bump(self._stack)
            conn.execute(_UPSERT_RESOURCE, params)
            if clears is not None:
                conn.execute(_DELETE_PENDING, (self._stack, clears))
        self._note(change)

    def remove_resource(
        self, urn: str, change: Change | None, clears: str | None = None,
        resource_id: str | None = None,
    ) -> None:
        """Forget a resource; with ``resource_id``, only if the row still has that id."""
        self._check_open()
        with self._db.write() as conn:
            self._db.bump(self._stack)
            if resource_id is None:
                conn.execute(
                    "DELETE FROM resources WHERE stack = ? AND urn = ?", (self._stack, urn))
            else:
                conn.execute(
                    "DELETE FROM resources WHERE stack = ? AND urn = ? AND id = ?",
                    (self._stack, urn, resource_id))
            if clears is not None:
                conn.execute(_DELETE_PENDING, (self._stack, clears))
        self._note(change)

    def clear_pending(self, token: str, change: Change | None = None) -> None:
        self._check_open()
        with self._db.write() as conn:
            self._db.bump(self._stack)
            conn.execute(_DELETE_PENDING, (self._stack, token))
        self._note(change)

    def rename_resource(self, old_urn: str, new_urn: str) -> None:
        """Move a record to a new URN, and the parent/deps references that name it."""
        self._check_open()
        if old_urn == new_urn:
            return
        with self._db.write() as conn:
            self._db.bump(self._stack)
            if conn.execute(
                "SELECT 1 FROM resources WHERE stack = ? AND urn = ?", (self._stack, new_urn)
            ).fetchone():
                raise StateError(
                    f"cannot move {old_urn} to {new_urn}: a resource is already recorded there",
                    hint="remove one of the aliases",
                )
            conn.execute(
                "UPDATE resources SET urn = ? WHERE stack = ? AND urn = ?",
                (new_urn, self._stack, old_urn))
            conn.execute(
                "UPDATE resources SET parent = ? WHERE stack = ? AND parent = ?",
                (new_urn, self._stack, old_urn))
            self._rename_deps(conn, old_urn, new_urn)

    def _rename_deps(self, conn: sqlite3.Connection, old_urn: str, new_urn: str) -> None:
        quoted = json.dumps(old_urn)
        rows = conn.execute(
            "SELECT rowid, deps FROM resources WHERE stack = ? AND instr(deps, ?) > 0",
            (self._stack, quoted)).fetchall()
        for rowid, deps in rows:
            moved = [new_urn if d == old_urn else d for d in _loads(deps)]
            conn.execute("UPDATE resources SET deps = ? WHERE rowid = ?", (_dumps(moved), rowid))

    def add_change(self, change: Change) -> None:
        """Kept in memory: it only shows up in this operation's checkpoint."""
        self._check_open()
        self._note(change)

    def finish(
        self, result: str, outputs: dict[str, Any] | None, message: str = ""
    ) -> Checkpoint | None:
        """Replace the outputs if given; write a checkpoint if anything changed or failed."""
        self._check_open()
        self._finished = True
        outputs_text = None if outputs is None else _dumps(outputs)
        if not self._changes and result == "succeeded":
            if outputs_text is not None:
                with self._db.write():
                    self._replace_outputs(outputs_text)
            return None
        changes_text = _dumps([_change_json(c) for c in self._changes])
        with self._db.write():
            if outputs_text is not None:
                self._replace_outputs(outputs_text)
            return self._write_checkpoint(result, message, changes_text)

    def _replace_outputs(self, text: str) -> None:
        """Bumps the serial only when the outputs really differ."""
        row = self._db.conn.execute(
            "SELECT outputs FROM outputs WHERE stack = ?", (self._stack,)).fetchone()
        if row is None:
            raise _no_stack(self._stack)
        if row[0] != text:
            self._db.bump(self._stack)
            self._db.conn.execute(
                "UPDATE outputs SET outputs = ? WHERE stack = ?", (text, self._stack))

    def _write_checkpoint(self, result: str, message: str, changes_text: str) -> Checkpoint:
        conn = self._db.conn
        serial = self._db.serial(self._stack)
        (outputs_text,) = conn.execute(
            "SELECT outputs FROM outputs WHERE stack = ?", (self._stack,)).fetchone()
        with _gc_paused():
            rows = conn.execute(_SELECT_RESOURCES, (self._stack,)).fetchall()
            blob = _compress_snapshot(rows, outputs_text)
            del rows
        (number,) = conn.execute(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM checkpoints WHERE stack = ?",
            (self._stack,)).fetchone()
        cp = Checkpoint(
            number, self._kind, self._who, self._started_at, time.time(), result,
            dict(self._counts), message, serial,
        )
        conn.execute(
            "INSERT INTO checkpoints VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (self._stack, cp.number, cp.kind, cp.who, cp.started_at, cp.finished_at,
             cp.result, _dumps(cp.counts), cp.message, cp.serial, changes_text, blob))
        return cp


if TYPE_CHECKING:
    def _implements(s: SqliteStateStore, w: SqliteStackWriter) -> tuple[StateStore, StackWriter]:
        """mypy proof that both classes satisfy the protocols in ``store.py``."""
        return s, w
