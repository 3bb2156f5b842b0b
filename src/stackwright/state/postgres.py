"""The PostgreSQL state store: one database shared by every runner of a team.

Same semantics as the SQLite store (``state/sqlite.py``, the reference): a schema
version refused when newer, a lineage and a serial per stack that every state write
bumps (a ``batch()`` once per stack), pending operations cleared in the transaction
that records the outcome, compressed checkpoint snapshots, an append-only event log
and an exclusive lock per stack. Values are stored in exactly the same text form
(``state/codec.py``), so a row means the same thing in either database.

Each project keeps its tables in its own PostgreSQL schema (``stackwright_<project>``
when opened for a project), so projects of a workspace can share one database. A
committed transaction survives the process being killed (PostgreSQL's default
``synchronous_commit``): the store's durability contract.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from stackwright.errors import StateError
from stackwright.state.codec import (
    Corrupt, change_json, checkpoint_detail, checkpoint_row, compress_snapshot, dumps,
    gc_paused, loads, lock_held, no_stack, pending_row, resource_params, resource_rows,
)
from stackwright.state.records import (
    SCHEMA_VERSION, Change, Checkpoint, CheckpointDetail, Event, LockInfo, PendingOperation,
    ResourceState, Snapshot, StackInfo,
)

if TYPE_CHECKING:
    from stackwright.state.store import StackWriter, StateStore

DEFAULT_SCHEMA: Final = "stackwright"
_CONNECT_TIMEOUT_S: Final = 10
_MAX_IDENTIFIER: Final = 63

_SCHEMA_V1: Final = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE stacks (
        name TEXT PRIMARY KEY, lineage TEXT NOT NULL, serial BIGINT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION)""",
    "CREATE TABLE outputs (stack TEXT PRIMARY KEY, outputs TEXT NOT NULL)",
    """CREATE TABLE resources (
        seq BIGINT GENERATED ALWAYS AS IDENTITY,
        stack TEXT NOT NULL, urn TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL,
        inputs TEXT NOT NULL, outputs TEXT NOT NULL, parent TEXT, deps TEXT NOT NULL,
        protect INTEGER NOT NULL, retain_on_delete INTEGER NOT NULL,
        external INTEGER NOT NULL, PRIMARY KEY (stack, urn))""",
    "CREATE INDEX resources_in_order ON resources (stack, seq)",
    """CREATE TABLE pending (
        seq BIGINT GENERATED ALWAYS AS IDENTITY,
        stack TEXT NOT NULL, token TEXT NOT NULL, urn TEXT NOT NULL, type TEXT NOT NULL,
        op TEXT NOT NULL, inputs TEXT NOT NULL, resource_id TEXT, parent TEXT,
        deps TEXT NOT NULL, started_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (stack, token))""",
    """CREATE TABLE locks (
        stack TEXT PRIMARY KEY, owner TEXT NOT NULL, pid INTEGER NOT NULL,
        host TEXT NOT NULL, acquired_at DOUBLE PRECISION NOT NULL, operation TEXT NOT NULL,
        token TEXT NOT NULL)""",
    """CREATE TABLE checkpoints (
        stack TEXT NOT NULL, number INTEGER NOT NULL, kind TEXT NOT NULL,
        who TEXT NOT NULL, started_at DOUBLE PRECISION NOT NULL,
        finished_at DOUBLE PRECISION NOT NULL, result TEXT NOT NULL, counts TEXT NOT NULL,
        message TEXT NOT NULL, serial BIGINT NOT NULL, changes TEXT NOT NULL,
        snapshot BYTEA NOT NULL, PRIMARY KEY (stack, number))""",
)
_SCHEMA_V2: Final = (
    """CREATE TABLE events (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, stack TEXT NOT NULL,
        kind TEXT NOT NULL, who TEXT NOT NULL, at DOUBLE PRECISION NOT NULL,
        data TEXT NOT NULL)""",
    "CREATE INDEX events_by_stack ON events (stack, kind)",
)
_MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {0: _SCHEMA_V1, 1: _SCHEMA_V2}
"""Statements that take the schema from version ``n`` to ``n + 1`` (0 = empty schema)."""

_RESOURCE_COLUMNS: Final = (
    "urn, type, id, inputs, outputs, parent, deps, protect, retain_on_delete, external"
)
_UPSERT_RESOURCE: Final = f"""
    INSERT INTO resources (stack, {_RESOURCE_COLUMNS})
    VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)
    ON CONFLICT (stack, urn) DO UPDATE SET type = excluded.type, id = excluded.id,
        inputs = excluded.inputs, outputs = excluded.outputs, parent = excluded.parent,
        deps = excluded.deps, protect = excluded.protect,
        retain_on_delete = excluded.retain_on_delete, external = excluded.external"""
_SELECT_RESOURCES: Final = (
    f"SELECT {_RESOURCE_COLUMNS} FROM resources WHERE stack = %s ORDER BY seq"
)
_PENDING_COLUMNS: Final = (
    "token, urn, type, op, inputs, resource_id, parent, deps, started_at"
)
_CHECKPOINT_COLUMNS: Final = (
    "number, kind, who, started_at, finished_at, result, counts, message, serial"
)
_LOCK_COLUMNS: Final = "owner, pid, host, acquired_at, operation, token"
_BUMP: Final = "UPDATE stacks SET serial = serial + 1, updated_at = %s WHERE name = %s"
_DELETE_PENDING: Final = "DELETE FROM pending WHERE stack = %s AND token = %s"


def shown_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (for messages)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            userinfo, _, host = netloc.rpartition("@")
            netloc = f"{userinfo.partition(':')[0]}:***@{host}"
        query = parts.query
        if "password" in query.lower():
            query = urlencode([(k, "***" if k.lower() == "password" else v)
                               for k, v in parse_qsl(query, keep_blank_values=True)])
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        return "<unparseable PostgreSQL URL>"


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def schema_for(project: str | None) -> str:
    """The PostgreSQL schema holding a project's tables."""
    name = DEFAULT_SCHEMA if not project else f"{DEFAULT_SCHEMA}_{project}"
    if len(name.encode()) > _MAX_IDENTIFIER:
        raise StateError(
            f"project name {project!r} is too long for a PostgreSQL schema name "
            f"({_MAX_IDENTIFIER} bytes with the {DEFAULT_SCHEMA}_ prefix)",
            hint="shorten the project name in stackwright.yaml")
    return name


class _Db:
    """The connection plus the transaction and error plumbing shared by store and writers."""

    def __init__(self, url: str, schema: str) -> None:
        self.url = url
        self.shown = shown_url(url)
        self.schema = schema
        self.depth = 0
        self.batched: set[str] | None = None
        options: dict[str, Any] = {"autocommit": True, "application_name": "stackwright"}
        if "connect_timeout" not in url:
            options["connect_timeout"] = _CONNECT_TIMEOUT_S
        try:
            self.conn = psycopg.connect(url, **options)
        except psycopg.Error as exc:
            raise StateError(
                f"cannot connect to the PostgreSQL state store {self.shown}: "
                f"{self._scrub(str(exc).strip())}",
                hint="check STACKWRIGHT_STATE_URL (or `state: url:` in stackwright.yaml): "
                "host, port, database, user and password, and that the server is reachable",
            ) from None
        try:
            with self.guard():
                self.conn.execute(
                    sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
                self._open()
        except BaseException:
            self.conn.close()
            raise

    def _scrub(self, text: str) -> str:
        password = _password(self.url)
        return text.replace(password, "***") if password else text

    @property
    def where(self) -> str:
        return f"PostgreSQL state store {self.shown} (schema {self.schema})"

    def _open(self) -> None:
        """Check the version read-only first, so a newer or foreign schema is never touched."""
        with self.read():
            found = self._schema_version()
        if found >= SCHEMA_VERSION:
            return
        with self.write() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.schema,))
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
            found = self._schema_version()  # another runner may have migrated meanwhile
            for version in range(found, SCHEMA_VERSION):
                for statement in _MIGRATIONS[version]:
                    conn.execute(statement.encode())
            if found < SCHEMA_VERSION:
                conn.execute(
                    "INSERT INTO meta VALUES ('schema_version', %s) ON CONFLICT (key)"
                    " DO UPDATE SET value = excluded.value", (str(SCHEMA_VERSION),))

    def _schema_version(self) -> int:
        """0 for an empty (or missing) schema; raises for a newer or foreign one."""
        tables = {r[0] for r in self.conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (self.schema,))}
        if "meta" not in tables:
            if tables:
                raise StateError(
                    f"schema {self.schema} of {self.shown} holds tables but is not "
                    "stackwright state",
                    hint="point stackwright at its own database; this one was left unchanged",
                )
            return 0
        row = self.conn.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        try:
            version = int(row[0]) if row is not None else None
        except (TypeError, ValueError):
            version = None
        if version is None:
            raise Corrupt("its schema version is missing or unreadable")
        if version > SCHEMA_VERSION:
            raise StateError(
                f"{self.where} has schema version {version}, newer than the "
                f"version {SCHEMA_VERSION} this stackwright understands",
                hint="upgrade stackwright to use it; the database was left unchanged",
            )
        return version

    def corrupt(self, detail: str) -> StateError:
        return StateError(
            f"{self.where} is corrupt: {detail}",
            hint="restore it from a backup; stackwright will not modify or repair it",
        )

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Turn database and decode failures into StateError naming the database."""
        try:
            yield
        except Corrupt as exc:
            raise self.corrupt(str(exc)) from None
        except psycopg.OperationalError as exc:
            raise StateError(
                f"{self.where}: {self._scrub(str(exc).strip())}",
                hint="check that the PostgreSQL server is reachable, then try again",
            ) from exc
        except psycopg.Error as exc:
            raise StateError(f"{self.where}: {self._scrub(str(exc).strip())}") from exc

    @contextmanager
    def read(self) -> Iterator[psycopg.Connection[Any]]:
        """One read transaction (repeatable read), so multi-table reads see one commit."""
        if self.depth:
            yield self.conn
            return
        with self.guard(), self.conn.transaction():
            self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield self.conn

    @contextmanager
    def write(self) -> Iterator[psycopg.Connection[Any]]:
        """One committed write. Nested inside another ``write()`` (a writer's
        ``batch()``), it joins the outer transaction, which commits once for all."""
        if self.depth:
            yield self.conn
            return
        with self.guard():
            self.depth += 1
            try:
                with self.conn.transaction():
                    yield self.conn
            finally:
                self.depth -= 1

    def bump(self, stack: str) -> None:
        """Advance the stack's serial; also the existence check of every state write.
        The row lock it takes serialises concurrent writers of one stack."""
        if self.batched is not None:
            self.batched.add(stack)
            return
        if self.conn.execute(_BUMP, (time.time(), stack)).rowcount != 1:
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
        row = self.conn.execute("SELECT serial FROM stacks WHERE name = %s", (stack,)).fetchone()
        if row is None:
            raise no_stack(stack)
        return int(row[0])

    def require(self, stack: str) -> None:
        self.serial(stack)


class PostgresStateStore:
    """``StateStore`` over a PostgreSQL database (``postgresql://user:pw@host/db``)."""

    def __init__(self, url: str, schema: str = DEFAULT_SCHEMA) -> None:
        self.url = url
        self._db = _Db(url, schema)
        self._closed = False

    def __enter__(self) -> PostgresStateStore:
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
            if conn.execute("SELECT 1 FROM stacks WHERE name = %s", (stack,)).fetchone():
                raise StateError(
                    f"stack {stack!r} already exists", hint="stackwright stack ls")
            conn.execute(
                "INSERT INTO stacks VALUES (%s, %s, 0, %s, NULL)",
                (stack, str(uuid.uuid4()), time.time()))
            conn.execute("INSERT INTO outputs VALUES (%s, '{}')", (stack,))

    def stack_exists(self, stack: str) -> bool:
        with self._db.guard():
            row = self._db.conn.execute(
                "SELECT 1 FROM stacks WHERE name = %s", (stack,)).fetchone()
        return row is not None

    def remove_stack(self, stack: str, force: bool = False) -> None:
        with self._db.write() as conn:
            self._db.require(stack)
            row = conn.execute(
                "SELECT COUNT(*) FROM resources WHERE stack = %s", (stack,)).fetchone()
            count = int(row[0]) if row else 0
            if count and not force:
                raise StateError(
                    f"stack {stack!r} still has {count} resources",
                    hint="run `stackwright destroy` first, or force the removal to forget "
                    "them (the cloud resources are left running)",
                )
            for table in ("resources", "pending", "locks", "checkpoints", "outputs"):
                conn.execute(
                    sql.SQL("DELETE FROM {} WHERE stack = %s").format(sql.Identifier(table)),
                    (stack,))
            conn.execute("DELETE FROM stacks WHERE name = %s", (stack,))

    def snapshot(self, stack: str) -> Snapshot:
        with gc_paused():
            with self._db.read() as conn:
                row = conn.execute(
                    "SELECT lineage, serial, outputs FROM stacks JOIN outputs ON stack = name"
                    " WHERE name = %s", (stack,)).fetchone()
                if row is None:
                    raise no_stack(stack)
                resources = conn.execute(_SELECT_RESOURCES, (stack,)).fetchall()
                pending = conn.execute(
                    f"SELECT {_PENDING_COLUMNS} FROM pending WHERE stack = %s ORDER BY seq",
                    (stack,)).fetchall()
            with self._db.guard():
                return Snapshot(
                    stack=stack, lineage=row[0], serial=int(row[1]),
                    resources=resource_rows(resources),
                    outputs=loads(row[2]), pending=[pending_row(p) for p in pending],
                )

    def pending_count(self, stack: str) -> int:
        with self._db.read() as conn:
            self._db.require(stack)
            row = conn.execute(
                "SELECT count(*) FROM pending WHERE stack = %s", (stack,)).fetchone()
        return int(row[0]) if row else 0

    def acquire_lock(self, stack: str, info: LockInfo) -> None:
        """Take the lock: a row inserted in a transaction; a unique violation means another
        holder got there first. An empty ``info.token`` is filled in."""
        if not info.token:
            info.token = uuid.uuid4().hex
        params = (stack, info.owner, info.pid, info.host, info.acquired_at,
                  info.operation, info.token)
        with self._db.write() as conn:
            self._db.require(stack)
            held = self._lock(stack)
            if held is not None:
                if held.token != info.token:
                    raise lock_held(stack, held)
                conn.execute("DELETE FROM locks WHERE stack = %s", (stack,))
            try:
                with conn.transaction():  # a savepoint: the violation leaves the rest usable
                    conn.execute("INSERT INTO locks VALUES (%s, %s, %s, %s, %s, %s, %s)", params)
            except psycopg.errors.UniqueViolation:
                held = self._lock(stack)  # committed by the winner: visible to this statement
                if held is None:
                    raise StateError(
                        f"the lock of stack {stack!r} changed hands while taking it",
                        hint="try again") from None
                raise lock_held(stack, held) from None

    def release_lock(self, stack: str, token: str) -> None:
        """No-op if the lock was broken and possibly re-taken by someone else."""
        with self._db.write() as conn:
            conn.execute("DELETE FROM locks WHERE stack = %s AND token = %s", (stack, token))

    def read_lock(self, stack: str) -> LockInfo | None:
        with self._db.read():
            self._db.require(stack)
            return self._lock(stack)

    def break_lock(self, stack: str) -> LockInfo | None:
        with self._db.write() as conn:
            self._db.require(stack)
            held = self._lock(stack)
            conn.execute("DELETE FROM locks WHERE stack = %s", (stack,))
        return held

    def _lock(self, stack: str) -> LockInfo | None:
        row = self._db.conn.execute(
            f"SELECT {_LOCK_COLUMNS} FROM locks WHERE stack = %s", (stack,)).fetchone()
        return None if row is None else LockInfo(*row)

    def begin(self, stack: str, kind: str, who: str) -> PostgresStackWriter:
        with self._db.guard():
            self._db.require(stack)
        return PostgresStackWriter(self._db, stack, kind, who)

    def history(self, stack: str) -> list[Checkpoint]:
        """Oldest first; never reads the snapshot blobs."""
        with self._db.read() as conn:
            self._db.require(stack)
            rows = conn.execute(
                f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints WHERE stack = %s"
                " ORDER BY number", (stack,)).fetchall()
        with self._db.guard():
            return [checkpoint_row(r) for r in rows]

    def checkpoint(self, stack: str, number: int) -> CheckpointDetail:
        with self._db.read() as conn:
            self._db.require(stack)
            row = conn.execute(
                f"SELECT {_CHECKPOINT_COLUMNS}, changes, snapshot FROM checkpoints"
                " WHERE stack = %s AND number = %s", (stack, number)).fetchone()
        if row is None:
            raise StateError(
                f"stack {stack!r} has no checkpoint {number}", hint="stackwright history")
        with self._db.guard(), gc_paused():
            return checkpoint_detail(row)

    def record_event(self, stack: str, kind: str, who: str, data: dict[str, Any]) -> Event:
        at = time.time()
        with self._db.write() as conn:
            row = conn.execute(
                "INSERT INTO events (stack, kind, who, at, data) VALUES (%s,%s,%s,%s,%s)"
                " RETURNING id", (stack, kind, who, at, dumps(data))).fetchone()
        return Event(int(row[0]) if row else 0, stack, kind, who, at, dict(data))

    def events(self, stack: str | None = None, kinds: tuple[str, ...] = ()) -> list[Event]:
        query, params = "SELECT id, stack, kind, who, at, data FROM events", list[Any]()
        clauses = []
        if stack is not None:
            clauses.append("stack = %s")
            params.append(stack)
        if kinds:
            clauses.append("kind = ANY(%s)")
            params.append(list(kinds))
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        with self._db.read() as conn:
            rows = conn.execute((query + " ORDER BY id").encode(), params).fetchall()
        with self._db.guard():
            return [Event(int(r[0]), r[1], r[2], r[3], float(r[4]), loads(r[5])) for r in rows]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._db.conn.close()


class PostgresStackWriter:
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
            self._stack, op.token, op.urn, op.type, op.op, dumps(op.inputs),
            op.resource_id, op.parent, dumps(op.deps), op.started_at,
        )
        with self._db.write() as conn:
            self._db.bump(self._stack)
            conn.execute(_DELETE_PENDING, (self._stack, op.token))
            conn.execute(
                f"INSERT INTO pending (stack, {_PENDING_COLUMNS})"
                " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", params)

    def record_resource(
        self, resource: ResourceState, change: Change | None, clears: str | None = None
    ) -> None:
        """Insert or replace a resource; clear pending op ``clears`` in the same commit."""
        self._check_open()
        params = resource_params(self._stack, resource)
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
                    "DELETE FROM resources WHERE stack = %s AND urn = %s", (self._stack, urn))
            else:
                conn.execute(
                    "DELETE FROM resources WHERE stack = %s AND urn = %s AND id = %s",
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
                "SELECT 1 FROM resources WHERE stack = %s AND urn = %s", (self._stack, new_urn)
            ).fetchone():
                raise StateError(
                    f"cannot move {old_urn} to {new_urn}: a resource is already recorded there",
                    hint="remove one of the aliases",
                )
            conn.execute(
                "UPDATE resources SET urn = %s WHERE stack = %s AND urn = %s",
                (new_urn, self._stack, old_urn))
            conn.execute(
                "UPDATE resources SET parent = %s WHERE stack = %s AND parent = %s",
                (new_urn, self._stack, old_urn))
            rows = conn.execute(
                "SELECT seq, deps FROM resources WHERE stack = %s AND strpos(deps, %s) > 0",
                (self._stack, json.dumps(old_urn))).fetchall()
            for seq, deps in rows:
                moved = [new_urn if d == old_urn else d for d in loads(deps)]
                conn.execute("UPDATE resources SET deps = %s WHERE seq = %s", (dumps(moved), seq))

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
        outputs_text = None if outputs is None else dumps(outputs)
        if not self._changes and result == "succeeded":
            if outputs_text is not None:
                with self._db.write():
                    self._replace_outputs(outputs_text)
            return None
        changes_text = dumps([change_json(c) for c in self._changes])
        with self._db.write():
            if outputs_text is not None:
                self._replace_outputs(outputs_text)
            return self._write_checkpoint(result, message, changes_text)

    def _replace_outputs(self, text: str) -> None:
        """Bumps the serial only when the outputs really differ."""
        row = self._db.conn.execute(
            "SELECT outputs FROM outputs WHERE stack = %s FOR UPDATE", (self._stack,)).fetchone()
        if row is None:
            raise no_stack(self._stack)
        if row[0] != text:
            self._db.bump(self._stack)
            self._db.conn.execute(
                "UPDATE outputs SET outputs = %s WHERE stack = %s", (text, self._stack))

    def _write_checkpoint(self, result: str, message: str, changes_text: str) -> Checkpoint:
        conn = self._db.conn
        serial = self._db.serial(self._stack)
        row = conn.execute(
            "SELECT outputs FROM outputs WHERE stack = %s", (self._stack,)).fetchone()
        if row is None:
            raise no_stack(self._stack)
        with gc_paused():
            rows = conn.execute(_SELECT_RESOURCES, (self._stack,)).fetchall()
            blob = compress_snapshot(rows, row[0])
            del rows
        number_row = conn.execute(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM checkpoints WHERE stack = %s",
            (self._stack,)).fetchone()
        number = int(number_row[0]) if number_row else 1
        cp = Checkpoint(
            number, self._kind, self._who, self._started_at, time.time(), result,
            dict(self._counts), message, serial,
        )
        conn.execute(
            "INSERT INTO checkpoints VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            (self._stack, cp.number, cp.kind, cp.who, cp.started_at, cp.finished_at,
             cp.result, dumps(cp.counts), cp.message, cp.serial, changes_text, blob))
        return cp


if TYPE_CHECKING:
    def _implements(
        s: PostgresStateStore, w: PostgresStackWriter,
    ) -> tuple[StateStore, StackWriter]:
        """mypy proof that both classes satisfy the protocols in ``store.py``."""
        return s, w
