"""What the state store keeps. Values are in working form: they may hold ``Secret``
markers (never plain secrets on disk: stores encode them with ``values.to_json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 4
"""Bumped whenever the stored form changes; stores refuse a newer one."""


@dataclass(slots=True)
class ResourceState:
    """One resource as last recorded after a provider call."""

    urn: str
    type: str
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    parent: str | None = None
    deps: list[str] = field(default_factory=list)
    protect: bool = False
    retain_on_delete: bool = False
    external: bool = False
    """Adopted by `import`; recorded so that reviewers can tell."""
    options: dict[str, Any] = field(default_factory=dict)
    """The other options as last applied (``ignore_changes``, ``delete_before_replace``,
    ``aliases``), only those not at their defaults: a change of one alone is recorded."""


@dataclass
class PendingOperation:
    """A create, update or delete that was started but whose outcome is not yet recorded.

    Written durably before the provider call; cleared in the same transaction that
    records the outcome. Anything left over after a crash is resolved on the next run
    by reading the live object.
    """

    token: str
    urn: str
    type: str
    op: str  # "create" | "update" | "delete"
    inputs: dict[str, Any]
    resource_id: str | None = None
    parent: str | None = None
    deps: list[str] = field(default_factory=list)
    started_at: float = 0.0


@dataclass
class LockInfo:
    owner: str
    pid: int
    host: str
    acquired_at: float
    operation: str
    token: str = ""


@dataclass(slots=True)
class Change:
    """One line of a checkpoint: what happened to a resource (values masked)."""

    urn: str
    type: str
    op: str
    diffs: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


@dataclass
class Checkpoint:
    """A numbered record of one `up`, `destroy`, `refresh`, `import`... that changed state."""

    number: int
    kind: str
    who: str
    started_at: float
    finished_at: float
    result: str  # "succeeded" | "failed" | "interrupted"
    counts: dict[str, int] = field(default_factory=dict)
    message: str = ""
    serial: int = 0

    @property
    def duration(self) -> float:
        return max(0.0, self.finished_at - self.started_at)


@dataclass
class CheckpointDetail:
    checkpoint: Checkpoint
    changes: list[Change]
    resources: list[ResourceState]
    """The stack's resources when this checkpoint finished (for rollback)."""
    outputs: dict[str, Any]


@dataclass
class Snapshot:
    """A stack's recorded state at one serial: what the planner diffs against."""

    stack: str
    lineage: str
    serial: int
    resources: dict[str, ResourceState]
    outputs: dict[str, Any]
    pending: list[PendingOperation] = field(default_factory=list)


@dataclass
class StackInfo:
    name: str
    resource_count: int
    last_update: float | None
    lineage: str
    serial: int


@dataclass
class Event:
    """One line of the audit log: a plan made, approved, rejected or applied, an `up`...

    ``data`` holds the details verbatim (plan hash, program digest, comment, result);
    events are never updated or deleted.
    """

    id: int
    stack: str
    kind: str
    who: str
    at: float
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class StackRecord:
    """A whole stack as stored, every value in its stored text form (secrets stay
    sealed): what ``state migrate`` copies from one backend to another, and compares
    afterwards to prove nothing was lost."""

    name: str
    lineage: str
    serial: int
    created_at: float
    updated_at: float | None
    outputs: str
    resources: list[list[Any]]
    """Rows in the stores' resource column order (urn, type, id, inputs, outputs,
    parent, deps, protect, retain_on_delete, external, options), oldest first."""
    pending: list[list[Any]]
    """Rows: token, urn, type, op, inputs, resource_id, parent, deps, started_at."""
    checkpoints: list[list[Any]]
    """Per checkpoint: its nine header columns, its changes' JSON, its snapshot's JSON."""
    events: list[list[Any]]
    """The stack's audit log, oldest first: kind, who, at, data JSON (ids are the
    receiving store's)."""
