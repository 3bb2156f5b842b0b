"""What the state store keeps. Values are in working form: they may hold ``Secret``
markers (never plain secrets on disk: stores encode them with ``values.to_json``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from stackwright.dataclass_methods import Compared

SCHEMA_VERSION = 4
"""Bumped whenever the stored form changes; stores refuse a newer one."""

# Every command loads these classes: their methods are written, not generated (see
# stackwright.dataclass_methods); they behave as the ``@dataclass`` they are declared.


@dataclass(init=False, repr=False, eq=False)
class ResourceState(Compared):
    """One resource as last recorded after a provider call."""

    __slots__ = ("urn", "type", "id", "inputs", "outputs", "parent", "deps", "protect", "retain_on_delete",
                 "external", "options")
    urn: str
    type: str
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    parent: str | None
    deps: list[str]
    protect: bool
    retain_on_delete: bool
    external: bool
    """Adopted by `import`; recorded so that reviewers can tell."""
    options: dict[str, Any]
    """The other options as last applied (``ignore_changes``, ``delete_before_replace``,
    ``aliases``), only those not at their defaults: a change of one alone is recorded."""

    def __init__(self, urn: str, type: str, id: str, inputs: dict[str, Any], outputs: dict[str, Any],
                 parent: str | None = None, deps: list[str] | None = None, protect: bool = False,
                 retain_on_delete: bool = False, external: bool = False,
                 options: dict[str, Any] | None = None) -> None:
        self.urn = urn
        self.type = type
        self.id = id
        self.inputs = inputs
        self.outputs = outputs
        self.parent = parent
        self.deps = [] if deps is None else deps
        self.protect = protect
        self.retain_on_delete = retain_on_delete
        self.external = external
        self.options = {} if options is None else options


@dataclass(init=False, repr=False, eq=False)
class PendingOperation(Compared):
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

    def __init__(self, token: str, urn: str, type: str, op: str, inputs: dict[str, Any],
                 resource_id: str | None = None, parent: str | None = None, deps: list[str] | None = None,
                 started_at: float = 0.0) -> None:
        self.token = token
        self.urn = urn
        self.type = type
        self.op = op
        self.inputs = inputs
        self.resource_id = resource_id
        self.parent = parent
        self.deps = [] if deps is None else deps
        self.started_at = started_at


@dataclass(init=False, repr=False, eq=False)
class LockInfo(Compared):
    """Who holds a stack's lock, where, since when, for what."""

    owner: str
    pid: int
    host: str
    acquired_at: float
    operation: str
    token: str = ""

    def __init__(self, owner: str, pid: int, host: str, acquired_at: float, operation: str,
                 token: str = "") -> None:
        self.owner = owner
        self.pid = pid
        self.host = host
        self.acquired_at = acquired_at
        self.operation = operation
        self.token = token


@dataclass(init=False, repr=False, eq=False)
class Change(Compared):
    """One line of a checkpoint: what happened to a resource (values masked)."""

    __slots__ = ("urn", "type", "op", "diffs", "error")
    urn: str
    type: str
    op: str
    diffs: list[dict[str, Any]]
    error: str | None

    def __init__(self, urn: str, type: str, op: str, diffs: list[dict[str, Any]] | None = None,
                 error: str | None = None) -> None:
        self.urn = urn
        self.type = type
        self.op = op
        self.diffs = [] if diffs is None else diffs
        self.error = error


@dataclass(init=False, repr=False, eq=False)
class Checkpoint(Compared):
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

    def __init__(self, number: int, kind: str, who: str, started_at: float, finished_at: float, result: str,
                 counts: dict[str, int] | None = None, message: str = "", serial: int = 0) -> None:
        self.number = number
        self.kind = kind
        self.who = who
        self.started_at = started_at
        self.finished_at = finished_at
        self.result = result
        self.counts = {} if counts is None else counts
        self.message = message
        self.serial = serial

    @property
    def duration(self) -> float:
        return max(0.0, self.finished_at - self.started_at)


@dataclass(init=False, repr=False, eq=False)
class CheckpointDetail(Compared):
    """A checkpoint with its changes, and the stack as it left it."""

    checkpoint: Checkpoint
    changes: list[Change]
    resources: list[ResourceState]
    """The stack's resources when this checkpoint finished (for rollback)."""
    outputs: dict[str, Any]

    def __init__(self, checkpoint: Checkpoint, changes: list[Change], resources: list[ResourceState],
                 outputs: dict[str, Any]) -> None:
        self.checkpoint = checkpoint
        self.changes = changes
        self.resources = resources
        self.outputs = outputs


@dataclass(init=False, repr=False, eq=False)
class Snapshot(Compared):
    """A stack's recorded state at one serial: what the planner diffs against."""

    stack: str
    lineage: str
    serial: int
    resources: dict[str, ResourceState]
    outputs: dict[str, Any]
    pending: list[PendingOperation] = field(default_factory=list)
    live: bool = False
    """Its resources are what was read from the live objects just now (a refresh not
    recorded, ``engine.refresh.refreshed_snapshot``), at the recorded ``serial``: a plan
    made against it says so (``Plan.refreshed``), and its apply reads them again."""

    def __init__(self, stack: str, lineage: str, serial: int, resources: dict[str, ResourceState],
                 outputs: dict[str, Any], pending: list[PendingOperation] | None = None,
                 live: bool = False) -> None:
        self.stack = stack
        self.lineage = lineage
        self.serial = serial
        self.resources = resources
        self.outputs = outputs
        self.pending = [] if pending is None else pending
        self.live = live


@dataclass(init=False, repr=False, eq=False)
class StackInfo(Compared):
    """One stack, as `stack ls` lists it."""

    name: str
    resource_count: int
    last_update: float | None
    lineage: str
    serial: int

    def __init__(self, name: str, resource_count: int, last_update: float | None, lineage: str,
                 serial: int) -> None:
        self.name = name
        self.resource_count = resource_count
        self.last_update = last_update
        self.lineage = lineage
        self.serial = serial


@dataclass(init=False, repr=False, eq=False)
class Event(Compared):
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

    def __init__(self, id: int, stack: str, kind: str, who: str, at: float,
                 data: dict[str, Any] | None = None) -> None:
        self.id = id
        self.stack = stack
        self.kind = kind
        self.who = who
        self.at = at
        self.data = {} if data is None else data


class EventNotice:
    """Where an event was recorded in a shared database, as its notice told a waiter
    (``PostgresStateStore.wait_for_events``): a pointer to read, not the event."""

    __slots__ = ("schema", "stack", "kind")

    def __init__(self, schema: str, stack: str, kind: str) -> None:
        self.schema = schema
        self.stack = stack
        self.kind = kind


@dataclass(init=False, repr=False, eq=False)
class StackRecord(Compared):
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
    event_ids: list[int] | None = field(default=None, compare=False, repr=False)
    """The exporting store's ids of ``events``: their places in the project's whole
    audit log, which an import of several stacks keeps (``in_logged_order``). None for
    a record made by hand. Not compared: the receiving store numbers events anew."""

    def __init__(self, name: str, lineage: str, serial: int, created_at: float, updated_at: float | None,
                 outputs: str, resources: list[list[Any]], pending: list[list[Any]],
                 checkpoints: list[list[Any]], events: list[list[Any]],
                 event_ids: list[int] | None = None) -> None:
        self.name = name
        self.lineage = lineage
        self.serial = serial
        self.created_at = created_at
        self.updated_at = updated_at
        self.outputs = outputs
        self.resources = resources
        self.pending = pending
        self.checkpoints = checkpoints
        self.events = events
        self.event_ids = event_ids


def in_logged_order(records: Sequence[StackRecord]) -> list[tuple[str, list[Any]]]:
    """The events of ``records`` as (stack, event), in the order the exporting store
    logged them across its stacks, so that the project's audit log reads the same in
    the receiving store; the events of records without ids follow, record by record."""
    logged = sorted(((i, r.name, e) for r in records if r.event_ids is not None
                     for i, e in zip(r.event_ids, r.events, strict=True)), key=lambda t: t[0])
    unnumbered = [(r.name, e) for r in records if r.event_ids is None for e in r.events]
    return [(name, event) for _, name, event in logged] + unnumbered
