"""The embedded SQLite state store: the default backend, one file per project.

WAL with ``synchronous=NORMAL`` makes a committed write survive the process being
killed (the store's durability contract) without an fsync per commit. Every
``StackWriter`` call (``state/sql_store.py``) is one ``BEGIN IMMEDIATE`` transaction, so a crash leaves the
state at a call boundary, never half-way through one.

The stack ``serial`` identifies the content of a stack's state (resources, pending
operations, outputs): every write of that content bumps it. Lock rows and
checkpoint rows are bookkeeping about the state, so they leave it alone.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Final

from stackwright.errors import StateError
from stackwright.state.codec import Corrupt as _Corrupt
from stackwright.state.records import SCHEMA_VERSION
from stackwright.state.sql_store import SqlDb, SqlStateStore

_SQLITE_HEADER: Final = b"SQLite format 3\x00"
_HEADER_BYTES: Final = 100
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
_SCHEMA_V3: Final = ("ALTER TABLE resources ADD COLUMN options TEXT NOT NULL DEFAULT '{}'",)
_SCHEMA_V4: Final = (
    """CREATE TABLE operations (
        stack TEXT PRIMARY KEY, id TEXT NOT NULL, kind TEXT NOT NULL, who TEXT NOT NULL,
        started_at REAL NOT NULL, holder TEXT NOT NULL)""",
    "CREATE TABLE operation_changes (stack TEXT NOT NULL, operation TEXT NOT NULL, changes TEXT NOT NULL)",
)
"""The open operation of each stack (``state/open_operation.py``)."""
_READ_INDEXES: Final = ("CREATE INDEX IF NOT EXISTS resources_in_order ON resources (stack)",)
"""Indexes that only make reads faster: a file with or without them means the same to
every version, so the first write of this one adds them without a schema bump (which
would make an older stackwright refuse the file). ``resources_in_order`` reads a stack's
rows in recorded order (rowid within the stack) without sorting them in a temporary
tree, which made up a third of reading a 10,000-resource stack."""
_WAL_CHECKPOINT_PAGES: Final = 16384
"""Fold the WAL into the database every ~64 MiB instead of every 4 MiB: a checkpoint
fsyncs, and during a large apply it would otherwise land on the commit path every few
hundred steps. The WAL is folded in at the latest when the last connection closes."""

_MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {0: _SCHEMA_V1, 1: _SCHEMA_V2, 2: _SCHEMA_V3, 3: _SCHEMA_V4}
"""Statements that take the schema from version ``n`` to ``n + 1`` (0 = empty file)."""

class _Db(SqlDb):
    """One SQLite file: connection, transactions and error translation.

    Opening writes nothing: a missing file is read as an empty store held in memory
    (only ``materialise``, when a stack is created, makes the file), and an existing
    file is set to WAL and upgraded to this version's schema only before its first
    write. So read-only commands never create or modify state.

    SQLite folds the WAL into the file when the last connection to it closes, unless
    that connection is read-only. So a file whose WAL is there when it is opened (a
    killed ``up`` left its last commits in ``state.db-wal``, or another process is
    writing) is read through a read-only connection, which sees the WAL and leaves it
    as it is, replaced by a writable one before the first write. Without a WAL there
    is nothing to fold in, and a writable connection removes the ``-wal`` and ``-shm``
    files its reads made when it closes, where a read-only one would leave them.
    """

    def __init__(self, path: Path, read_only: bool = False) -> None:
        super().__init__(read_only)
        self.path = path
        self.where = f"state file {path}"
        self.kind = "file"
        self.version = SCHEMA_VERSION
        self.prepared = False
        self.in_memory = not _check_file(path)
        if not self.in_memory and not read_only:
            _private(path)
        self.writable = self.in_memory or not path.with_name(f"{path.name}-wal").exists()
        self.conn = self._connect(":memory:" if self.in_memory else path, writable=self.writable)
        try:
            with self.guard():
                if self.in_memory:
                    self._upgrade()
                else:
                    self._open()
        except BaseException:
            self.conn.close()
            raise

    def _connect(self, where: Path | str, *, writable: bool = True) -> sqlite3.Connection:
        try:
            if not writable:
                return sqlite3.connect(f"{Path(where).absolute().as_uri()}?mode=ro", uri=True, isolation_level=None,
                                       check_same_thread=False, timeout=_BUSY_TIMEOUT_MS / 1000)
            return sqlite3.connect(where, isolation_level=None, check_same_thread=False,
                                   timeout=_BUSY_TIMEOUT_MS / 1000)
        except sqlite3.Error as exc:
            raise StateError(f"cannot open state file {self.path}: {exc}") from exc

    def _open(self) -> None:
        """Check the version read-only, so a newer or foreign file is never touched."""
        self._settings()
        with self.read():
            self.version = self._schema_version()
        if self.version == 0:
            raise self.corrupt("it holds no stackwright tables")
        self.prepared = False

    def _settings(self) -> None:
        self.conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute(f"PRAGMA wal_autocheckpoint = {_WAL_CHECKPOINT_PAGES}")
        self.conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")

    def _become_writable(self) -> None:
        """The read-only connection replaced by a writable one (no transaction is open:
        a write starts only outside one)."""
        if self.writable:
            return
        conn = self._connect(self.path)
        self.conn.close()
        self.conn, self.writable = conn, True
        self._settings()

    def prepare_write(self) -> None:
        if self.in_memory or self.prepared:
            return
        self._become_writable()
        _drop_second_links(self.path)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self._upgrade()
        self.prepared = True

    def _upgrade(self) -> None:
        with self.transaction():
            found = self._schema_version()
            for version in range(found, SCHEMA_VERSION):
                for statement in _MIGRATIONS[version]:
                    self.conn.execute(statement)
            if found < SCHEMA_VERSION:
                self.conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            for statement in _READ_INDEXES:
                self.conn.execute(statement)
        self.version = SCHEMA_VERSION

    def materialise(self) -> None:
        """Make the file: built under a name of this process's own and linked into
        place, so a crash part-way never leaves an empty or half-made file under the
        real name, and a process making it at the same time (workers of a run starting
        together) never replaces the file another already wrote to: the first link wins,
        and the others open that file."""
        if not self.in_memory:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create {self.path.parent}: {exc}") from exc
        _drop_dead_builds(self.path)
        building = self.path.with_name(f"{self.path.name}{_BUILDING}{_host()}-{os.getpid()}-{os.urandom(4).hex()}")
        try:
            self._build(building)
            _link_unless_there(building, self.path)
        finally:
            building.unlink(missing_ok=True)
        self.conn.close()
        self.in_memory = False
        self.conn, self.writable = self._connect(self.path), True
        with self.guard():
            self._open()

    def _build(self, building: Path) -> None:
        _private(building)
        fresh = self._connect(building)
        try:
            with self.guard():
                fresh.execute("PRAGMA journal_mode = WAL")
                for version in range(SCHEMA_VERSION):
                    for statement in _MIGRATIONS[version]:
                        fresh.execute(statement)
                for statement in _READ_INDEXES:
                    fresh.execute(statement)
                fresh.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        finally:
            fresh.close()

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
        return self.stored_version(row[0] if row is not None else None)

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
        """One read transaction, so multi-table reads see a single commit (inside a write,
        that write's transaction)."""
        if self.depth:
            yield self.conn
            return
        with self.guard():
            self.conn.execute("BEGIN")
            try:
                yield self.conn
            finally:
                self._end("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """IMMEDIATE takes the write lock up front, so two writers never deadlock upgrading."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.conn.execute("COMMIT")
        except BaseException:
            self._end("ROLLBACK")
            raise

    def _end(self, verb: str) -> None:
        """Close a transaction without masking the error that got us here."""
        with suppress(sqlite3.Error):
            if self.conn.in_transaction:
                self.conn.execute(verb)

    def insert_lock(self, params: tuple[Any, ...]) -> bool:
        """BEGIN IMMEDIATE already serialises writers: the insert cannot lose a race."""
        self.conn.execute("INSERT INTO locks VALUES (?, ?, ?, ?, ?, ?, ?)", params)
        return True

    def close(self) -> None:
        self.conn.close()


_BUILDING: Final = ".new-"
"""``materialise`` builds ``<file>.new-<host>-<pid>-<random>`` (SQLite adds ``-wal``,
``-shm``); ``<host>`` is a digest of the host's name, so that a state folder shared by
several machines is tidied by each only of its own builds."""


def _host() -> str:
    """A digest of this host's name (loaded only where a state file is made: not on
    every command's path)."""
    import hashlib
    import socket

    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _drop_dead_builds(path: Path) -> None:
    """What a ``materialise`` killed part-way left: the builds of processes of this host
    that are gone."""
    from stackwright.providers.processes import alive  # only where a state file is made

    mine = f"{path.name}{_BUILDING}{_host()}-"
    for leftover in path.parent.glob(f"{mine}*"):
        pid = leftover.name[len(mine):].partition("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not alive(int(pid)):
            with suppress(OSError):  # one that cannot be removed stays: nothing ever opens it
                leftover.unlink()


def _drop_second_links(path: Path) -> None:
    """A ``materialise`` killed between linking its build into place and removing the
    build's own name left a second name for the state file: removed before the first
    write (SQLite warns of a file with several names, and opened under the other name
    it would keep another journal)."""
    try:
        names = path.stat().st_nlink
    except OSError as exc:
        raise StateError(f"cannot read state file {path}: {exc.strerror}") from exc
    if names < 2:
        return
    for leftover in path.parent.glob(f"{path.name}{_BUILDING}*"):
        with suppress(OSError):  # gone already (another process), or not ours to remove: harmless
            if leftover.samefile(path):
                leftover.unlink()


def _link_unless_there(built: Path, path: Path) -> None:
    """``built`` under the name ``path`` unless a file has it already (left as it is).
    Where the file system has no hard links, renamed unless the name is taken: another
    process could then still take it between the check and the rename."""
    try:
        os.link(built, path)
    except FileExistsError:
        pass
    except OSError:
        if path.exists():
            return
        try:
            os.replace(built, path)
        except OSError as exc:
            raise StateError(f"cannot create state file {path}: {exc.strerror}") from exc


def _private(path: Path) -> None:
    """State holds ciphertext, ids and names of everything: readable by its owner only.
    SQLite gives its WAL and shared-memory files the database file's mode."""
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
    except OSError as exc:
        raise StateError(f"cannot open state file {path}: {exc.strerror}") from exc


def _check_file(path: Path) -> bool:
    """Whether the file exists; refuses an empty, truncated or non-SQLite file before
    SQLite gets a chance to write anything to it."""
    try:
        with path.open("rb") as f:
            head = f.read(_HEADER_BYTES)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StateError(f"cannot read state file {path}: {exc}") from exc
    problem = _header_problem(head, size)
    if problem:
        raise StateError(
            f"state file {path} is corrupt: {problem}",
            hint="restore it from a backup, or move it away if the stack never held anything; "
            "stackwright will not modify or repair it",
        )
    return True


def _header_problem(head: bytes, size: int) -> str | None:
    """What the first 100 bytes say is wrong with a SQLite file of ``size`` bytes."""
    if size == 0:
        return "it is empty (0 bytes)"
    if not head.startswith(_SQLITE_HEADER):
        return "it is not a SQLite database"
    if len(head) < _HEADER_BYTES:
        return f"it is truncated ({size} bytes)"
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    # The header's page count is valid only if written by the change that last wrote the file.
    counted = head[92:96] == head[24:28]
    if page_size < 512 or size % page_size or (counted and size < pages * page_size):
        return f"it is truncated ({size} bytes)"
    return None


class SqliteStateStore(SqlStateStore):
    """``StateStore`` over one SQLite file (default ``<project>/.stackwright/state.db``)."""

    def __init__(self, path: str | os.PathLike[str], read_only: bool = False) -> None:
        self.path = Path(path)
        super().__init__(_Db(self.path, read_only))

    def __enter__(self) -> SqliteStateStore:
        return self
