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

import functools
import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from stackwright.errors import StateError
from stackwright.state.codec import Corrupt
from stackwright.state.open_operation import Statement
from stackwright.state.records import SCHEMA_VERSION, EventNotice
from stackwright.state.sql_store import SqlDb, SqlStateStore

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
_SCHEMA_V3: Final = ("ALTER TABLE resources ADD COLUMN options TEXT NOT NULL DEFAULT '{}'",)
_SCHEMA_V4: Final = (
    """CREATE TABLE operations (
        stack TEXT PRIMARY KEY, id TEXT NOT NULL, kind TEXT NOT NULL, who TEXT NOT NULL,
        started_at DOUBLE PRECISION NOT NULL, holder TEXT NOT NULL)""",
    """CREATE TABLE operation_changes (
        seq BIGINT GENERATED ALWAYS AS IDENTITY, stack TEXT NOT NULL, operation TEXT NOT NULL,
        changes TEXT NOT NULL)""",
)
_MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {0: _SCHEMA_V1, 1: _SCHEMA_V2, 2: _SCHEMA_V3, 3: _SCHEMA_V4}
"""Statements that take the schema from version ``n`` to ``n + 1`` (0 = empty schema)."""
_TABLES_IN_SCHEMA: Final = (
    "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = ? AND c.relkind IN ('r', 'p', 'v', 'f')")
"""The schema's tables and views, from the catalog: a third of the server's work of
``information_schema.tables`` on a new connection (each worker of a run opens several)."""

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


EVENTS_CHANNEL: Final = "stackwright_events"
_NOTICE_MAX: Final = 7000
"""A notice that would be longer (a very long stack name) names the schema only:
PostgreSQL refuses notices over 8,000 bytes."""


def _notice(payload: str) -> EventNotice | None:
    """The notice ``event_params`` sent; None for any other (an older version's, or one
    sent by hand)."""
    try:
        schema, stack, kind = json.loads(payload)
    except (ValueError, TypeError):
        return None
    if not all(isinstance(part, str) for part in (schema, stack, kind)):
        return None
    return EventNotice(schema, stack, kind)


class _QmarkConnection:
    """A store's statements, taking the ``?`` placeholders the shared SQL is written with,
    on the connection the store uses, its ``search_path`` naming the store's schema."""

    def __init__(self, db: _Db) -> None:
        self.db = db

    def execute(self, query: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.db.session().execute(_qmark(query), params)


class _Link:
    """A connection to one database, shared by the stores that one thread opened on it
    (the projects of a workspace keep their schemas in one database): a process running
    several projects holds one server process per thread instead of one per project,
    and a new store costs a schema switch instead of a connection (~5 ms of CPU against
    15). ``schema``: what its ``search_path`` names now; ``busy``: the store whose
    transaction is open on it. A store used from another thread, or while another
    store's transaction is open on the link, or waiting for notices, goes on on a
    connection of its own, as every store did before: transactions of two stores never
    share a connection, and no thread waits on another's."""

    def __init__(self, raw: psycopg.Connection[Any], thread: int | None) -> None:
        self.raw = raw
        self.thread = thread
        """The thread whose stores share it; None for a store's own connection."""
        self.schema: str | None = None
        self.busy: _Db | None = None
        self.users = 1
        self.listening = False


_LINKS: dict[tuple[str, int, int], _Link] = {}
"""The shared connections, by URL, process and thread."""
_LINKS_LOCK = threading.Lock()


@functools.lru_cache(maxsize=512)
def _qmark(query: str) -> bytes:
    """``?`` placeholders as psycopg's ``%s`` (the shared SQL holds no literal ``%``)."""
    return query.replace("?", "%s").encode()


class _Db(SqlDb):
    """One PostgreSQL schema: connection, transactions and error translation."""

    dialect_order = "seq"
    dialect_find = "strpos"
    dialect_lock_row = " FOR UPDATE"
    kind = "database"
    insert_event = ("WITH made AS (INSERT INTO events (stack, kind, who, at, data) VALUES (?,?,?,?,?)"
                    " RETURNING id) SELECT id, pg_notify(?, ?) FROM made")

    def __init__(self, url: str, schema: str, read_only: bool = False) -> None:
        super().__init__(read_only)
        self.url = url
        self.shown = shown_url(url)
        self.schema = schema
        self.where = f"PostgreSQL state store {self.shown} (schema {schema})"
        self.key = (url, os.getpid(), threading.get_ident())
        self.closed = False
        self.link = self._shared_link()
        self.conn = _QmarkConnection(self)
        try:
            with self.guard():
                self._open()
        except BaseException:
            self.close()
            raise

    @property
    def raw(self) -> psycopg.Connection[Any]:
        return self.link.raw

    def _connect(self) -> psycopg.Connection[Any]:
        options: dict[str, Any] = {"autocommit": True, "application_name": "stackwright"}
        if "connect_timeout" not in self.url:
            options["connect_timeout"] = _CONNECT_TIMEOUT_S
        try:
            return psycopg.connect(self.url, **options)
        except psycopg.Error as exc:
            raise StateError(
                f"cannot connect to the PostgreSQL state store {self.shown}: "
                f"{self._scrub(' '.join(str(exc).split()))}",
                hint="check STACKWRIGHT_STATE_URL (or `state: url:` in stackwright.yaml): "
                "host, port, database, user and password, and that the server is reachable",
            ) from None

    def _shared_link(self) -> _Link:
        """This thread's connection to the database, made if there is none (or it was
        closed or broke)."""
        with _LINKS_LOCK:
            link = _LINKS.get(self.key)
            if link is not None and not (link.raw.closed or link.raw.broken):
                link.users += 1
                return link
        fresh = _Link(self._connect(), self.key[2])  # outside the lock: the key is this thread's
        with _LINKS_LOCK:
            _LINKS[self.key] = fresh
        return fresh

    def session(self) -> psycopg.Connection[Any]:
        """The connection, its ``search_path`` set to this store's schema. A shared
        connection in another store's transaction is left to that one, and another
        thread's to that thread: this store goes on on a connection of its own (its
        writes must commit when its own transaction ends, not with the other's). Never
        while this store's own transaction is open."""
        if self.closed:
            raise StateError(f"{self.where}: the store was closed")
        link = self.link
        if link.thread is not None and link.busy is not self and (
                link.busy is not None or link.thread != threading.get_ident()):
            self._go_alone(link)
        link = self.link
        if link.schema != self.schema:
            link.schema = None  # unknown until the server has answered
            with self.guard():
                link.raw.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
            link.schema = self.schema
        return link.raw

    def _go_alone(self, shared: _Link) -> None:
        alone = _Link(self._connect(), None)
        with _LINKS_LOCK:
            moved = self.link is shared
            if moved:
                self.link = alone
        if not moved:  # another thread moved this store meanwhile
            alone.raw.close()
            return
        self._leave(shared)

    def listen(self) -> None:
        """Listen for notices from now on, on a connection of the store's own (a waiter
        may wait in a thread of its own while the others work)."""
        if self.depth or self.link.busy is self:
            raise RuntimeError(f"{self.where}: waiting for notices inside a transaction of the same store")
        if self.link.thread is not None:
            self._go_alone(self.link)
        self.session().execute(sql.SQL("LISTEN {}").format(sql.Identifier(EVENTS_CHANNEL)))
        self.link.listening = True

    @contextmanager
    def _holding(self) -> Iterator[None]:
        """The link is this store's from here to the end of its transaction."""
        self.session()
        self.link.busy = self
        try:
            yield
        finally:
            self.link.busy = None

    def event_params(self, params: tuple[Any, ...]) -> tuple[Any, ...]:
        """The event, and the notice of it (``PostgresStateStore.wait_for_events``): its
        schema, stack and kind, as JSON. Never its data: every session of the database
        can listen, and anyone able to connect can send a notice, so a notice only says
        where to read."""
        stack, kind = params[0], params[1]
        notice = json.dumps([self.schema, stack, kind])
        if len(notice.encode()) > _NOTICE_MAX:
            notice = json.dumps([self.schema])  # says only where: waiters read the events
        return (*params, EVENTS_CHANNEL, notice)

    def _scrub(self, text: str) -> str:
        password = _password(self.url)
        return text.replace(password, "***") if password else text

    def _open(self) -> None:
        """Check the version read-only first, so a newer or foreign schema is never touched."""
        with self.read():
            found = self._schema_version()
        if found >= SCHEMA_VERSION:
            return
        if self.read_only:
            if found == 0:
                raise StateError(f"{self.where} holds no stackwright state yet",
                                 hint="read-only mode cannot create it: run once with write access")
            self.version = found
            return
        with self.write() as conn:
            # Each statement sees what committed before it, whatever the database's
            # default isolation: another runner may create the schema while this one
            # waits for the lock.
            conn.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (self.schema,))
            # Asked of the catalog, not left to IF NOT EXISTS: a session that looked the
            # schema up before another created it (setting search_path does) may still
            # take it for missing, and fail creating it.
            if conn.execute("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = ?",
                            (self.schema,)).fetchone() is None:
                self.raw.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
            found = self._schema_version()  # another runner may have migrated meanwhile
            for version in range(found, SCHEMA_VERSION):
                for statement in _MIGRATIONS[version]:
                    conn.execute(statement)
            if found < SCHEMA_VERSION:
                conn.execute(
                    "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT (key)"
                    " DO UPDATE SET value = excluded.value", (str(SCHEMA_VERSION),))

    def _schema_version(self) -> int:
        """0 for an empty (or missing) schema; raises for a newer or foreign one."""
        tables = {r[0] for r in self.conn.execute(_TABLES_IN_SCHEMA, (self.schema,))}
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
        return self.stored_version(row[0] if row is not None else None)

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
    def read(self) -> Iterator[_QmarkConnection]:
        """One read transaction (repeatable read), so multi-table reads see one commit."""
        if self.depth:
            yield self.conn
            return
        with self.guard(), self._holding():
            self._begin_reads(True)
            try:
                with self.raw.transaction():  # BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY
                    yield self.conn
            finally:
                if self.raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                    self._begin_reads(False)

    def _begin_reads(self, reading: bool) -> None:
        """Make the next BEGIN start a read (one statement, no round trip of its own for
        ``SET TRANSACTION``), or a write again."""
        self.raw.read_only = True if reading else None
        self.raw.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ if reading else None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._holding(), self.raw.transaction():
            yield

    def execute_after(self, first: list[Statement], query: str, params: tuple[Any, ...]) -> Any:
        """``first`` and ``query`` as one statement: each of ``first`` in a ``WITH``
        (PostgreSQL runs a data-modifying ``WITH`` whether or not the query reads it)."""
        if not first:
            return self.conn.execute(query, params)
        ahead = ", ".join(f"w{n} AS ({text})" for n, (text, _) in enumerate(first))
        values = tuple(value for _, args in first for value in args)
        return self.conn.execute(f"WITH {ahead} {query}", (*values, *params))

    def insert_lock(self, params: tuple[Any, ...]) -> bool:
        """Losing the race inserts nothing and leaves the transaction usable (no
        savepoint, so no round trips of its own)."""
        done = self.conn.execute("INSERT INTO locks VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", params)
        return bool(done.rowcount == 1)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._leave(self.link)

    def _leave(self, link: _Link) -> None:
        """This store no longer uses ``link``; the last one to leave closes it."""
        with _LINKS_LOCK:
            link.users -= 1
            if link.users > 0:
                return
            if _LINKS.get(self.key) is link:
                del _LINKS[self.key]
        link.raw.close()


class PostgresStateStore(SqlStateStore):
    """``StateStore`` over a PostgreSQL database (``postgresql://user:pw@host/db``).

    Recording an event notifies every process listening on the database (``pg_notify``
    in the same statement, delivered on commit), so that ``wait_for_events`` wakes a waiter at once instead of when its
    next poll comes (sharded runs wait on each other's run events)."""

    def __init__(self, url: str, schema: str = DEFAULT_SCHEMA, read_only: bool = False) -> None:
        self.url = url
        self.schema = schema
        self._pg = _Db(url, schema, read_only)
        super().__init__(self._pg)

    def wait_for_events(self, timeout: float) -> list[EventNotice | None]:
        """The events recorded in this database (any schema, by any process) since the
        previous call, in the order they were committed, once there is at least one or
        after ``timeout`` seconds (then none). The first call starts listening and
        returns none at once: what was recorded before it, the caller reads. From then
        on the store has a connection of its own, which listens: notices that arrive
        while it runs queries are kept until the next call. An event whose notice this
        version did not send is None."""
        with self._pg.guard():
            if not self._pg.link.listening:
                self._pg.listen()
                return []
            raw = self._pg.raw
            got = [_notice(n.payload) for n in raw.notifies(timeout=timeout, stop_after=1)]
            if got:
                got += [_notice(n.payload) for n in raw.notifies(timeout=0.0)]
            return got

    def hears(self, other: object) -> str | None:
        """The schema under which ``other``'s events reach this store's waiter: its own,
        when it is a store of the same database; else None."""
        if isinstance(other, PostgresStateStore) and other.url == self.url:
            return other.schema
        return None

    def __enter__(self) -> PostgresStateStore:
        return self
