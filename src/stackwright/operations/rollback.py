"""rollback N: plan and apply the changes that return the stack to checkpoint N's inputs.

The desired graph is rebuilt from the resources recorded at that checkpoint, with
the inputs as they were resolved then, under the URNs they have now (a resource renamed
since with an alias is the same object), with the options they have now. Values
computed from resources that have since been replaced (new ids) are not re-derived; the
preview shows them before anything runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from stackwright.errors import ProjectError
from stackwright.model.desired import DesiredGraph
from stackwright.model.resource import Resource, restore
from stackwright.engine.apply import ApplyOptions
from stackwright.engine.events import EventSink
from stackwright.operations.session import StackSession
from stackwright.operations.update import Check, Confirm, UpdateOutcome, up
from stackwright.state.records import CheckpointDetail, ResourceState


def rollback(session: StackSession, number: int, *, options: ApplyOptions, sink: EventSink,
             confirm: Confirm, check: Check | None = None,
             audit: dict[str, Any] | None = None) -> UpdateOutcome:
    """Going back can delete what was created since: ``check`` (policies) judges it too."""
    detail = session.store.checkpoint(session.stack, number)
    desired = desired_from_checkpoint(session, detail)
    return up(session, options=options, sink=sink, confirm=confirm, kind="rollback", desired=desired,
              check=check, audit=audit)


def desired_from_checkpoint(session: StackSession, detail: CheckpointDetail,
                            current: Mapping[str, ResourceState] | None = None) -> DesiredGraph:
    """The resources as checkpoint ``detail`` recorded them: their inputs (and
    dependencies) then, under the names they have now.

    A resource renamed or moved since (the program gave its old URN as an alias) is the
    same object: it comes back under its current URN, not deleted and made again. A
    resource the state records now keeps the options it has now (protection, aliases,
    ignore_changes...): rollback returns inputs, and an option is how the program says
    to treat an object, not part of it; one deleted since comes back with the options it
    had then (no aliases: they would find other objects)."""
    recorded = session.store.snapshot(session.stack).resources if current is None else current
    renamed = renamed_since(detail.resources, recorded)
    resources: dict[str, Resource] = {}
    for record in detail.resources:
        cls = session.providers.resource(record.type).resource_class
        if cls is None:
            raise ProjectError(f"cannot roll back {record.urn}: its provider has no resource class")
        urn = renamed.get(record.urn, record.urn)
        now = recorded.get(urn)
        source = now if now is not None else record
        aliases = list(now.options.get("aliases", ())) if now is not None else []
        resources[urn] = restore(
            cls, urn, dict(record.inputs), parent_urn=source.parent if now is not None else record.parent,
            protect=source.protect, retain_on_delete=source.retain_on_delete,
            ignore_changes=list(source.options.get("ignore_changes", ())),
            delete_before_replace=bool(source.options.get("delete_before_replace", False)), aliases=aliases)
    deps = {renamed.get(r.urn, r.urn): [renamed.get(d, d) for d in r.deps if renamed.get(d, d) in resources]
            for r in detail.resources}
    return DesiredGraph(stack=session.stack, project=session.project.name, resources=resources,
                        deps=deps, exports=dict(detail.outputs))


def renamed_since(then: Iterable[ResourceState], now: Mapping[str, ResourceState]) -> dict[str, str]:
    """The old URN → current URN of each resource recorded ``then`` that the state
    records ``now`` under another URN, found by the aliases recorded now (the URNs a
    program declared it may have had). A match that is not one to one is left alone:
    an old URN recorded now as well (another object has it), one two records claim,
    or a current URN recorded then too."""
    old = {record.urn for record in then}
    claims: dict[str, list[str]] = {}
    for urn, record in now.items():
        if urn in old:
            continue
        for alias in record.options.get("aliases", ()):
            if alias in old and alias not in now:
                claims.setdefault(alias, []).append(urn)
    return {alias: urns[0] for alias, urns in claims.items() if len(urns) == 1}
