"""Resolving operations a crash left pending, by reading the live objects.

A pending create is adopted if the object exists, else forgotten; it is never
blindly created again. A pending delete of the object the state records is finished
(the object is gone: the record goes) or forgotten (the next plan deletes it again). A
pending update is forgotten: the next plan compares recorded inputs with the program and
updates again if needed (updates are idempotent). A pending delete of an object the
state no longer records under its URN, the old half of a replacement, stays: the plan
deletes it as a step (``Plan.leftovers``) after whatever used it has moved to the new
half, which recovery, running before the plan, cannot order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from stackwright.engine.calls import ProviderCalls
from stackwright.model.resource import urn_name
from stackwright.model.values import carry_secrets, mark_containing, reveal, secret_texts, wrap_secret_keys
from stackwright.providers.protocol import OperationContext, ProviderLookup, ResourceProvider, instance_config
from stackwright.state.records import Change, PendingOperation, ResourceState, Snapshot
from stackwright.state.store import StackWriter


@dataclass
class RecoveryReport:
    adopted: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)

    @property
    def anything(self) -> bool:
        return bool(self.adopted or self.forgotten)


async def recover(
    snapshot: Snapshot, providers: ProviderLookup, writer: StackWriter, calls: ProviderCalls,
    known_secrets: Iterable[str] = (),
) -> RecoveryReport:
    """Creates are resolved first, so that the records name the objects that now exist;
    a pending delete naming another object than its URN's record is then an old half,
    left for the plan. An adopted object's outputs are marked secret as `up` and
    `refresh` mark them: where they hold the text of a secret the stack knows (its
    records, its pending operations, ``known_secrets``: its secret config)."""
    from stackwright.engine.refresh import stack_secrets

    report = RecoveryReport()
    rows = dict(snapshot.resources)
    secrets = stack_secrets(snapshot, known_secrets)
    for op in snapshot.pending:
        secret_texts(op.inputs, secrets)
    for op in sorted(snapshot.pending, key=lambda op: op.op != "create"):
        if op.op == "create":
            adopted = await _recover_create(op, snapshot.lineage, providers, writer, calls, report, rows, secrets)
            if adopted is not None:
                rows[op.urn] = adopted
        elif op.op == "delete":
            row = rows.get(op.urn)
            if row is not None and row.id == op.resource_id:
                await _recover_delete(op, providers, writer, calls, report, rows)
        else:
            writer.clear_pending(op.token)
            report.forgotten.append(op.urn)
    return report


async def _recover_create(
    op: PendingOperation, lineage: str, providers: ProviderLookup, writer: StackWriter,
    calls: ProviderCalls, report: RecoveryReport, rows: dict[str, ResourceState], secrets: set[str],
) -> ResourceState | None:
    """The object the create made, found as this state's (``lineage``) own, is recorded;
    none found, the pending record is forgotten."""
    handler = providers.resource(op.type)
    ctx = _context(calls, op, handler, rows, lineage=lineage, recovering=True)
    live = await calls.run(op.urn, "read", handler.read, ctx, None, reveal(op.inputs), {})
    if live is None:
        writer.clear_pending(op.token)
        report.forgotten.append(op.urn)
        return None
    returned = mark_containing(carry_secrets(op.inputs, live.outputs), secrets)
    outputs = wrap_secret_keys({**op.inputs, **returned}, handler.secret_keys(op.inputs))
    state = ResourceState(urn=op.urn, type=op.type, id=live.id, inputs=op.inputs,
                          outputs=outputs, parent=op.parent, deps=list(op.deps))
    writer.record_resource(state, Change(op.urn, op.type, "create"), clears=op.token)
    report.adopted.append(op.urn)
    return state


async def _recover_delete(
    op: PendingOperation, providers: ProviderLookup, writer: StackWriter,
    calls: ProviderCalls, report: RecoveryReport, rows: dict[str, ResourceState],
) -> None:
    handler = providers.resource(op.type)
    ctx = _context(calls, op, handler, rows)
    live = await calls.run(op.urn, "read", handler.read, ctx, op.resource_id, reveal(op.inputs), {})
    if live is None:
        writer.remove_resource(op.urn, Change(op.urn, op.type, "delete"), clears=op.token,
                               resource_id=op.resource_id)
    else:
        writer.clear_pending(op.token)
    report.forgotten.append(op.urn)


def _context(calls: ProviderCalls, op: PendingOperation, handler: ResourceProvider,
             rows: dict[str, ResourceState], *, lineage: str = "", recovering: bool = False) -> OperationContext:
    def outputs_of(urn: str) -> dict[str, object] | None:
        row = rows.get(urn)
        return row.outputs if row is not None else None

    config = instance_config(handler, op.inputs, outputs_of)
    return calls.context(op.urn, urn_name(op.urn), op.token, config, lineage=lineage, recovering=recovering)
