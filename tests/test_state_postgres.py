"""What only the PostgreSQL state store can get wrong: a server shared by runners and
projects, reached over a URL (a throwaway server from ``pg_server.py``).

The backend-agnostic checks run against both stores in ``test_state_store.py``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import psycopg
import pytest

from stackwright.errors import LockHeldError, StateError
from stackwright.model.values import Secret
from stackwright.state.backends import open_state_store
from stackwright.state.postgres import PostgresStateStore, shown_url
from stackwright.state.records import SCHEMA_VERSION
from stackwright.state.sqlite import SqliteStateStore
from test_state_store import bucket, lock


class HexCipher:
    """Deterministic, so that the two stores' rows can be compared byte for byte."""

    def seal(self, plain: bytes) -> str:
        return "hex:" + plain.hex()

    def open(self, token: str) -> bytes:
        return bytes.fromhex(token.removeprefix("hex:"))


def test_values_are_stored_exactly_as_sqlite_stores_them(pg_url: str, tmp_path: Path) -> None:
    r = bucket(1, inputs={"pw": Secret("s"), "n": 1.5})
    with PostgresStateStore(pg_url) as s:
        s.use_cipher(HexCipher())
        s.create_stack("dev")
        s.begin("dev", "up", "me").record_resource(r, None)
    with SqliteStateStore(tmp_path / "state.db") as s:
        s.use_cipher(HexCipher())
        s.create_stack("dev")
        s.begin("dev", "up", "me").record_resource(r, None)
    conn = sqlite3.connect(tmp_path / "state.db")
    lite = conn.execute("SELECT inputs, outputs, deps FROM resources").fetchone()
    conn.close()
    with psycopg.connect(pg_url) as pg:
        row = pg.execute("SELECT inputs, outputs, deps FROM stackwright.resources").fetchone()
    assert row == lite


def test_lock_race_on_the_insert_is_a_lock_held_error(pg_url: str) -> None:
    """A concurrent insert loses on the unique key: reported as the holder, not a crash."""
    with PostgresStateStore(pg_url) as s:
        s.create_stack("dev")
        with psycopg.connect(pg_url) as other:  # holds an uncommitted lock row
            other.execute(
                "INSERT INTO stackwright.locks VALUES ('dev', 'racer', 1, 'h', %s, 'up', 'x')",
                (time.time(),))
            threading.Timer(0.3, other.commit).start()
            with pytest.raises(LockHeldError, match="racer"):
                s.acquire_lock("dev", lock("bob"))


def test_newer_schema_is_refused_and_untouched(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA stackwright")
        conn.execute("CREATE TABLE stackwright.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO stackwright.meta VALUES ('schema_version', %s)",
                     (str(SCHEMA_VERSION + 1),))
    with pytest.raises(StateError) as err:
        PostgresStateStore(pg_url)
    assert str(SCHEMA_VERSION + 1) in err.value.message
    assert str(SCHEMA_VERSION) in err.value.message
    assert err.value.hint and "upgrade stackwright" in err.value.hint
    with psycopg.connect(pg_url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'stackwright'")]
    assert tables == ["meta"]


def test_a_schema_holding_other_tables_is_refused_and_untouched(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA stackwright_shop")
        conn.execute("CREATE TABLE stackwright_shop.orders (id INTEGER PRIMARY KEY)")
    with pytest.raises(StateError, match="holds tables but is not stackwright state"):
        PostgresStateStore(pg_url, "stackwright_shop")
    with psycopg.connect(pg_url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'stackwright_shop'")]
    assert tables == ["orders"]


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


def stackwright_sessions(pg_url: str) -> int:
    """The server processes stackwright holds on the test's database."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                           " AND application_name = 'stackwright'").fetchone()
    assert row is not None
    return int(row[0])


def stacks_seen_elsewhere(pg_url: str, schema: str) -> list[str]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        return [r[0] for r in conn.execute(f"SELECT name FROM {schema}.stacks ORDER BY name")]


def test_the_projects_of_one_thread_share_one_connection_each_in_its_own_schema(pg_url: str) -> None:
    stores = [PostgresStateStore(pg_url, f"stackwright_{name}") for name in ("web", "api", "db")]
    try:
        assert stackwright_sessions(pg_url) == 1
        for store in stores * 2:  # interleaved: each statement runs in its store's schema
            store.create_stack(f"s{len(store.list_stacks())}")
        assert [[s.name for s in store.list_stacks()] for store in stores] == [["s0", "s1"]] * 3
        assert stacks_seen_elsewhere(pg_url, "stackwright_api") == ["s0", "s1"]
        stores.pop().close()
        assert stackwright_sessions(pg_url) == 1
        assert [s.name for s in stores[0].list_stacks()] == ["s0", "s1"]
    finally:
        for store in stores:
            store.close()
    assert stackwright_sessions(pg_url) == 0


def test_a_write_inside_another_projects_transaction_commits_on_its_own(pg_url: str) -> None:
    """Sharing a connection never makes one store's write wait for another's commit
    (or vanish with its rollback)."""
    with PostgresStateStore(pg_url, "stackwright_web") as web, PostgresStateStore(pg_url, "stackwright_api") as api:
        with pytest.raises(RuntimeError, match="rolled back"):
            with web.together():
                web.create_stack("dev")
                api.create_stack("dev")
                assert stacks_seen_elsewhere(pg_url, "stackwright_api") == ["dev"]
                assert stacks_seen_elsewhere(pg_url, "stackwright_web") == []
                raise RuntimeError("rolled back")
        assert [s.name for s in web.list_stacks()] == []
        assert [s.name for s in api.list_stacks()] == ["dev"]
        api.create_stack("prod")
        assert stacks_seen_elsewhere(pg_url, "stackwright_api") == ["dev", "prod"]


def test_a_store_used_from_another_thread_gets_a_connection_of_its_own(pg_url: str) -> None:
    with PostgresStateStore(pg_url, "stackwright_web") as web, PostgresStateStore(pg_url, "stackwright_api") as api:
        assert stackwright_sessions(pg_url) == 1
        failures: list[BaseException] = []

        def elsewhere() -> None:
            try:
                for n in range(20):
                    api.create_stack(f"t{n}")
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                failures.append(exc)

        first = threading.Thread(target=lambda: api.create_stack("first"))
        first.start()
        first.join()
        assert stackwright_sessions(pg_url) == 2  # not this thread's connection, even idle
        thread = threading.Thread(target=elsewhere)
        thread.start()
        for n in range(20):
            web.create_stack(f"m{n}")
        thread.join()
        assert not failures
        assert stackwright_sessions(pg_url) == 2
        assert len(web.list_stacks()) == 20 and len(api.list_stacks()) == 21


def test_runners_creating_a_projects_schema_at_once_all_open_it(pg_url: str) -> None:
    """Whatever isolation the database defaults to: a runner that waited while another
    created the schema sees it, and does not try to create it again."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        database = conn.execute("SELECT current_database()").fetchone()
        assert database is not None
        conn.execute(f"ALTER DATABASE {database[0]} SET default_transaction_isolation = 'serializable'")
    for round_ in range(4):
        failures: list[BaseException] = []

        def open_project(name: str = f"stackwright_p{round_}") -> None:
            try:
                PostgresStateStore(pg_url, name).close()
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                failures.append(exc)

        threads = [threading.Thread(target=open_project) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, failures[0]
