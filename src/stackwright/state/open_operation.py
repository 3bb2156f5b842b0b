"""The open operation of a stack: what a writer (`up`, `destroy`, `refresh`...) has
recorded so far, kept in the store while it runs, so that a writer killed before its
checkpoint still leaves one.

Every backend stores one open operation per stack: its id, kind, who, start time,
the lock it ran under (which names a sharded run: ``run-up <run id>``), and its
changes as JSON lines, added in the same commit as the write that made them (no commit
of its own; in the SQL stores a row per transaction, never a rewrite of what is there). ``finish`` removes it with the checkpoint it writes. Whoever next
begins an operation on the stack, holding the stack's lock, so with the first holder
gone, closes a leftover one as an ``interrupted`` checkpoint listing the changes that
landed (``StateStore.begin``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any, Final

from stackwright.dataclass_methods import FrozenCompared, frozen_record
from stackwright.state.codec import Operation, change_from
from stackwright.state.records import Change

OPEN_COLUMNS: Final = "id, kind, who, started_at, holder"
OPEN: Final = f"INSERT INTO operations (stack, {OPEN_COLUMNS}) VALUES (?,?,?,?,?,?) ON CONFLICT (stack) DO NOTHING"
"""Opens the operation with its first write (a leftover of another one stays for
``begin`` to close, which it did before this operation started)."""
NOTE_CHANGES: Final = "INSERT INTO operation_changes (stack, operation, changes) VALUES (?,?,?)"
CLOSE_OPEN: Final = "DELETE FROM operations WHERE stack = ? AND id = ?"
CLOSE_CHANGES: Final = "DELETE FROM operation_changes WHERE stack = ? AND operation = ?"
INTERRUPTED: Final = "interrupted"


@frozen_record
class OpenOperation(FrozenCompared):
    """An operation as stored while it runs. Every writer loads it: its methods are
    written, not generated (see stackwright.dataclass_methods); it behaves as
    ``@dataclass(frozen=True)``."""

    id: str
    kind: str
    who: str
    started_at: float
    holder: str
    changes_text: str

    def __init__(self, id: str, kind: str, who: str, started_at: float, holder: str, changes_text: str) -> None:
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "who", who)
        object.__setattr__(self, "started_at", started_at)
        object.__setattr__(self, "holder", holder)
        object.__setattr__(self, "changes_text", changes_text)

    def changes(self) -> list[Change]:
        return [change_from(json.loads(line)) for line in self.changes_text.splitlines() if line]

    def closed(self, stack: str) -> Operation:
        """The operation as its writer would have finished it, with the changes that landed."""
        op = Operation(stack, self.kind, self.who)
        op.started_at = self.started_at
        for change in self.changes():
            op.note(change)
        return op

    def message(self) -> str:
        held = f" ({self.holder})" if self.holder else ""
        return (f"interrupted: the {self.kind} by {self.who}{held} stopped before recording "
                "its checkpoint; closed by the next holder of the stack's lock")


def open_row(row: Sequence[Any], changes: str = "") -> OpenOperation:
    op_id, kind, who, started_at, holder = row
    return OpenOperation(str(op_id), str(kind), str(who), float(started_at), str(holder), str(changes))


def new_id() -> str:
    return uuid.uuid4().hex


def holder_text(operation: str | None, owner: str | None, pid: int | None, host: str | None) -> str:
    """The lock an operation runs under, as its interrupted checkpoint names it."""
    if operation is None:
        return ""
    return f"{operation}, pid {pid} on {host}" + (f", {owner}" if owner else "")


def change_lines(op: Operation, changes: Sequence[Change | None]) -> str:
    return "".join(op.encode(c) + "\n" for c in changes if c is not None)


Statement = tuple[str, tuple[Any, ...]]


def noting(stack: str, op: Operation, changes: Sequence[Change | None], opened: bool) -> list[Statement]:
    """The SQL that opens ``op`` (unless an earlier commit ``opened`` it) and stores
    ``changes`` with those ``add_change`` noted since the last write (their only
    commit is the next write's)."""
    return noting_lines(stack, op, new_lines(op, changes), opened)


def new_lines(op: Operation, changes: Sequence[Change | None]) -> str:
    """The lines of ``changes``, after those ``add_change`` noted since the last write."""
    unsaved = op.take_unsaved()
    return change_lines(op, [*unsaved, *changes]) if unsaved or any(changes) else ""


def noting_lines(stack: str, op: Operation, lines: str, opened: bool) -> list[Statement]:
    """``noting`` of change lines already encoded: one row holds every line a
    transaction adds (a group commit's writes store theirs together)."""
    out: list[Statement] = [] if opened else [(OPEN, (stack, op.id, op.kind, op.who, op.started_at, op.holder))]
    return [*out, (NOTE_CHANGES, (stack, op.id, lines))] if lines else out


def closing(stack: str, op_id: str) -> list[Statement]:
    return [(CLOSE_OPEN, (stack, op_id)), (CLOSE_CHANGES, (stack, op_id))]


def note_row(op: Operation, changes: Sequence[Change | None]) -> list[Any]:
    """The S3 journal's form: the header and the new change lines."""
    return [op.id, op.kind, op.who, op.started_at, op.holder,
            change_lines(op, [*op.take_unsaved(), *changes])]
