"""The state store interface. The engine and CLI only talk to this; SQLite is the
embedded default and the PostgreSQL and S3 backends implement the same methods.

Durability contract: when a ``StackWriter`` method returns, the write survives a
crash of this process (SIGKILL) — the engine relies on it to record an outcome
before any dependent step starts.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from stackwright.state.codec import Resealer, SecretCipher
from stackwright.state.records import (
    Change, Checkpoint, CheckpointDetail, Event, LockInfo, PendingOperation, ResourceState,
    Snapshot, StackInfo, StackRecord,
)


class StackWriter(Protocol):
    """Writes of one operation (`up`, `destroy`...) on one locked stack."""

    slow_commits: bool
    """A commit waits on the network for milliseconds (S3): the engine then commits
    from a worker thread so that its event loop is not held up."""

    def batch(self) -> AbstractContextManager[None]:
        """Writes made inside the block commit together, once, when it exits (group
        commit). The durability contract then holds when the block exits."""

    def record_pending(self, op: PendingOperation) -> None: ...

    def record_resource(
        self, resource: ResourceState, change: Change | None, clears: str | None = None
    ) -> None:
        """Insert or replace a resource; clear pending op ``clears`` in the same commit."""

    def remove_resource(
        self, urn: str, change: Change | None, clears: str | None = None,
        resource_id: str | None = None,
    ) -> None:
        """Forget a resource (deleted, or its replacement's old half deleted).

        ``resource_id`` guards against removing a row that a replacement has already
        rewritten with a new id: the row is removed only if its id matches.
        """

    def clear_pending(self, token: str, change: Change | None = None) -> None: ...

    def rename_resource(self, old_urn: str, new_urn: str) -> None:
        """Move a record to a new URN (an alias was followed)."""

    def add_change(self, change: Change) -> None:
        """Record a change that touched no resource row (a failed step)."""

    def finish(
        self, result: str, outputs: dict[str, Any] | None, message: str = ""
    ) -> Checkpoint | None:
        """Close the operation. A checkpoint is written only if something changed
        (or the operation failed); otherwise returns None."""


class StateStore(Protocol):
    @property
    def read_only(self) -> bool:
        """Opened read-only: every write (and so every lock) is refused."""

    def use_cipher(self, cipher: SecretCipher) -> None:
        """Seal secret values with ``cipher`` (every secret, at any depth, in resources,
        pending operations, outputs, checkpoints and events) and open them with it."""

    def reseal(self, resealers: Mapping[str, Resealer]) -> list[str]:
        """Re-encrypt the secrets of each stack named (``secrets rotate``: resources,
        pending operations, outputs, checkpoints, events) with its resealer, all or
        nothing: every token is resealed before anything is written, and a token that
        does not open changes nothing. The stacks whose records changed, in the order
        given. The serial stays: what the state means is unchanged."""

    def list_stacks(self) -> list[StackInfo]: ...

    def create_stack(self, stack: str) -> None:
        """Raise StateError if it exists."""

    def stack_exists(self, stack: str) -> bool: ...

    def remove_stack(self, stack: str, force: bool = False) -> None:
        """Raise StateError if it still has resources and not ``force``."""

    def snapshot(self, stack: str) -> Snapshot: ...

    def pending_count(self, stack: str) -> int:
        """How many operations a crash left pending (cheaper than a snapshot)."""

    def acquire_lock(self, stack: str, info: LockInfo) -> None:
        """Take the stack's exclusive lock or raise LockHeldError naming the holder."""

    def release_lock(self, stack: str, token: str) -> None: ...

    def read_lock(self, stack: str) -> LockInfo | None: ...

    def break_lock(self, stack: str) -> LockInfo | None: ...

    def begin(self, stack: str, kind: str, who: str) -> StackWriter: ...

    def history(self, stack: str) -> list[Checkpoint]: ...

    def checkpoint(self, stack: str, number: int) -> CheckpointDetail: ...

    def record_event(self, stack: str, kind: str, who: str, data: dict[str, Any]) -> Event:
        """Append to the audit log (plans, approvals, rejections, applies)."""

    def events(self, stack: str | None = None, kinds: tuple[str, ...] = (),
               stacks: Collection[str] | None = None) -> list[Event]:
        """The audit log, oldest first, optionally for one stack (or those of ``stacks``,
        which replaces ``stack`` when given) and some kinds."""

    def export_stack(self, stack: str) -> StackRecord:
        """The stack with its history and audit log, in stored form."""

    def import_stack(self, record: StackRecord) -> None:
        """Create the stack ``record`` holds, exactly (lineage and serial included);
        raise StateError if a stack of that name exists."""

    def import_stacks(self, records: Sequence[StackRecord]) -> None:
        """``import_stack`` for several stacks at once, all or nothing: their events are
        appended in the order the exporting store logged them (``StackRecord.event_ids``),
        so the project's audit log reads the same; if any of the stacks exists, raise
        StateError naming each of them before writing anything."""

    def close(self) -> None: ...
