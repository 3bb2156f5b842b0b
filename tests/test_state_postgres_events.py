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


def test_the_notices_tell_each_event_in_the_order_committed_with_its_data(pg_url: str) -> None:
    with PostgresStateStore(pg_url, "stackwright_a") as waiter, \
            PostgresStateStore(pg_url, "stackwright_b") as other:
        other.create_stack("main")
        assert waiter.wait_for_events(3600) == []  # starts listening
        other.record_event("main", "run", "tester", {"run_id": "r1", "status": "ok"})
        other.record_event("main", "run", "tester", {"run_id": "r2", "status": "failed", "cause": "x"})
        told = gather(waiter, 2)
        assert [(n.schema, n.stack, n.kind, n.data) for n in told if n is not None] == [
            ("stackwright_b", "main", "run", {"run_id": "r1", "status": "ok"}),
            ("stackwright_b", "main", "run", {"run_id": "r2", "status": "failed", "cause": "x"})]
        assert waiter.wait_for_events(0.05) == []  # nothing since


def test_a_notice_leaves_out_data_too_long_for_it_or_holding_a_sealed_value(pg_url: str) -> None:
    from stackwright.model.values import Secret

    class HexCipher:
        def seal(self, plain: bytes) -> str:
            return "hex:" + plain.hex()

        def open(self, token: str) -> bytes:
            return bytes.fromhex(token.removeprefix("hex:"))

    with PostgresStateStore(pg_url, "stackwright_a") as waiter, \
            PostgresStateStore(pg_url, "stackwright_b") as other:
        other.use_cipher(HexCipher())
        other.create_stack("main")
        waiter.wait_for_events(3600)
        other.record_event("main", "note", "tester", {"text": "x" * 9000})
        other.record_event("main", "note", "tester", {"password": Secret("hunter2")})
        told = gather(waiter, 2)
        assert [(n.kind, n.data) for n in told if n is not None] == [("note", None), ("note", None)]
        assert [e.data["password"].value for e in other.events("main", kinds=("note",))[1:]] == ["hunter2"]


def gather(waiter: PostgresStateStore, count: int) -> list[EventNotice | None]:
    """Notices until ``count`` came (they may come over several waits)."""
    told: list[EventNotice | None] = []
    while len(told) < count:
        more = waiter.wait_for_events(60)
        assert more, "no notice within a minute"
        told += more
    return told
