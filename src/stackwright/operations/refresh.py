"""refresh: compare every recorded resource with the live object."""

from __future__ import annotations

from dataclasses import dataclass

from stackwright.engine.events import EventSink
from stackwright.engine.refresh import RefreshResult, read_all, record_drift
from stackwright.operations import drift_note
from stackwright.operations.session import StackSession, stack_lock
from stackwright.state.records import Checkpoint, Snapshot


@dataclass
class RefreshOutcome:
    result: RefreshResult
    checkpoint: Checkpoint | None = None


def read_live(session: StackSession, snapshot: Snapshot, parallel: int, sink: EventSink) -> RefreshResult:
    """Every object ``snapshot`` records, read again (``read_all``); what was read is
    marked secret with every secret the stack knows, its secret config included."""
    import asyncio

    return asyncio.run(read_all(snapshot, session.providers, parallel, sink,
                                known_secrets=session.config_secrets()))


def refresh(session: StackSession, *, parallel: int, record: bool, sink: EventSink) -> RefreshOutcome:
    """Report drift; with ``record``, write what was read into the state (under lock)."""
    if not record:
        snapshot = session.store.snapshot(session.stack)
        result = read_live(session, snapshot, parallel, sink)
        if not result.errors:
            drift_note.remember(session, snapshot.serial, result)
        return RefreshOutcome(result)
    with stack_lock(session, "refresh", sink):
        writer = session.store.begin(session.stack, "refresh", session.who)
        snapshot = session.store.snapshot(session.stack)
        result = read_live(session, snapshot, parallel, sink)
        record_drift(result, writer)
        status = "failed" if result.errors else "succeeded"
        return RefreshOutcome(result, writer.finish(status, None))
