"""On PostgreSQL a process waiting for events (a shard worker with nothing to do) is
woken by another process's event, not by its next poll: the wait below could last an
hour, and must end as soon as the other store records an event."""

from __future__ import annotations

import threading

from stackwright.state.postgres import PostgresStateStore
from stackwright.state.records import EventNotice


def test_an_event_recorded_elsewhere_wakes_a_waiter(pg_url: str) -> None:
    with PostgresStateStore(pg_url, "stackwright_a") as waiter, \
            PostgresStateStore(pg_url, "stackwright_b") as other:
        other.create_stack("main")
        waiter.wait_for_events(3600)  # the first call starts listening and returns at once
        woken = threading.Event()

        def wait() -> None:
            waiter.wait_for_events(3600)
            woken.set()

        thread = threading.Thread(target=wait, daemon=True)
        thread.start()
        assert not woken.wait(0.2)  # nothing recorded yet: still waiting
        other.record_event("main", "run", "tester", {"run_id": "r1", "status": "ok"})
        assert woken.wait(60), "the event did not wake the waiter"
        assert [e.data["run_id"] for e in other.events("main", kinds=("run",))] == ["r1"]


def test_the_notices_name_each_event_in_the_order_committed_and_never_carry_its_data(pg_url: str) -> None:
    """Every session of the database can listen, so a notice says where to read only."""
    import psycopg

    with PostgresStateStore(pg_url, "stackwright_a") as waiter, \
            PostgresStateStore(pg_url, "stackwright_b") as other:
        other.create_stack("main")
        other.create_stack("second")
        assert waiter.wait_for_events(3600) == []  # starts listening
        other.record_event("main", "run", "tester", {"run_id": "r1", "status": "ok", "note": "private"})
        other.record_event("second", "note", "tester", {"text": "x" * 9000})
        told = gather(waiter, 2)
        assert [(n.schema, n.stack, n.kind) for n in told if n is not None] == [
            ("stackwright_b", "main", "run"), ("stackwright_b", "second", "note")]
        assert waiter.wait_for_events(0.05) == []  # nothing since
        with psycopg.connect(pg_url, autocommit=True) as listener:
            listener.execute("LISTEN stackwright_events")
            other.record_event("main", "run", "tester", {"run_id": "r2", "status": "ok", "note": "private"})
            payloads = [n.payload for n in listener.notifies(timeout=60, stop_after=1)]
        assert payloads and all("private" not in p and "r2" not in p for p in payloads)


def test_a_notice_sent_by_hand_in_another_shape_is_none(pg_url: str) -> None:
    import psycopg

    with PostgresStateStore(pg_url, "stackwright_a") as waiter:
        waiter.wait_for_events(3600)
        with psycopg.connect(pg_url, autocommit=True) as sender:
            for payload in ("stackwright_b", '["a", "b"]', '[["a"], "b", "run"]', '{"a": 1}'):
                sender.execute("SELECT pg_notify('stackwright_events', %s)", (payload,))
        assert gather(waiter, 4) == [None, None, None, None]


def gather(waiter: PostgresStateStore, count: int) -> list[EventNotice | None]:
    """Notices until ``count`` came (they may come over several waits)."""
    told: list[EventNotice | None] = []
    while len(told) < count:
        more = waiter.wait_for_events(60)
        assert more, "no notice within a minute"
        told += more
    return told
