"""Moving stacks between state backends (SQLite, PostgreSQL, S3) with their whole
history, audit log, approvals and plans, verified record by record.

Records move in their stored form, so secrets stay sealed and no key is needed. The
source stacks are locked while they are copied, so no `up` changes one half-way; they
are left in place: switching the project to the new store is the user's step.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from stackwright.errors import StateError
from stackwright.operations.session import stack_locks
from stackwright.program.project import Project
from stackwright.state.codec import already_there
from stackwright.state.records import StackRecord
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
    """Copy the stacks to ``target`` all at once, then read each back and compare every
    record. One import keeps the project's audit log in its order across the stacks,
    and leaves the target as it was if it fails."""
    if not stacks:
        return []
    existing = [stack for stack in stacks if target.stack_exists(stack)]
    if existing:
        raise already_there(existing, "the target store",
                            hint="`stackwright stack rm NAME` there first (with the target's state URL), "
                            "or move the other stacks with `--stack NAME`")
    with stack_locks(source, stacks, who, "state-migrate"):
        records = [source.export_stack(stack) for stack in stacks]
        target.import_stacks(records)
        copies = [target.export_stack(stack) for stack in stacks]
    for record, copied in zip(records, copies, strict=True):
        differs = _first_difference(record, copied)
        if differs:
            raise StateError(f"the copy of stack {record.name!r} differs from the source in {differs}",
                             hint="the source is unchanged; remove the copy in the target store and report this")
    return [Moved(r.name, len(r.resources), len(r.checkpoints), len(r.events)) for r in records]


def _first_difference(source: StackRecord, copy: StackRecord) -> str | None:
    for f in fields(source):
        if f.compare and getattr(source, f.name) != getattr(copy, f.name):
            return f.name
    return None
