"""rollback N: plan and apply the changes that return the stack to checkpoint N's inputs.

The desired graph is rebuilt from the resources recorded at that checkpoint, with
the inputs as they were resolved then. Values computed from resources that have since
been replaced (new ids) are not re-derived; the preview shows them before anything runs.
"""

from __future__ import annotations

from typing import Any

from stackwright.errors import ProjectError
from stackwright.model.desired import DesiredGraph
from stackwright.model.resource import Resource, restore
from stackwright.engine.apply import ApplyOptions
from stackwright.engine.events import EventSink
from stackwright.operations.session import StackSession
from stackwright.operations.update import Check, Confirm, UpdateOutcome, up
from stackwright.state.records import CheckpointDetail


def rollback(session: StackSession, number: int, *, options: ApplyOptions, sink: EventSink,
             confirm: Confirm, check: Check | None = None,
             audit: dict[str, Any] | None = None) -> UpdateOutcome:
    """Going back can delete what was created since: ``check`` (policies) judges it too."""
    detail = session.store.checkpoint(session.stack, number)
    desired = desired_from_checkpoint(session, detail)
    return up(session, options=options, sink=sink, confirm=confirm, kind="rollback", desired=desired,
              check=check, audit=audit)


def desired_from_checkpoint(session: StackSession, detail: CheckpointDetail) -> DesiredGraph:
    resources: dict[str, Resource] = {}
    for record in detail.resources:
        cls = session.providers.resource(record.type).resource_class
        if cls is None:
            raise ProjectError(f"cannot roll back {record.urn}: its provider has no resource class")
        resources[record.urn] = restore(cls, record.urn, dict(record.inputs), parent_urn=record.parent,
                                        protect=record.protect, retain_on_delete=record.retain_on_delete)
    deps = {r.urn: [d for d in r.deps if d in resources] for r in detail.resources}
    return DesiredGraph(stack=session.stack, project=session.project.name, resources=resources,
                        deps=deps, exports=dict(detail.outputs))
