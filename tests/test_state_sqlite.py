"""What only the embedded SQLite store can get wrong: its file on disk.

The backend-agnostic checks run against both stores in ``test_state_store.py``.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from stackwright.errors import StateError
from stackwright.state.records import SCHEMA_VERSION, ResourceState
from stackwright.state.sql_store import RESOURCE_COLUMNS
from stackwright.state.sqlite import SqliteStateStore


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / ".stackwright" / "state.db"


def test_only_creating_a_stack_creates_the_file_and_its_directory(db_path: Path) -> None:
    with SqliteStateStore(db_path) as s:
        assert s.list_stacks() == [] and not s.stack_exists("dev")
        with pytest.raises(StateError, match="no stack named"):
            s.snapshot("dev")
        assert not db_path.parent.exists()
        s.create_stack("dev")
        assert db_path.is_file()
    with SqliteStateStore(db_path) as s:
        assert [info.name for info in s.list_stacks()] == ["dev"]
    assert sorted(p.name for p in db_path.parent.iterdir()) == ["state.db"]


def test_what_a_killed_making_of_the_file_left_is_removed(db_path: Path) -> None:
    """A process killed while making the file leaves its build (with SQLite's journal);
    one killed after linking the build into place leaves a second name for the state
    file. The next store to make the file removes the first (builds of this host's
    processes that are gone, not another machine's), the next write the second."""
    import os
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    from stackwright.state.sqlite import _host

    db_path.parent.mkdir(parents=True, exist_ok=True)
    dead_build = [db_path.with_name(f"{db_path.name}.new-{_host()}-{gone}-0bad{suffix}") for suffix in ("", "-wal")]
    for leftover in dead_build:
        leftover.write_bytes(b"half made")
    kept = [db_path.with_name(f"{db_path.name}.new-{_host()}-{os.getpid()}-0000"),  # this process's own
            db_path.with_name(f"{db_path.name}.new-0another-{gone}-0000")]  # another machine's
    for other in kept:
        other.write_bytes(b"left alone")
    with SqliteStateStore(db_path) as store:
        store.create_stack("dev")
    assert not any(p.exists() for p in dead_build) and all(p.exists() for p in kept)
    for other in kept:
        other.unlink()
    second = db_path.with_name(f"{db_path.name}.new-{_host()}-{gone}-1bad")
    os.link(db_path, second)
    with SqliteStateStore(db_path) as store:
        assert store.stack_exists("dev")
        assert second.exists(), "reading changes nothing"
        store.create_stack("prod")
    assert not second.exists() and db_path.stat().st_nlink == 1


def test_a_file_system_without_hard_links_still_gets_the_file(db_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Where linking is refused (some network and FAT file systems), the made file is
    renamed into place instead."""
    import errno
    import os

    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    with SqliteStateStore(db_path) as store:
        store.create_stack("dev")
    with SqliteStateStore(db_path) as store:
        assert [info.name for info in store.list_stacks()] == ["dev"]
    assert not list(db_path.parent.glob(f"{db_path.name}.new*"))


def test_stores_making_the_file_at_once_all_keep_their_stacks(db_path: Path) -> None:
    """Workers of a run starting together on a new workspace each make the state file:
    the first one made is the one every store writes to; none replaces another's file
    (and the stacks already created in it), and no half-made file is left."""
    stores = [SqliteStateStore(db_path) for _ in range(6)]  # each finds no file
    start = threading.Barrier(len(stores))
    failed: list[BaseException] = []

    def create(n: int) -> None:
        start.wait()
        try:
            stores[n].create_stack(f"s{n}")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failed.append(exc)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert not failed
    with SqliteStateStore(db_path) as store:
        assert sorted(info.name for info in store.list_stacks()) == [f"s{n}" for n in range(len(stores))]
    assert not list(db_path.parent.glob(f"{db_path.name}.new*"))


@pytest.mark.parametrize("cut", [0, 50, 100, 4096 + 1000, -1])
def test_empty_or_truncated_file_is_corrupt_and_untouched(db_path: Path, cut: int) -> None:
    with SqliteStateStore(db_path) as s:
        s.create_stack("dev")
        s.create_stack("staging")
    whole = db_path.read_bytes()
    assert len(whole) > 4096 + 1000
    db_path.write_bytes(whole[:cut])
    before = db_path.stat()
    with pytest.raises(StateError, match=f"state file {db_path} is corrupt") as err:
        SqliteStateStore(db_path)
    assert err.value.hint and "backup" in err.value.hint
    after = db_path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert db_path.read_bytes() == whole[:cut]


def test_reading_never_writes_the_file(db_path: Path) -> None:
    with SqliteStateStore(db_path) as s:
        s.create_stack("dev")
    before = db_path.read_bytes(), db_path.stat().st_mtime_ns
    with SqliteStateStore(db_path) as s:
        s.list_stacks(), s.snapshot("dev"), s.history("dev"), s.read_lock("dev"), s.events()
    assert (db_path.read_bytes(), db_path.stat().st_mtime_ns) == before


# --- files we must not touch ----------------------------------------------------------


def test_file_that_is_not_sqlite_is_corrupt_and_untouched(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b'{"version": 3, "resources": []}\n')
    before = db_path.read_bytes()
    with pytest.raises(StateError, match="is corrupt") as err:
        SqliteStateStore(db_path)
    assert err.value.hint
    assert db_path.read_bytes() == before


def test_damaged_sqlite_file_is_corrupt_and_untouched(db_path: Path) -> None:
    with SqliteStateStore(db_path) as s:
        s.create_stack("dev")
    data = bytearray(db_path.read_bytes())
    data[100:] = b"\xff" * (len(data) - 100)  # keep the header, wreck every page
    db_path.write_bytes(bytes(data))
    with pytest.raises(StateError, match="is corrupt"):
        SqliteStateStore(db_path)
    assert db_path.read_bytes() == bytes(data)


def test_newer_schema_is_refused_and_untouched(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION + 1),))
    conn.execute("CREATE TABLE future (x)")
    conn.commit()
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(StateError) as err:
        SqliteStateStore(db_path)
    assert str(SCHEMA_VERSION + 1) in err.value.message
    assert str(SCHEMA_VERSION) in err.value.message
    assert err.value.hint and "upgrade stackwright" in err.value.hint
    assert db_path.read_bytes() == before


def test_foreign_sqlite_database_is_refused_and_untouched(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE photos (id INTEGER)")
    conn.commit()
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(StateError, match="not a stackwright state file"):
        SqliteStateStore(db_path)
    assert db_path.read_bytes() == before


def test_reopening_our_own_file_keeps_it(db_path: Path) -> None:
    with SqliteStateStore(db_path) as s:
        s.create_stack("dev")
    with SqliteStateStore(db_path) as s:
        assert s.stack_exists("dev")
    conn = sqlite3.connect(db_path)
    (version,) = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    conn.close()
    assert int(version) == SCHEMA_VERSION


def test_a_schema_2_file_is_read_as_is_and_upgraded_by_the_first_write(db_path: Path) -> None:
    with SqliteStateStore(db_path) as s:
        s.create_stack("dev")
        writer = s.begin("dev", "up", "tester")
        writer.record_resource(ResourceState("u", "t", "id-1", {"a": 1}, {"a": 1}, protect=True), None)
        writer.finish("succeeded", {})
    conn = sqlite3.connect(db_path)
    conn.execute("ALTER TABLE resources DROP COLUMN options")
    conn.execute("DROP TABLE operations")
    conn.execute("DROP TABLE operation_changes")
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    before = db_path.read_bytes()
    with SqliteStateStore(db_path) as s:
        (record,) = s.snapshot("dev").resources.values()
        assert (record.id, record.protect, record.options) == ("id-1", True, {})
    assert db_path.read_bytes() == before
    with SqliteStateStore(db_path) as s:
        writer = s.begin("dev", "up", "tester")
        writer.record_resource(ResourceState("u", "t", "id-1", {}, {}, options={"aliases": ["old"]}), None)
        writer.finish("succeeded", {})
    with SqliteStateStore(db_path) as s:
        assert s.snapshot("dev").resources["u"].options == {"aliases": ["old"]}
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    conn.close()


SNAPSHOT_ROWS = f"SELECT {RESOURCE_COLUMNS} FROM resources WHERE stack = ? ORDER BY rowid"
"""How a snapshot reads a stack's rows: in recorded order."""


def _reads_sorting(db_path: Path) -> bool:
    """Whether SQLite reads a stack's rows in recorded order by sorting them first."""
    with sqlite3.connect(db_path) as conn:
        plan = conn.execute(f"EXPLAIN QUERY PLAN {SNAPSHOT_ROWS}", ("dev",)).fetchall()
    return any("TEMP B-TREE" in str(step) for step in plan)


def test_a_file_without_the_ordering_index_gets_it_from_its_first_write(db_path: Path) -> None:
    """A file an older stackwright made reads as it is (read-only commands never write
    it) and gets the index that reads rows in order without sorting them from the first
    write; nothing else about it changes, so no schema version is spent on it."""
    with SqliteStateStore(db_path) as s:
        s.create_stack("dev")
        writer = s.begin("dev", "up", "tester")
        for n in (3, 1, 2):
            writer.record_resource(ResourceState(f"u{n}", "t", f"id-{n}", {"n": n}, {}), None)
        writer.finish("succeeded", {})
    assert not _reads_sorting(db_path)
    with sqlite3.connect(db_path) as conn:
        conn.execute("DROP INDEX resources_in_order")
    assert _reads_sorting(db_path)
    before = db_path.read_bytes()
    with SqliteStateStore(db_path) as s:
        assert list(s.snapshot("dev").resources) == ["u3", "u1", "u2"]
    assert db_path.read_bytes() == before
    with SqliteStateStore(db_path) as s:
        writer = s.begin("dev", "up", "tester")
        writer.record_resource(ResourceState("u0", "t", "id-0", {}, {}), None)
        writer.finish("succeeded", {})
        assert list(s.snapshot("dev").resources) == ["u3", "u1", "u2", "u0"]
    assert not _reads_sorting(db_path)
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
