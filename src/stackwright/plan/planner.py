"""Computing a Plan from the desired graph and a state snapshot. Pure: the only calls
out are to providers' ``check`` and ``diff``, which do no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stackwright.errors import GraphError, InputError, PlanError, StackwrightError
from stackwright.graph import CycleFound, Graph
from stackwright.model.desired import DesiredGraph
from stackwright.model.output import resolve_value
from stackwright.model.resource import Resource, urn_name
from stackwright.model.values import UNKNOWN, is_unknown, reveal, rewrap_secrets
from stackwright.plan.diff import diff_inputs
from stackwright.plan.plan import Leftover, Op, Plan, Step
from stackwright.providers.protocol import ProviderLookup, ResourceProvider
from stackwright.state.records import ResourceState, Snapshot


@dataclass
class _Planning:
    desired: DesiredGraph
    snapshot: Snapshot
    providers: ProviderLookup
    predicted: dict[str, dict[str, Any]] = field(default_factory=dict)
    claimed: dict[str, str] = field(default_factory=dict)
    """Old URN → new URN for records matched through aliases."""
    errors: list[StackwrightError] = field(default_factory=list)

    def lookup(self, resource: Resource, prop: str) -> Any:
        return self.predicted.get(resource.urn, {}).get(prop, UNKNOWN)


def make_plan(
    desired: DesiredGraph,
    snapshot: Snapshot,
    providers: ProviderLookup,
    *,
    targets: Iterable[str] = (),
) -> Plan:
    """The steps that turn ``snapshot`` into ``desired``.

    Raises GraphError for cycles, PlanError listing every protected resource the plan
    would delete or replace, and InputError from providers' ``check``.
    """
    planning = _Planning(desired, snapshot, providers)
    order = ordered_urns(desired)
    steps = {urn: _plan_resource(planning, desired.resources[urn]) for urn in order}
    deletes = _plan_deletes(planning)
    if planning.errors:
        raise _combined(planning.errors)
    all_steps = [steps[urn] for urn in order] + deletes
    left = leftovers(snapshot)
    if targets:
        all_steps = _only_targets(all_steps, set(targets), desired)
        planned = {step.urn for step in all_steps}
        left = [o for o in left if o.urn in planned]
    outputs = resolve_value(desired.exports, planning.lookup)
    return Plan(
        stack=desired.stack, project=desired.project, lineage=snapshot.lineage,
        base_serial=snapshot.serial, steps=tuple(all_steps), outputs=outputs,
        old_outputs=snapshot.outputs, leftovers=tuple(left),
    )


def leftovers(snapshot: Snapshot) -> list[Leftover]:
    """Pending deletes of objects the state no longer records under their URN: the old
    halves of replacements. (A pending delete of the recorded object is an interrupted
    delete; recovery resolves those before planning.)"""
    out = []
    for op in snapshot.pending:
        row = snapshot.resources.get(op.urn)
        if op.op == "delete" and op.resource_id is not None and (row is None or row.id != op.resource_id):
            out.append(Leftover(urn=op.urn, type=op.type, id=op.resource_id, token=op.token,
                                inputs=op.inputs))
    return out


def ordered_urns(desired: DesiredGraph) -> list[str]:
    """Declaration order where possible, dependencies first. Names a cycle if any."""
    graph: Graph[str] = Graph({urn: desired.deps.get(urn, []) for urn in desired.resources})
    try:
        graph.topological_order()
    except CycleFound as exc:
        cycle = [urn_name(str(u)) for u in exc.cycle]
        first = desired.resources[str(exc.cycle[0])]
        raise GraphError(
            "dependency cycle: " + " -> ".join(cycle),
            file=first.decl_file, line=first.decl_line,
            hint="remove one of these dependencies (depends_on or an Output passed as input)",
        ) from None
    return _stable_order(desired)


def _stable_order(desired: DesiredGraph) -> list[str]:
    """Declaration order is already dependency-first unless depends_on pointed at a
    component declared later; a DFS fixes those few."""
    seen: set[str] = set()
    order: list[str] = []
    for urn in desired.resources:
        stack = [(urn, iter(desired.deps.get(urn, ())))]
        if urn in seen:
            continue
        seen.add(urn)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                order.append(node)
            elif child not in seen:
                seen.add(child)
                stack.append((child, iter(desired.deps.get(child, ()))))
    return order


def _plan_resource(p: _Planning, resource: Resource) -> Step:
    handler = p.providers.resource(resource.type_token)
    old = _old_record(p, resource)
    if resource.read_id is not None:
        return _plan_read(p, resource, old)
    inputs = _resolved_inputs(p, resource, handler)
    if old is not None:
        inputs = _ignoring_changes(resource, inputs, old)
    op, replace_keys, dbr = _decide(p, resource, handler, old, inputs)
    p.predicted[resource.urn] = _predict_outputs(resource, handler, op, inputs, old)
    diffs = () if old is None or op is Op.SAME else diff_inputs(old.inputs, inputs, frozenset(replace_keys))
    previous = old.urn if old is not None and old.urn != resource.urn else None
    deps = tuple(p.desired.deps.get(resource.urn, ()))
    return Step(
        urn=resource.urn, type=resource.type_token, op=op, inputs=inputs,
        old_inputs=old.inputs if old else None, old_outputs=old.outputs if old else None,
        old_id=old.id if old else None, diffs=diffs, replace_keys=replace_keys, deps=deps,
        parent=resource.resource_parent.urn if resource.resource_parent else None,
        protect=resource.resource_options.protect, retain_on_delete=resource.resource_options.retain_on_delete,
        delete_before_replace=dbr, previous_urn=previous, decl=resource.declared_at(),
        old_deps=tuple(old.deps) if old else (),
        meta_changed=old is not None and _meta_changed(resource, old, deps),
    )


def _plan_read(p: _Planning, resource: Resource, old: ResourceState | None) -> Step:
    """A data lookup: read at apply unless the same object is recorded already."""
    read_id = resolve_value(resource.read_id, p.lookup)
    if old is not None and old.id == read_id:
        p.predicted[resource.urn] = {**old.outputs, "id": old.id}
        op = Op.SAME
    else:
        p.predicted[resource.urn] = {**dict.fromkeys(type(resource).output_names(), UNKNOWN), "id": read_id}
        op = Op.READ
    return Step(
        urn=resource.urn, type=resource.type_token, op=op, inputs={"id": read_id},
        old_inputs=old.inputs if old else None, old_outputs=old.outputs if old else None,
        old_id=old.id if old else None, deps=tuple(p.desired.deps.get(resource.urn, ())),
        parent=resource.resource_parent.urn if resource.resource_parent else None,
        retain_on_delete=True, decl=resource.declared_at(), old_deps=tuple(old.deps) if old else (),
    )


def _old_record(p: _Planning, resource: Resource) -> ResourceState | None:
    old = p.snapshot.resources.get(resource.urn)
    if old is not None:
        p.claimed[resource.urn] = resource.urn
        return old
    for alias in resource.alias_urns():
        candidate = p.snapshot.resources.get(alias)
        if candidate is not None and alias not in p.claimed and alias not in p.desired.resources:
            p.claimed[alias] = resource.urn
            return candidate
    return None


def _resolved_inputs(p: _Planning, resource: Resource, handler: ResourceProvider) -> dict[str, Any]:
    inputs: dict[str, Any] = resolve_value(resource.inputs, p.lookup)
    if is_unknown(inputs):
        return inputs
    try:
        checked = handler.check(reveal(inputs))
    except InputError as exc:
        # Providers name only the property; say which resource and where it was declared.
        exc.resource = exc.resource or resource.urn
        if exc.file is None:
            exc.file, exc.line = resource.decl_file, resource.decl_line
        raise
    rewrapped: dict[str, Any] = rewrap_secrets(inputs, checked)
    return rewrapped


def _ignoring_changes(resource: Resource, inputs: dict[str, Any], old: ResourceState) -> dict[str, Any]:
    for key in resource.resource_options.ignore_changes:
        top = key.split(".", 1)[0]
        if top in old.inputs:
            inputs[top] = old.inputs[top]
    return inputs


def _decide(
    p: _Planning, resource: Resource, handler: ResourceProvider,
    old: ResourceState | None, inputs: dict[str, Any],
) -> tuple[Op, tuple[str, ...], bool]:
    if old is None:
        return Op.CREATE, (), False
    if inputs == old.inputs:
        return Op.SAME, (), False
    result = handler.diff(reveal(old.inputs), reveal(old.outputs), reveal(inputs))
    if not result.changed:
        return Op.SAME, (), False
    if not result.replaces:
        return Op.UPDATE, (), False
    if old.protect or resource.resource_options.protect:
        p.errors.append(_protected(resource.urn, "replace", resource.declared_at(), result.replaces))
    dbr = resource.resource_options.delete_before_replace or result.delete_before_replace
    return Op.REPLACE, tuple(result.replaces), dbr


def _predict_outputs(
    resource: Resource, handler: ResourceProvider, op: Op, inputs: dict[str, Any],
    old: ResourceState | None,
) -> dict[str, Any]:
    if op is Op.SAME and old is not None:
        return {**old.outputs, "id": old.id}
    if op is Op.UPDATE and old is not None:
        predicted = {**old.outputs, **inputs, "id": old.id}
        for name in handler.computed_on_update:
            predicted[name] = UNKNOWN
        return predicted
    unknowns = dict.fromkeys(type(resource).output_names(), UNKNOWN)
    return {**unknowns, **inputs, "id": UNKNOWN}


def _meta_changed(resource: Resource, old: ResourceState, deps: tuple[str, ...]) -> bool:
    parent = resource.resource_parent.urn if resource.resource_parent else None
    return (
        old.parent != parent or list(old.deps) != list(deps)
        or old.protect != resource.resource_options.protect
        or old.retain_on_delete != resource.resource_options.retain_on_delete
    )


def _plan_deletes(p: _Planning) -> list[Step]:
    """Delete steps for recorded resources the program no longer declares."""
    steps = []
    for urn, old in p.snapshot.resources.items():
        if urn in p.claimed:
            continue
        if old.protect:
            p.errors.append(_protected(urn, "delete", None, ()))
        steps.append(Step(
            urn=urn, type=old.type, op=Op.DELETE, old_inputs=old.inputs,
            old_outputs=old.outputs, old_id=old.id, parent=old.parent,
            protect=old.protect, retain_on_delete=old.retain_on_delete,
            old_deps=tuple(old.deps),
        ))
    return steps


def _protected(urn: str, action: str, where: str | None, keys: Iterable[str]) -> PlanError:
    because = f" (because {', '.join(keys)} changed)" if keys else ""
    return PlanError(
        f"resource is protected; the plan would {action} it{because}",
        resource=urn, file=where.rsplit(":", 1)[0] if where else None,
        line=int(where.rsplit(":", 1)[1]) if where and where.rsplit(":", 1)[1].isdigit() else None,
        hint="set protect=False and run `up` first if you really mean to "
        f"{action} it, or undo the change",
    )


def _combined(errors: list[StackwrightError]) -> StackwrightError:
    if len(errors) == 1:
        return errors[0]
    first = errors[0]
    rest = "; ".join(e.headline() for e in errors[1:])
    return PlanError(f"{first.headline()}; and {len(errors) - 1} more: {rest}", hint=first.hint)


def _only_targets(steps: list[Step], targets: set[str], desired: DesiredGraph) -> list[Step]:
    """Targeted steps plus the creates/updates they need; everything else is left out."""
    known = {s.urn for s in steps}
    unknown = sorted(targets - known)
    if unknown:
        raise PlanError(
            f"--target names no resource of this stack: {', '.join(unknown)}",
            hint="`stackwright state ls` or `stackwright preview` lists the URNs",
        )
    graph: Graph[str] = Graph({urn: list(deps) for urn, deps in desired.deps.items()})
    needed = graph.closure(targets)
    return [s for s in steps if s.urn in targets or (s.urn in needed and s.op is not Op.DELETE)]
