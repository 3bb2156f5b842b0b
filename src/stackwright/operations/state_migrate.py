"""Moving stacks between state backends (SQLite, PostgreSQL, S3) with their whole
history, audit log, approvals and plans, verified record by record.

Records move in their stored form, so secrets stay sealed and no key is needed. The
source stack is locked while it is copied, so no `up` changes it half-way; it is left
in place: switching the project to the new store is the user's step.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass

from stackwright.errors import StateError
from stackwright.program.project import Project
from stackwright.state.records import LockInfo, StackRecord
from stackwright.state.store import StateStore


@dataclass(frozen=True)
class Moved:
    stack: str
    resources: int
    checkpoints: int
    events: int


def open_target(project: Project, url: str) -> StateStore:
    """The store ``url`` names, resolved as the project's own state URL would be."""
    from stackwright.state.backends import open_state_store

    if not url.strip():
        raise StateError("`state migrate --to` needs a state URL",
                         hint="postgresql://..., s3://bucket/prefix or sqlite:///path")
    return open_state_store(url.strip(), project.state_dir / "state.db", project=project.name,
                            root=project.root)


def migrate(source: StateStore, target: StateStore, stacks: list[str], who: str) -> list[Moved]:
    """Copy each stack to ``target``, then read it back and compare every record."""
    return [_migrate_one(source, target, stack, who) for stack in stacks]


def _migrate_one(source: StateStore, target: StateStore, stack: str, who: str) -> Moved:
    lock = LockInfo(owner=who, pid=os.getpid(), host=socket.gethostname(), acquired_at=time.time(),
                    operation="state-migrate", token=uuid.uuid4().hex)
    source.acquire_lock(stack, lock)
    try:
        record = source.export_stack(stack)
        target.import_stack(record)
        copied = target.export_stack(stack)
    finally:
        source.release_lock(stack, lock.token)
    differs = _first_difference(record, copied)
    if differs:
        raise StateError(f"the copy of stack {stack!r} differs from the source in {differs}",
                         hint="the source is unchanged; remove the copy in the target store and report this")
    return Moved(stack, len(record.resources), len(record.checkpoints), len(record.events))


def _first_difference(source: StackRecord, copy: StackRecord) -> str | None:
    theirs = asdict(copy)
    for name, value in asdict(source).items():
        if value != theirs[name]:
            return name
    return None
