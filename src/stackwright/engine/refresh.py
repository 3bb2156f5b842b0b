"""Refresh: read every recorded resource and report what changed outside Stackwright."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from stackwright.engine.calls import ProviderCalls
from stackwright.engine.events import EventSink
from stackwright.engine.retry import RetryPolicy
from stackwright.errors import StackwrightError
from stackwright.model.resource import urn_name
from stackwright.model.values import (
    carry_secrets, is_plain, mark_containing, mask_text, masked, remark_secrets, reveal, secret_texts, wrap_secret_keys,
)
from stackwright.plan.diff import PropertyDiff, diff_inputs
from stackwright.providers.protocol import ProviderLookup, ReadResult, instance_config
from stackwright.state.records import Change, ResourceState, Snapshot
from stackwright.state.store import StackWriter


@dataclass
class Drift:
    urn: str
    type: str
    kind: str  # "changed" | "deleted"
    diffs: tuple[PropertyDiff, ...] = ()
    live: ResourceState | None = None


@dataclass
class RefreshResult:
    drift: list[Drift] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    checked: int = 0


async def read_all(
    snapshot: Snapshot, providers: ProviderLookup, parallel: int, sink: EventSink,
    policy: RetryPolicy | None = None, known_secrets: Iterable[str] = (),
) -> RefreshResult:
    """Read every resource at most ``parallel`` at once; nothing is written. What is
    read is marked secret where it holds the text of any secret the stack knows (its
    records, its outputs, ``known_secrets``: its secret config), as `up` marks it."""
    import asyncio

    calls = ProviderCalls(parallel, policy or RetryPolicy(), sink)
    gate = asyncio.Semaphore(parallel)
    result = RefreshResult()
    secrets = stack_secrets(snapshot, known_secrets)

    async def one(record: ResourceState) -> None:
        async with gate:
            try:
                drift = await _read_one(record, providers, calls, snapshot, secrets)
            except Exception as exc:  # noqa: BLE001 - reported per resource, never dropped
                # The provider saw the record's secrets revealed: none may show in the report.
                result.errors[record.urn] = mask_text(getattr(exc, "message", str(exc)), secrets)
                return
            result.checked += 1
            if drift is not None:
                result.drift.append(drift)

    try:
        with _batched_reads(snapshot, providers):
            await asyncio.gather(*(one(r) for r in snapshot.resources.values()))
    finally:
        calls.close()
    result.drift.sort(key=lambda d: d.urn)
    return result


@contextmanager
def _batched_reads(snapshot: Snapshot, providers: ProviderLookup) -> Iterator[None]:
    """Every type's provider told which ids are about to be read (``batch_reads``)."""
    ids: dict[str, list[str]] = {}
    for record in snapshot.resources.values():
        ids.setdefault(record.type, []).append(record.id)
    with ExitStack() as batches:
        for type_token, type_ids in ids.items():
            try:
                handler = providers.resource(type_token)
            except (KeyError, StackwrightError):
                continue  # each read of this type fails on its own, reported per resource
            batches.enter_context(handler.batch_reads(type_ids))
        yield


def stack_secrets(snapshot: Snapshot, known: Iterable[str] = ()) -> set[str]:
    """The plain texts of every secret the stack's records and outputs hold, and
    ``known``."""
    found = set(known)
    for record in snapshot.resources.values():
        if not is_plain(record.inputs) or not is_plain(record.outputs):
            secret_texts(record.inputs, found)
            secret_texts(record.outputs, found)
    secret_texts(dict(snapshot.outputs), found)
    return found


async def _read_one(record: ResourceState, providers: ProviderLookup, calls: ProviderCalls,
                    snapshot: Snapshot, secrets: set[str]) -> Drift | None:
    handler = providers.resource(record.type)
    config = instance_config(handler, record.inputs, lambda urn: _outputs(snapshot, urn))
    ctx = calls.context(record.urn, urn_name(record.urn), f"refresh-{record.id}", config)
    live: ReadResult | None = await calls.run(
        record.urn, "read", handler.read, ctx, record.id, reveal(record.inputs), reveal(record.outputs))
    if live is None:
        return Drift(record.urn, record.type, "deleted")
    inputs = {k: remark_secrets(record.inputs.get(k), v) for k, v in live.inputs.items()}
    returned = mark_containing(carry_secrets(inputs, live.outputs), secrets)
    outputs = _still_secret(record.outputs, wrap_secret_keys({**record.outputs, **inputs, **returned},
                                                             handler.secret_keys(inputs)))
    state = ResourceState(
        urn=record.urn, type=record.type, id=live.id, inputs=inputs, outputs=outputs,
        parent=record.parent, deps=record.deps, protect=record.protect,
        retain_on_delete=record.retain_on_delete, external=record.external, options=record.options)
    diffs = diff_inputs(record.inputs, inputs)
    if not diffs and live.id == record.id:
        return None if outputs == record.outputs else Drift(record.urn, record.type, "outputs", (), state)
    return Drift(record.urn, record.type, "changed", diffs, state)


def _outputs(snapshot: Snapshot, urn: str) -> dict[str, Any] | None:
    row = snapshot.resources.get(urn)
    return row.outputs if row is not None else None


def record_drift(result: RefreshResult, writer: StackWriter) -> None:
    """Make the recorded state match what was read."""
    for drift in result.drift:
        if drift.kind == "deleted":
            writer.remove_resource(drift.urn, Change(drift.urn, drift.type, "refresh-deleted"))
        elif drift.live is not None:
            change = None if drift.kind == "outputs" else Change(
                drift.urn, drift.type, "refresh-changed",
                [{"path": d.path, "kind": d.kind, "old": masked(d.old), "new": masked(d.new)}
                 for d in drift.diffs])
            writer.record_resource(drift.live, change)


def refreshed_snapshot(snapshot: Snapshot, result: RefreshResult) -> Snapshot:
    """The snapshot as it would be after recording ``result`` (nothing is written),
    at the serial it was read at, marked ``live``."""
    resources = dict(snapshot.resources)
    for drift in result.drift:
        if drift.kind == "deleted":
            resources.pop(drift.urn, None)
        elif drift.live is not None:
            resources[drift.urn] = drift.live
    return Snapshot(snapshot.stack, snapshot.lineage, snapshot.serial, resources,
                    snapshot.outputs, snapshot.pending, live=True)


def _still_secret(recorded: Mapping[str, Any], read: dict[str, Any]) -> dict[str, Any]:
    """``read`` with every output that was recorded secret kept secret: reading an
    object again does not make public what its last apply kept secret."""
    return {k: remark_secrets(recorded[k], v) if k in recorded else v for k, v in read.items()}
