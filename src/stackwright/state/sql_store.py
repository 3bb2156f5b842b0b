"""The state store over SQL, written once for SQLite and PostgreSQL.

Each backend supplies a ``SqlDb``: its connection (whose ``execute`` takes ``?``
placeholders), transactions, error translation, and the few spots where the two
dialects differ (``dialect_*`` attributes, ``insert_lock``). Everything else — what a
snapshot, a checkpoint, a lock or a pending operation is — lives here.

Durability contract (``store.py``): every ``StackWriter`` method is one committed
transaction, or joins the one ``batch()`` opened.
"""

from __future__ import annotations

import json
import time
import uuid
import zlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import replace
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, Final

from stackwright.errors import LockHeldError, StateError
from stackwright.state.codec import (
    Corrupt, Operation, Resealer, SecretCipher, StoredOutputs, ValueCodec, already_there, checkpoint_detail,
    checkpoint_row, compress_snapshot, dumps, gc_paused, loads, lock_held, no_checkpoint, no_stack, pending_row,
    read_only_error, resealed, resource_params, row_batches, snapshot_rows, stacks_named,
)
from stackwright.state.open_operation import (
    CLOSE_OPEN, INTERRUPTED, OPEN_COLUMNS, OpenOperation, Statement, closing, holder_text, new_lines, noting,
    noting_lines, open_row,
)
from stackwright.state.records import (
    SCHEMA_VERSION, Change, Checkpoint, CheckpointDetail, Event, LockInfo, PendingOperation, ResourceState,
    Snapshot, StackInfo, StackRecord, in_logged_order,
)

if TYPE_CHECKING:
    from stackwright.state.store import StackWriter, StateStore

RESOURCE_COLUMNS: Final = (
    "urn, type, id, inputs, outputs, parent, deps, protect, retain_on_delete, external, options"
)
SNAPSHOT_COLUMNS: Final = (
    "urn, type, id, inputs, outputs, parent, deps, options, protect + 2 * retain_on_delete + 4 * external"
)
"""A resource row as ``snapshot`` reads it (``codec.snapshot_rows``): the three flags in one
column. The sqlite3 module releases and takes back the GIL for each column it reads;
three fewer made reading 50,000 rows about a fifth faster."""
UPSERT_RESOURCE: Final = f"""
    INSERT INTO resources (stack, {RESOURCE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)
    ON CONFLICT (stack, urn) DO UPDATE SET type = excluded.type, id = excluded.id,
        inputs = excluded.inputs, outputs = excluded.outputs, parent = excluded.parent,
        deps = excluded.deps, protect = excluded.protect,
        retain_on_delete = excluded.retain_on_delete, external = excluded.external,
        options = excluded.options"""
PENDING_COLUMNS: Final = "token, urn, type, op, inputs, resource_id, parent, deps, started_at"
UPSERT_PENDING: Final = f"""
    INSERT INTO pending (stack, {PENDING_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)
    ON CONFLICT (stack, token) DO UPDATE SET urn = excluded.urn, type = excluded.type,
        op = excluded.op, inputs = excluded.inputs, resource_id = excluded.resource_id,
        parent = excluded.parent, deps = excluded.deps, started_at = excluded.started_at"""
CHECKPOINT_COLUMNS: Final = (
    "number, kind, who, started_at, finished_at, result, counts, message, serial"
)
LARGEST_INTEGER: Final = 2**63 - 1
"""SQLite's largest INTEGER: sqlite3 cannot even pass a larger number as a parameter, and
no checkpoint has a number beyond it (nor below 1)."""
LOCK_COLUMNS: Final = "owner, pid, host, acquired_at, operation, token"
BUMP: Final = "UPDATE stacks SET serial = serial + 1, updated_at = ? WHERE name = ?"
DELETE_PENDING: Final = "DELETE FROM pending WHERE stack = ? AND token = ?"
STACK_TABLES: Final = ("resources", "pending", "locks", "checkpoints", "outputs", "operations",
                        "operation_changes")
OPEN_SINCE: Final = 4
"""The schema version that added the ``operations`` table (``open_operation.py``)."""
_IN_LIST: Final = 500
"""Names per ``IN (...)`` list: far below SQLite's limit on parameters."""
BEGIN_QUERY: Final = (
    "SELECT l.operation, l.owner, l.pid, l.host{open} FROM stacks s LEFT JOIN locks l ON l.stack = s.name"
    "{join} WHERE s.name = ?")


class SqlDb:
    """A backend's connection and transactions, plus the shared serial machinery."""

    conn: Any
    """Executes SQL with ``?`` placeholders; returns a cursor."""
    dialect_order: str = "rowid"
    """The column that keeps insertion order."""
    dialect_find: str = "instr"
    """``f(haystack, needle) > 0`` tests for a substring."""
    dialect_lock_row: str = ""
    """Suffix that locks a row read for update (PostgreSQL's ``FOR UPDATE``)."""
    where: str = "the state store"
    """How messages name this store ("state file ...", "PostgreSQL state store ...")."""
    kind: str = "store"
    """What a hint calls it: "file", "database"."""
    version: int = SCHEMA_VERSION
    """The schema version of the store as opened (older until its first write upgrades it)."""

    def __init__(self, read_only: bool = False) -> None:
        self.depth = 0
        self.values = ValueCodec()
        self.batched: set[str] | None = None
        self.read_only = read_only
        """Opened read-only: every write (and so every lock) is refused."""

    def stored_version(self, raw: Any) -> int:
        """The schema version ``meta`` holds; refuses a missing, unreadable or newer one."""
        try:
            version = int(raw)
        except (TypeError, ValueError):
            raise Corrupt("its schema version is missing or unreadable") from None
        if version > SCHEMA_VERSION:
            raise StateError(
                f"{self.where} has schema version {version}, newer than the "
                f"version {SCHEMA_VERSION} this stackwright understands",
                hint=f"upgrade stackwright to use it; the {self.kind} was left unchanged",
            )
        return version

    def corrupt(self, detail: str) -> StateError:
        return StateError(
            f"{self.where} is corrupt: {detail}",
            hint="restore it from a backup; stackwright will not modify or repair it",
        )

    def guard(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def materialise(self) -> None:
        """Create the store if it does not exist yet. Only creating a stack calls this:
        every other command leaves a missing store missing."""

    def prepare_write(self) -> None:
        """Called before each outermost write: a backend that opened its store without
        writing (so that read-only commands never do) upgrades it here."""

    def read(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def transaction(self) -> AbstractContextManager[None]:
        """Begin (taking the write lock up front), commit, or roll back on error."""
        raise NotImplementedError

    def insert_lock(self, params: tuple[Any, ...]) -> bool:
        """Insert a lock row; False when another writer's row won the race."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    insert_event = "INSERT INTO events (stack, kind, who, at, data) VALUES (?,?,?,?,?) RETURNING id"
    """Records one event, returning its id; a dialect may add to it (PostgreSQL notifies)."""

    def event_params(self, params: tuple[Any, ...]) -> tuple[Any, ...]:
        return params

    def execute_after(self, first: list[Statement], query: str, params: tuple[Any, ...]) -> Any:
        """Run ``first`` (writes returning nothing), then ``query``, whose cursor is
        returned. A dialect may send them as one statement (PostgreSQL: a ``WITH``), so
        that noting the open operation costs no round trip of its own."""
        for statement in first:
            self.conn.execute(*statement)
        return self.conn.execute(query, params)

    def write(self) -> AbstractContextManager[Any]:
        """One committed write. Nested inside another ``write()`` (a writer's
        ``batch()``), it joins the outer transaction, which commits once for all."""
        if self.depth:
            return nullcontext(self.conn)
        return self._write()

    @contextmanager
    def _write(self) -> Iterator[Any]:
        if self.read_only:
            raise read_only_error(f"write {self.where}")
        with self.guard():
            self.prepare_write()
        with self.guard(), self.transaction():
            self.depth += 1
            try:
                yield self.conn
            finally:
                self.depth -= 1

    def bump(self, stack: str) -> None:
        """Advance the stack's serial; also the existence check of every state write.

        Inside a batch the serial moves once, when the batch ends: readers only ever see
        committed transactions, so one step per transaction is all they can tell apart.
        """
        if self.batched is not None:
            self.batched.add(stack)
            return
        if self.conn.execute(BUMP, (time.time(), stack)).rowcount != 1:
            raise no_stack(stack)

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
                for stack in sorted(stacks):
                    self.bump(stack)
            finally:
                self.batched = None

    def serial(self, stack: str) -> int:
        row = self.conn.execute("SELECT serial FROM stacks WHERE name = ?", (stack,)).fetchone()
        if row is None:
            raise no_stack(stack)
        return int(row[0])

    def require(self, stack: str) -> None:
        self.serial(stack)

    def resource_columns(self, columns: str = RESOURCE_COLUMNS) -> str:
        """``columns`` as a schema-2 file, which a read-only command does not upgrade,
        is read: it has no ``options`` column."""
        return columns if self.version >= 3 else columns.replace("options", "'{}'")


class SqlStateStore:
    """``StateStore`` over a ``SqlDb``."""

    def __init__(self, db: SqlDb) -> None:
        self._db = db
        self._closed = False

    @property
    def read_only(self) -> bool:
        return self._db.read_only

    def together(self) -> AbstractContextManager[Any]:
        """Every write inside commits in one transaction, when the block ends."""
        return self._db.write()

    def use_cipher(self, cipher: SecretCipher) -> None:
        """Seal secrets with ``cipher`` from now on, and open them with it."""
        self._db.values = ValueCodec(cipher)

    def reseal(self, resealers: Mapping[str, Resealer]) -> list[str]:
        """Every stack in one transaction: a token that does not open rolls all back."""
        changed: list[str] = []
        with self._db.write() as conn:
            for stack, resealer in resealers.items():
                self._db.require(stack)
                if self._reseal_stack(conn, stack, resealer):
                    changed.append(stack)
        return changed

    @staticmethod
    def _reseal_stack(conn: Any, stack: str, resealer: Resealer) -> bool:
        """Rewrite the rows of ``stack`` whose secrets ``resealer`` seals anew; whether any changed."""
        writes: list[tuple[str, tuple[Any, ...]]] = []
        for urn, inputs, outputs in conn.execute(
                "SELECT urn, inputs, outputs FROM resources WHERE stack = ?", (stack,)).fetchall():
            again = resealed(inputs, resealer), resealed(outputs, resealer)
            if again != (inputs, outputs):
                writes.append(("UPDATE resources SET inputs = ?, outputs = ? WHERE stack = ? AND urn = ?",
                               (*again, stack, urn)))
        for token, inputs in conn.execute("SELECT token, inputs FROM pending WHERE stack = ?", (stack,)).fetchall():
            if (again_inputs := resealed(inputs, resealer)) != inputs:
                writes.append(("UPDATE pending SET inputs = ? WHERE stack = ? AND token = ?",
                               (again_inputs, stack, token)))
        for (outputs,) in conn.execute("SELECT outputs FROM outputs WHERE stack = ?", (stack,)).fetchall():
            if (again_outputs := resealed(outputs, resealer)) != outputs:
                writes.append(("UPDATE outputs SET outputs = ? WHERE stack = ?", (again_outputs, stack)))
        for number, blob in conn.execute(
                "SELECT number, snapshot FROM checkpoints WHERE stack = ?", (stack,)).fetchall():
            text = zlib.decompress(bytes(blob)).decode()
            if (again_text := resealed(text, resealer)) != text:
                writes.append(("UPDATE checkpoints SET snapshot = ? WHERE stack = ? AND number = ?",
                               (zlib.compress(again_text.encode(), 6), stack, number)))
        for event_id, data in conn.execute("SELECT id, data FROM events WHERE stack = ?", (stack,)).fetchall():
            if (again_data := resealed(data, resealer)) != data:
                writes.append(("UPDATE events SET data = ? WHERE id = ?", (again_data, event_id)))
        for statement, parameters in writes:
            conn.execute(statement, parameters)
        return bool(writes)

    def __enter__(self) -> SqlStateStore:
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
        if self._db.read_only:
            raise read_only_error(f"create stack {stack!r}")
        self._db.materialise()
        with self._db.write() as conn:
            if conn.execute("SELECT 1 FROM stacks WHERE name = ?", (stack,)).fetchone():
                raise StateError(f"stack {stack!r} already exists", hint="stackwright stack ls")
            conn.execute("INSERT INTO stacks VALUES (?, ?, 0, ?, NULL)",
                         (stack, str(uuid.uuid4()), time.time()))
            conn.execute("INSERT INTO outputs VALUES (?, '{}')", (stack,))

    def stack_exists(self, stack: str) -> bool:
        with self._db.read() as conn:
            row = conn.execute("SELECT 1 FROM stacks WHERE name = ?", (stack,)).fetchone()
        return row is not None

    def remove_stack(self, stack: str, force: bool = False) -> None:
        with self._db.write() as conn:
            self._db.require(stack)
            row = conn.execute("SELECT COUNT(*) FROM resources WHERE stack = ?", (stack,)).fetchone()
            count = int(row[0]) if row else 0
            if count and not force:
                raise StateError(
                    f"stack {stack!r} still has {count} resources",
                    hint="run `stackwright destroy` first, or force the removal to forget "
                    "them (the cloud resources are left running)",
                )
            for table in STACK_TABLES:
                conn.execute(f"DELETE FROM {table} WHERE stack = ?", (stack,))
            conn.execute("DELETE FROM stacks WHERE name = ?", (stack,))

    def snapshot(self, stack: str) -> Snapshot:
        resources: dict[str, ResourceState] = {}
        with gc_paused():
            with self._db.read() as conn:
                row = self._stack_row(conn, stack)
                for batch in row_batches(self._resource_cursor(conn, stack, SNAPSHOT_COLUMNS)):
                    snapshot_rows(batch, self._db.values, into=resources)
                pending = self._pending_rows(conn, stack)
            with self._db.guard():
                return Snapshot(
                    stack=stack, lineage=row[0], serial=int(row[1]), resources=resources,
                    outputs=self._db.values.loads(row[2]),
                    pending=[pending_row(p, self._db.values) for p in pending],
                )

    def stored_outputs(self, stacks: Sequence[str]) -> dict[str, StoredOutputs]:
        """The recorded outputs of those of ``stacks`` that exist, in one read and left
        sealed: a stack that reads many others' outputs needs none of their resources."""
        found: dict[str, StoredOutputs] = {}
        with self._db.read() as conn:
            for start in range(0, len(stacks), _IN_LIST):
                names = tuple(stacks[start:start + _IN_LIST])
                rows = conn.execute(
                    "SELECT name, serial, outputs, EXISTS (SELECT 1 FROM resources r WHERE r.stack = name)"
                    " FROM stacks JOIN outputs ON outputs.stack = name"
                    f" WHERE name IN ({','.join('?' * len(names))})", names).fetchall()
                found.update((row[0], StoredOutputs(int(row[1]), row[2], bool(row[3]))) for row in rows)
        return found

    def pending_count(self, stack: str) -> int:
        with self._db.read() as conn:
            self._db.require(stack)
            row = conn.execute("SELECT count(*) FROM pending WHERE stack = ?", (stack,)).fetchone()
        return int(row[0]) if row else 0

    def acquire_lock(self, stack: str, info: LockInfo) -> None:
        """Take the lock; an empty ``info.token`` is filled in so the caller can release."""
        if not info.token:
            info.token = uuid.uuid4().hex
        params = (stack, info.owner, info.pid, info.host, info.acquired_at,
                  info.operation, info.token)
        if self._db.read_only:
            raise read_only_error(f"take the lock of stack {stack!r}")
        with self._db.write() as conn:
            self._db.require(stack)
            held = self._lock(stack)
            if held is not None:
                if held.token != info.token:
                    raise lock_held(stack, held)
                conn.execute("DELETE FROM locks WHERE stack = ?", (stack,))
            if not self._db.insert_lock(params):
                winner = self._lock(stack)
                if winner is None:
                    raise LockHeldError(f"the lock of stack {stack!r} changed hands while taking it",
                                        hint="try again")
                raise lock_held(stack, winner)

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
            f"SELECT {LOCK_COLUMNS} FROM locks WHERE stack = ?", (stack,)).fetchone()
        return None if row is None else LockInfo(*row)

    def begin(self, stack: str, kind: str, who: str) -> SqlStackWriter:
        """The caller holds the stack's lock: an operation left open by an earlier
        holder (killed before its checkpoint) is closed first, as ``interrupted``."""
        tracked = self._db.version >= OPEN_SINCE
        query = BEGIN_QUERY.format(
            open="".join(f", o.{c}" for c in OPEN_COLUMNS.split(", ")) if tracked else "",
            join=" LEFT JOIN operations o ON o.stack = s.name" if tracked else "")
        with self._db.read() as conn:
            row = conn.execute(query, (stack,)).fetchone()
        if row is None:
            raise no_stack(stack)
        if tracked and row[4] is not None:
            self._close_leftover(stack, open_row(row[4:]))
        writer = SqlStackWriter(self._db, stack, kind, who)
        writer._op.holder = holder_text(*row[:4])
        return writer

    def _close_leftover(self, stack: str, leftover: OpenOperation) -> None:
        """Its checkpoint: the changes that landed, and the state as it left it."""
        if self._db.read_only:
            return
        with self._db.write() as conn:
            lines = conn.execute(
                f"SELECT changes FROM operation_changes WHERE stack = ? AND operation = ? ORDER BY {self._db.dialect_order}",
                (stack, leftover.id)).fetchall()
            if conn.execute(CLOSE_OPEN, (stack, leftover.id)).rowcount != 1:
                return
            leftover = replace(leftover, changes_text="".join(str(line[0]) for line in lines))
            dead = SqlStackWriter(self._db, stack, leftover.kind, leftover.who)
            dead._op = leftover.closed(stack)
            dead._write_checkpoint(INTERRUPTED, leftover.message(), dead._op.changes_json(),
                                   closing(stack, leftover.id)[1:])

    def history(self, stack: str) -> list[Checkpoint]:
        """Oldest first; never reads the snapshot blobs."""
        with self._db.read() as conn:
            self._db.require(stack)
            rows = conn.execute(
                f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE stack = ? ORDER BY number",
                (stack,)).fetchall()
        with self._db.guard():
            return [checkpoint_row(r) for r in rows]

    def checkpoint(self, stack: str, number: int) -> CheckpointDetail:
        with self._db.read() as conn:
            self._db.require(stack)
            row = None
            if 0 < number <= LARGEST_INTEGER:
                row = conn.execute(
                    f"SELECT {CHECKPOINT_COLUMNS}, changes, snapshot FROM checkpoints"
                    " WHERE stack = ? AND number = ?", (stack, number)).fetchone()
        if row is None:
            raise no_checkpoint(stack, number)
        with self._db.guard(), gc_paused():
            return checkpoint_detail(row, self._db.values)

    def record_event(self, stack: str, kind: str, who: str, data: dict[str, Any]) -> Event:
        """The store is made if missing: a plan for a stack not created yet may be the
        first thing a project records."""
        if not self._db.read_only:
            self._db.materialise()
        at = time.time()
        with self._db.write() as conn:
            row = conn.execute(self._db.insert_event, self._db.event_params(
                (stack, kind, who, at, self._db.values.dumps(data)))).fetchone()
        return Event(int(row[0]) if row else 0, stack, kind, who, at, dict(data))

    def events(self, stack: str | None = None, kinds: tuple[str, ...] = (),
               stacks: Collection[str] | None = None) -> list[Event]:
        """``stacks``: in one read (a waiter confirming a burst of notices), ``_IN_LIST``
        names per statement."""
        if stacks is None:
            batches: list[list[str] | None] = [None if stack is None else [stack]]
        else:
            names = sorted(set(stacks))
            batches = [names[start:start + _IN_LIST] for start in range(0, len(names), _IN_LIST)]
        rows: list[Any] = []
        with self._db.read() as conn:
            for batch in batches:
                rows += conn.execute(*_events_query(batch, kinds)).fetchall()
        if len(batches) > 1:
            rows.sort(key=lambda r: int(r[0]))
        with self._db.guard():
            return [Event(int(r[0]), r[1], r[2], r[3], float(r[4]), self._db.values.loads(r[5])) for r in rows]

    def _stack_rows(self, conn: Any, stack: str) -> tuple[Any, list[Any], list[Any]]:
        """The stack's row (lineage, serial, outputs, created_at, updated_at), its
        resource rows and its pending rows, in recorded order."""
        row = self._stack_row(conn, stack)
        return row, self._resource_cursor(conn, stack, RESOURCE_COLUMNS).fetchall(), self._pending_rows(conn, stack)

    def _stack_row(self, conn: Any, stack: str) -> Any:
        row = conn.execute(
            "SELECT lineage, serial, outputs, created_at, updated_at FROM stacks JOIN outputs"
            " ON stack = name WHERE name = ?", (stack,)).fetchone()
        if row is None:
            raise no_stack(stack)
        return row

    def _resource_cursor(self, conn: Any, stack: str, columns: str) -> Any:
        return conn.execute(
            f"SELECT {self._db.resource_columns(columns)} FROM resources WHERE stack = ?"
            f" ORDER BY {self._db.dialect_order}", (stack,))

    def _pending_rows(self, conn: Any, stack: str) -> list[Any]:
        return list(conn.execute(
            f"SELECT {PENDING_COLUMNS} FROM pending WHERE stack = ? ORDER BY {self._db.dialect_order}",
            (stack,)).fetchall())

    def export_stack(self, stack: str) -> StackRecord:
        with self._db.read() as conn:
            row, resources, pending = self._stack_rows(conn, stack)
            checkpoints = conn.execute(
                f"SELECT {CHECKPOINT_COLUMNS}, changes, snapshot FROM checkpoints WHERE stack = ?"
                " ORDER BY number", (stack,)).fetchall()
            events = conn.execute(
                "SELECT id, kind, who, at, data FROM events WHERE stack = ? ORDER BY id", (stack,)).fetchall()
        with self._db.guard():
            return StackRecord(
                stack, row[0], int(row[1]), float(row[3]), row[4], row[2],
                [list(r) for r in resources], [list(p) for p in pending],
                [[list(c[:9]), c[9], inflate(c[10], c[0])] for c in checkpoints], [list(e[1:]) for e in events],
                [int(e[0]) for e in events])

    def import_stack(self, record: StackRecord) -> None:
        self.import_stacks([record])

    def import_stacks(self, records: Sequence[StackRecord]) -> None:
        """One transaction: the stacks appear whole or not at all."""
        names = [r.name for r in records]
        if self._db.read_only:
            raise read_only_error(f"create {stacks_named(names)}")
        self._db.materialise()
        with self._db.write() as conn:
            existing = [n for n in names if conn.execute("SELECT 1 FROM stacks WHERE name = ?", (n,)).fetchone()]
            if existing:
                raise already_there(existing, self._db.where)
            for record in records:
                _insert_stack(conn, record)
            for name, (kind, who, at, data) in in_logged_order(records):
                conn.execute("INSERT INTO events (stack, kind, who, at, data) VALUES (?,?,?,?,?)",
                             (name, kind, who, at, data))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._db.close()


def _insert_stack(conn: Any, record: StackRecord) -> None:
    """The rows of ``record`` but its events."""
    name = record.name
    conn.execute("INSERT INTO stacks VALUES (?, ?, ?, ?, ?)",
                 (name, record.lineage, record.serial, record.created_at, record.updated_at))
    conn.execute("INSERT INTO outputs VALUES (?, ?)", (name, record.outputs))
    for r in record.resources:
        conn.execute(f"INSERT INTO resources (stack, {RESOURCE_COLUMNS}) VALUES ({_marks(12)})", (name, *r))
    for p in record.pending:
        conn.execute(f"INSERT INTO pending (stack, {PENDING_COLUMNS}) VALUES ({_marks(10)})", (name, *p))
    for header, changes, snapshot in record.checkpoints:
        conn.execute(f"INSERT INTO checkpoints VALUES ({_marks(12)})",
                     (name, *header, changes, zlib.compress(snapshot.encode(), 6)))


def _marks(count: int) -> str:
    return ",".join("?" * count)


def inflate(blob: Any, number: int) -> str:
    """A checkpoint's snapshot JSON from its compressed column."""
    try:
        return zlib.decompress(bytes(blob)).decode()
    except (zlib.error, UnicodeDecodeError):
        raise Corrupt(f"checkpoint {number} does not decode") from None


class _Batch:
    """What the writes of one ``SqlStackWriter.batch`` leave for its end."""

    __slots__ = ("lines", "noted")

    def __init__(self) -> None:
        self.lines: list[str] = []
        """Each write's change lines, stored as one row when the batch ends."""
        self.noted: list[Change | None] = []
        """Its changes, counted once the batch committed."""


def _events_query(names: Sequence[str] | None, kinds: tuple[str, ...]) -> tuple[str, tuple[Any, ...]]:
    """The audit log's rows of the stacks ``names`` (None: of every stack) and ``kinds``
    (none: every kind)."""
    clauses: list[str] = []
    params: list[Any] = []
    if names is not None:
        clauses.append(f"stack IN ({','.join('?' * len(names))})")
        params.extend(names)
    if kinds:
        clauses.append(f"kind IN ({','.join('?' * len(kinds))})")
        params.extend(kinds)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return f"SELECT id, stack, kind, who, at, data FROM events{where} ORDER BY id", tuple(params)


class SqlStackWriter:
    """``StackWriter``: each method is one committed transaction on the stack."""

    slow_commits = False

    def __init__(self, db: SqlDb, stack: str, kind: str, who: str) -> None:
        self._db = db
        self._stack = stack
        self._op = Operation(stack, kind, who)
        """Changes are noted only after their commit: a failed write is not reported as done."""
        self._opened = False
        """A write stored the open operation (``open_operation.py``): ``finish`` removes it."""
        self._open_committed = False
        """A committed write stored it: later writes add their changes only."""
        self._batch: _Batch | None = None
        self._pending_inputs: dict[str | None, tuple[Any, ValueCodec, str]] = {}
        """Token -> the inputs its pending record stored, the codec and their text: the
        write that clears the record stores the same inputs object in the resource's
        row, which then reuses the text instead of encoding the inputs again."""

    def _inputs_text(self, inputs: Any, clears: str | None) -> str | None:
        """The text the pending record ``clears`` stored, if it holds this very
        ``inputs`` object, encoded by the codec in use; forgets that record's entry."""
        kept = self._pending_inputs.pop(clears, None)  # never holds None
        if kept is None or kept[0] is not inputs or kept[1] is not self._db.values:
            return None
        return kept[2]

    def _noting(self, *changes: Change | None) -> list[Statement]:
        """The statements that store the open operation with ``changes``, in the
        transaction of the write that made them. Inside ``batch`` the lines wait for
        its end, which stores them all in one row of the same transaction."""
        self._opened = True
        if self._batch is None:
            return noting(self._stack, self._op, changes, self._open_committed)
        self._batch.lines.append(new_lines(self._op, changes))
        return []

    def _note(self, change: Change | None) -> None:
        """Count ``change`` as done once its write committed (inside ``batch``, once
        the batch did: a batch that fails records none of its changes)."""
        if self._batch is None:
            self._op.note(change)
        else:
            self._batch.noted.append(change)

    def _committed(self) -> None:
        """After a write: it committed, unless a batch around it has yet to."""
        if self._db.depth == 0:
            self._open_committed = self._opened

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group commit: every write inside the block commits in one transaction."""
        if self._batch is not None:
            yield
            return
        self._batch = batch = _Batch()
        try:
            with self._db.batch():
                yield
                if batch.lines:
                    for statement in noting_lines(self._stack, self._op, "".join(batch.lines), self._open_committed):
                        self._db.conn.execute(*statement)
        finally:
            self._batch = None
        self._committed()
        for change in batch.noted:
            self._op.note(change)

    def record_pending(self, op: PendingOperation) -> None:
        self._op.check_open()
        values = self._db.values
        inputs_text = values.dumps(op.inputs)
        params = (
            self._stack, op.token, op.urn, op.type, op.op, inputs_text,
            op.resource_id, op.parent, dumps(op.deps), op.started_at,
        )
        with self._db.write():
            self._db.bump(self._stack)
            self._db.execute_after(self._noting(), UPSERT_PENDING, params)
        self._committed()
        self._pending_inputs[op.token] = (op.inputs, values, inputs_text)

    def record_resource(
        self, resource: ResourceState, change: Change | None, clears: str | None = None
    ) -> None:
        """Insert or replace a resource; clear pending op ``clears`` in the same commit."""
        self._op.check_open()
        params = resource_params(self._stack, resource, self._db.values, self._inputs_text(resource.inputs, clears))
        with self._db.write() as conn:
            self._db.bump(self._stack)
            self._db.execute_after(self._noting(change), UPSERT_RESOURCE, params)
            if clears is not None:
                conn.execute(DELETE_PENDING, (self._stack, clears))
        self._committed()
        self._note(change)

    def remove_resource(
        self, urn: str, change: Change | None, clears: str | None = None,
        resource_id: str | None = None,
    ) -> None:
        """Forget a resource; with ``resource_id``, only if the row still has that id."""
        self._op.check_open()
        self._inputs_text(None, clears)
        with self._db.write() as conn:
            self._db.bump(self._stack)
            if resource_id is None:
                self._db.execute_after(self._noting(change), "DELETE FROM resources WHERE stack = ? AND urn = ?",
                                       (self._stack, urn))
            else:
                self._db.execute_after(self._noting(change), "DELETE FROM resources WHERE stack = ? AND urn = ?"
                                       " AND id = ?", (self._stack, urn, resource_id))
            if clears is not None:
                conn.execute(DELETE_PENDING, (self._stack, clears))
        self._committed()
        self._note(change)

    def clear_pending(self, token: str, change: Change | None = None) -> None:
        self._op.check_open()
        self._inputs_text(None, token)
        with self._db.write():
            self._db.bump(self._stack)
            self._db.execute_after(self._noting(change), DELETE_PENDING, (self._stack, token))
        self._committed()
        self._note(change)

    def rename_resource(self, old_urn: str, new_urn: str) -> None:
        """Move a record to a new URN, and the parent/deps references that name it."""
        self._op.check_open()
        if old_urn == new_urn:
            return
        with self._db.write() as conn:
            self._db.bump(self._stack)
            if conn.execute("SELECT 1 FROM resources WHERE stack = ? AND urn = ?",
                            (self._stack, new_urn)).fetchone():
                raise StateError(
                    f"cannot move {old_urn} to {new_urn}: a resource is already recorded there",
                    hint="remove one of the aliases",
                )
            self._db.execute_after(self._noting(), "UPDATE resources SET urn = ? WHERE stack = ? AND urn = ?",
                                   (new_urn, self._stack, old_urn))
            conn.execute("UPDATE resources SET parent = ? WHERE stack = ? AND parent = ?",
                         (new_urn, self._stack, old_urn))
            self._rename_deps(conn, old_urn, new_urn)

    def _rename_deps(self, conn: Any, old_urn: str, new_urn: str) -> None:
        order, find = self._db.dialect_order, self._db.dialect_find
        rows = conn.execute(
            f"SELECT {order}, deps FROM resources WHERE stack = ? AND {find}(deps, ?) > 0",
            (self._stack, json.dumps(old_urn))).fetchall()
        for key, deps in rows:
            moved = [new_urn if d == old_urn else d for d in loads(deps)]
            conn.execute(f"UPDATE resources SET deps = ? WHERE {order} = ?", (dumps(moved), key))

    def add_change(self, change: Change) -> None:
        """Stored with the open operation by the next write (no commit of its own)."""
        self._op.check_open()
        self._op.note_unsaved(change)

    def finish(
        self, result: str, outputs: dict[str, Any] | None, message: str = ""
    ) -> Checkpoint | None:
        """Replace the outputs if given; write a checkpoint if anything changed or failed."""
        self._op.check_open()
        self._op.finished = True
        outputs_text = None if outputs is None else self._db.values.dumps(outputs)
        if not self._op.changes and result == "succeeded":
            if outputs_text is not None or self._opened:
                with self._db.write() as conn:
                    if outputs_text is not None:
                        self._replace_outputs(outputs_text)
                    if self._opened:
                        for statement in closing(self._stack, self._op.id):
                            conn.execute(*statement)
            return None
        changes_text = self._op.changes_json()
        with self._db.write():
            if outputs_text is not None:
                self._replace_outputs(outputs_text)
            closed = closing(self._stack, self._op.id) if self._opened else []
            return self._write_checkpoint(result, message, changes_text, closed)

    def _outputs_text(self, lock: bool = False) -> str:
        suffix = self._db.dialect_lock_row if lock else ""
        row = self._db.conn.execute(
            f"SELECT outputs FROM outputs WHERE stack = ?{suffix}", (self._stack,)).fetchone()
        if row is None:
            raise no_stack(self._stack)
        return str(row[0])

    def _replace_outputs(self, text: str) -> None:
        """Bumps the serial only when the outputs really differ."""
        if self._outputs_text(lock=True) != text:
            self._db.bump(self._stack)
            self._db.conn.execute("UPDATE outputs SET outputs = ? WHERE stack = ?", (text, self._stack))

    def _write_checkpoint(self, result: str, message: str, changes_text: str,
                          closed: list[Statement] | None = None) -> Checkpoint:
        conn = self._db.conn
        serial = self._db.serial(self._stack)
        outputs_text = self._outputs_text()
        with gc_paused():
            rows = conn.execute(
                f"SELECT {self._db.resource_columns()} FROM resources WHERE stack = ?"
                f" ORDER BY {self._db.dialect_order}", (self._stack,))
            blob = compress_snapshot(row_batches(rows), outputs_text)
        row = conn.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM checkpoints WHERE stack = ?",
                           (self._stack,)).fetchone()
        cp = Checkpoint(
            int(row[0]) if row else 1, self._op.kind, self._op.who, self._op.started_at, time.time(),
            result, dict(self._op.counts), message, serial,
        )
        self._db.execute_after(
            closed or [], "INSERT INTO checkpoints VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (self._stack, cp.number, cp.kind, cp.who, cp.started_at, cp.finished_at,
             cp.result, dumps(cp.counts), cp.message, cp.serial, changes_text, blob))
        return cp


if TYPE_CHECKING:
    def _implements(s: SqlStateStore, w: SqlStackWriter) -> tuple[StateStore, StackWriter]:
        """mypy proof that both classes satisfy the protocols in ``store.py``."""
        return s, w
