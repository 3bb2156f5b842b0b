"""On PostgreSQL a process waiting for events (a shard worker with nothing to do) is
woken by another process's event, not by its next poll: the wait below could last an
hour, and must end as soon as the other store records an event."""

from __future__ import annotations

import threading

from stackwright.state.postgres import PostgresStateStore


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
