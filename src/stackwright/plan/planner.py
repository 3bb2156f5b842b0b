"""Computing a Plan from the desired graph and a state snapshot. Pure: the only calls
out are to providers' ``check`` and ``diff``, which do no I/O."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from stackwright.errors import GraphError, InputError, PlanError, StackwrightError
from stackwright.graph import Graph
from stackwright.model.desired import DesiredGraph
from stackwright.model.output import HOLDS_SECRET, HOLDS_UNKNOWN, resolve_marking, resolve_value
from stackwright.model.resource import Resource, urn_name, urn_parts
from stackwright.model.values import (
    UNKNOWN, FrozenDict, Secret, is_plain, is_unknown, mask_message, masked, remark_secrets, reveal, secret_texts,
    to_json,
)
from stackwright.plan.diff import PropertyDiff, diff_inputs
from stackwright.plan.links import LinkEdge, link_edges, with_links
from stackwright.plan.plan import Leftover, Op, Plan, Step, make_step
from stackwright.providers.protocol import Containment, ProviderLookup, ResourceProvider
from stackwright.state.records import ResourceState, Snapshot


@dataclass
class _Planning:
    desired: DesiredGraph
    snapshot: Snapshot
    providers: ProviderLookup
    predicted: dict[str, dict[str, Any] | ResourceState] = field(default_factory=dict)
    """What each planned resource's outputs will be: a mapping, or the record itself for
    a resource that stays as recorded (its outputs and id, not copied)."""
    claimed: dict[str, str] = field(default_factory=dict)
    """Old URN → new URN for records matched through aliases."""
    errors: list[StackwrightError] = field(default_factory=list)
    handlers: dict[str, ResourceProvider] = field(default_factory=dict)
    copying: dict[str, bool] = field(default_factory=dict)
    declared: dict[tuple[str | None, int | None], str] = field(default_factory=dict)
    """``file:line`` texts by place: resources declared in a loop share one."""
    kind: str = "up"
    """The command the plan is for (``Plan.kind``): what a refusal advises depends on it."""

    def lookup(self, resource: Resource, prop: str) -> Any:
        found = self.predicted.get(resource.urn)
        if found is None:
            return UNKNOWN
        if isinstance(found, ResourceState):
            return found.id if prop == "id" else found.outputs.get(prop, UNKNOWN)
        return found.get(prop, UNKNOWN)

    def lookup_recorded(self, resource: Resource, prop: str) -> Any:
        """``lookup``, where a resource left out of the plan (``--target``) stays as
        recorded, as ``up --target`` leaves it."""
        if resource.urn not in self.predicted:
            recorded = self.snapshot.resources.get(resource.urn)
            if recorded is not None:
                self.predicted[resource.urn] = recorded
        return self.lookup(resource, prop)

    def handler(self, type_token: str) -> ResourceProvider:
        found = self.handlers.get(type_token)
        if found is None:
            found = self.handlers[type_token] = self.providers.resource(type_token)
        return found

    def only_copies(self, type_token: str) -> bool:
        """The type's ``check`` is the default one, which returns a copy of the inputs:
        planning, which resolved them into a new dict already, skips it."""
        found = self.copying.get(type_token)
        if found is None:
            check = self.handler(type_token).check
            found = self.copying[type_token] = getattr(check, "__func__", None) is ResourceProvider.check
        return found

    def declared_at(self, resource: Resource) -> str:
        place = (resource.decl_file, resource.decl_line)
        found = self.declared.get(place)
        if found is None:
            found = self.declared[place] = resource.declared_at()
        return found


def make_plan(
    desired: DesiredGraph,
    snapshot: Snapshot,
    providers: ProviderLookup,
    *,
    targets: Iterable[str] = (),
    kind: str = "up",
) -> Plan:
    """The steps that turn ``snapshot`` into ``desired``, for the command ``kind``
    (``up``, ``destroy``, ``rollback``).

    Resources that import a name another one exports (``ResourceProvider.links``)
    depend on it as if through ``depends_on``. Raises GraphError for cycles, PlanError
    listing every protected resource the plan would delete or replace, and InputError
    from providers' ``check``.
    """
    edges = link_edges(desired, providers)
    desired = with_links(desired, edges)
    planning = _Planning(desired, snapshot, providers, kind=kind)
    order = ordered_urns(desired, edges)
    chosen = _targeted(set(targets), desired, snapshot) if targets else None
    if chosen is not None:
        order = [urn for urn in order if urn in chosen.needed]
    steps = {urn: _plan_resource(planning, desired.resources[urn]) for urn in order}
    deletes = _plan_deletes(planning, chosen.urns if chosen is not None else None)
    deletes = _contents_first(planning, steps, deletes, targeted=chosen is not None)
    if planning.errors:
        raise _refused(planning, steps, deletes, order, chosen)
    outputs = resolve_value(desired.exports, planning.lookup_recorded)
    plan = _assembled(planning, steps, deletes, order, chosen, outputs)
    _run_leaves(desired, planning)
    return plan


def _assembled(planning: _Planning, steps: dict[str, Step], deletes: list[Step], order: list[str],
               chosen: _Targets | None, outputs: Any) -> Plan:
    """The plan of the steps found: deletes after the rest, dependents first, and with
    ``--target`` only what it names (and the leftovers of those)."""
    _delete_dependents_first(steps, planning.claimed)
    all_steps = [steps[urn] for urn in order] + deletes
    snapshot, desired = planning.snapshot, planning.desired
    left = leftovers(snapshot)
    if chosen is not None:
        all_steps = chosen.only(all_steps)
        planned = {step.urn for step in all_steps}
        left = [o for o in left if o.urn in planned]
    return Plan(
        stack=desired.stack, project=desired.project, lineage=snapshot.lineage,
        base_serial=snapshot.serial, steps=tuple(all_steps), outputs=outputs,
        old_outputs=snapshot.outputs, leftovers=tuple(left), refreshed=snapshot.live, kind=planning.kind,
    )


def _refused(planning: _Planning, steps: dict[str, Step], deletes: list[Step], order: list[str],
             chosen: _Targets | None) -> StackwrightError:
    """The refusal of a plan that would delete or replace protected resources, holding
    that plan (``PlanError.plan``) to be shown before it. The callbacks nothing uses do
    not run for a plan that is refused; one a stack output runs that raises leaves the
    refusal without a plan."""
    error = _combined(planning.errors)
    if not isinstance(error, PlanError):
        return error
    try:
        outputs = resolve_value(planning.desired.exports, planning.lookup_recorded)
    except StackwrightError:
        return error
    error.plan = _assembled(planning, steps, deletes, order, chosen, outputs)
    return error


def _run_leaves(desired: DesiredGraph, planning: _Planning) -> None:
    """The callbacks of the Outputs nothing uses whose sources are known now: one that
    raises fails the plan as a stack output's callback does (the others wait for the
    apply)."""
    raised = desired.leaves.run(planning.lookup_recorded)
    errors = [exc for exc in raised if isinstance(exc, StackwrightError)]
    if len(errors) < len(raised):
        raise next(exc for exc in raised if not isinstance(exc, StackwrightError))
    if errors:
        raise _combined(errors)


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


def ordered_urns(desired: DesiredGraph, links: Iterable[LinkEdge] = ()) -> list[str]:
    """Declaration order where possible, dependencies first. Names a cycle if any,
    saying which of its edges are imports of exported names."""
    order, cycle = _dependencies_first(desired)
    if cycle:
        raise _cycle_error(desired, cycle, links)
    return order


def _dependencies_first(desired: DesiredGraph) -> tuple[list[str], list[str]]:
    """Declaration order is already dependency-first unless depends_on pointed at a
    component declared later; one depth-first pass fixes those few and finds a cycle
    on the way (a dependency met again while it is still being ordered): the order,
    and the cycle (empty when there is none), its first vertex repeated last."""
    deps = desired.deps
    seen: set[str] = set()
    done: set[str] = set()
    order: list[str] = []
    for urn in desired.resources:
        if urn in seen:
            continue
        seen.add(urn)
        if done.issuperset(deps.get(urn, ())):  # the common case: nothing to reorder
            done.add(urn)
            order.append(urn)
            continue
        path = [urn]
        stack = [iter(deps.get(urn, ()))]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                node = path.pop()
                done.add(node)
                order.append(node)
            elif child not in seen:
                seen.add(child)
                path.append(child)
                stack.append(iter(deps.get(child, ())))
            elif child not in done:
                return order, [*path[path.index(child):], child]
    return order, []


def _cycle_error(desired: DesiredGraph, cycle: list[str], links: Iterable[LinkEdge]) -> GraphError:
    first = desired.resources.get(cycle[0])
    by_edge = {(e.importer, e.exporter): e for e in links}
    found = [by_edge[pair] for pair in zip(cycle, cycle[1:], strict=False) if pair in by_edge]
    because = f" ({'; '.join(e.explain() for e in found)})" if found else ""
    return GraphError(
        "dependency cycle: " + " -> ".join(urn_name(u) for u in cycle) + because,
        file=first.decl_file if first else None, line=first.decl_line if first else None,
        hint="remove one of these dependencies (depends_on, an Output passed as input"
        + (", or one of the imports" if found else "") + ")",
    )


def _plan_resource(p: _Planning, resource: Resource) -> Step:
    handler = p.handler(resource.type_token)
    old = _old_record(p, resource)
    if resource.read_id is not None:
        return _plan_read(p, resource, old)
    inputs = _resolved_inputs(p, resource, handler)
    if (old is not None and old.urn == resource.urn and not resource.resource_options.ignore_changes
            and inputs == old.inputs):
        same = _unchanged(p, resource, old, inputs)
        if same is not None:
            return same
    kept: tuple[str, ...] = ()
    if old is not None and resource.resource_options.ignore_changes:
        kept = _kept_by_ignore_changes(resource, inputs, old)
        inputs = _ignoring_changes(resource, inputs, old)
    op, replace_keys, dbr = _decide(p, resource, handler, old, inputs)
    p.predicted[resource.urn] = _predict_outputs(resource, handler, op, inputs, old)
    diffs = () if old is None or op is Op.SAME else diff_inputs(old.inputs, inputs, frozenset(replace_keys))
    previous = old.urn if old is not None and old.urn != resource.urn else None
    deps = tuple(p.desired.deps.get(resource.urn, ()))
    recorded = recorded_options(resource)
    options = () if old is None else option_diffs(resource, old, deps, p.claimed, recorded)
    return make_step(
        urn=resource.urn, type=resource.type_token, op=op, inputs=inputs,
        old_inputs=old.inputs if old else None, old_outputs=old.outputs if old else None,
        old_id=old.id if old else None, diffs=diffs, replace_keys=replace_keys, deps=deps,
        parent=resource.resource_parent.urn if resource.resource_parent else None,
        protect=resource.resource_options.protect, retain_on_delete=resource.resource_options.retain_on_delete,
        delete_before_replace=dbr, previous_urn=previous, decl=p.declared_at(resource),
        old_deps=tuple(old.deps) if old else (), meta_changed=bool(options), option_diffs=options,
        options=recorded,
        warnings=_side_effect_warning(handler, op, diffs), notes=kept,
    )


def _unchanged(p: _Planning, resource: Resource, old: ResourceState, inputs: dict[str, Any]) -> Step | None:
    """The step of a resource recorded under its URN with the very inputs and options
    the program declares (most of them, in most plans): it stays as it is. None when an
    option differs: the caller then plans it in full."""
    opts = resource.resource_options
    parent = resource.resource_parent.urn if resource.resource_parent else None
    wanted = p.desired.deps.get(resource.urn, _NO_DEPS)
    recorded = recorded_options(resource)
    if not (old.parent == parent and old.protect == opts.protect and old.retain_on_delete == opts.retain_on_delete
            and old.options == recorded and old.deps == wanted):
        return None
    p.predicted[resource.urn] = old
    deps = tuple(wanted)
    # One frozen copy for both: they are equal, and a plan's mappings are copied to freeze them.
    kept = FrozenDict(inputs)
    return make_step(
        urn=resource.urn, type=resource.type_token, op=_SAME, inputs=kept, old_inputs=kept,
        old_outputs=old.outputs, old_id=old.id, deps=deps, parent=parent, protect=opts.protect,
        retain_on_delete=opts.retain_on_delete, decl=p.declared_at(resource), old_deps=deps, options=recorded,
    )


def _side_effect_warning(handler: ResourceProvider, op: Op, diffs: tuple[PropertyDiff, ...]) -> tuple[str, ...]:
    """A stateful resource replaced although the program changed none of the properties
    that force it: each of them only awaits a value that another replacement or create
    computes. Easy to miss in a review of the change that caused it."""
    forcing = [d for d in diffs if d.replaces]
    if op is not Op.REPLACE or not handler.stateful or not forcing:
        return ()
    if not all(is_unknown(d.new) for d in forcing):
        return ()
    paths = ", ".join(dict.fromkeys(d.path.split("[", 1)[0] for d in forcing))
    return (f"stateful {handler.type_token} is replaced as a side effect: {paths} changes only "
            "because a resource it uses is replaced or created; its data is lost unless kept elsewhere",)


def _plan_read(p: _Planning, resource: Resource, old: ResourceState | None) -> Step:
    """A data lookup: read at apply unless the same object is recorded already, read
    through the same provider instance (another cluster's object of that id is another
    object)."""
    read_id = resolve_value(resource.read_id, p.lookup)
    inputs = {"id": read_id, **_instance_input(p, resource)}
    key = p.handler(resource.type_token).provider_input
    if old is not None and old.id == read_id and (key is None or old.inputs.get(key) == inputs.get(key)):
        p.predicted[resource.urn] = {**old.outputs, "id": old.id}
        op = Op.SAME
    else:
        p.predicted[resource.urn] = {**dict.fromkeys(type(resource).output_names(), UNKNOWN), "id": read_id}
        op = Op.READ
    return make_step(
        urn=resource.urn, type=resource.type_token, op=op, inputs=inputs,
        old_inputs=old.inputs if old else None, old_outputs=old.outputs if old else None,
        old_id=old.id if old else None, deps=tuple(p.desired.deps.get(resource.urn, ())),
        parent=resource.resource_parent.urn if resource.resource_parent else None,
        retain_on_delete=True, decl=resource.declared_at(), old_deps=tuple(old.deps) if old else (),
    )


def _instance_input(p: _Planning, resource: Resource) -> dict[str, str]:
    """The input naming the provider instance a lookup reads through, as a declared
    resource of its type carries it (e.g. ``provider`` of Kubernetes objects)."""
    key = p.handler(resource.type_token).provider_input
    instance = resource.resource_options.provider_instance(resource.resource_parent) if key else None
    return {key: instance.urn} if instance is not None else {}


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
    try:
        resolved, marks = resolve_marking(resource.inputs, p.lookup)
        inputs: dict[str, Any] = resolved
        resource.check_resolved(inputs)  # the values of Outputs known now: before any provider sees them
        if marks & HOLDS_UNKNOWN:
            return inputs
        if not marks & HOLDS_SECRET:
            return inputs if p.only_copies(resource.type_token) else handler.check(inputs)
        try:
            checked = handler.check(reveal(inputs))
        except StackwrightError as exc:
            _mask_error(exc, secret_texts(inputs))
            raise
    except StackwrightError as exc:
        # Providers name only the property, callbacks only their line: say which
        # resource, and where it was declared.
        exc.resource = exc.resource or resource.urn
        if exc.file is None:
            exc.file, exc.line = resource.decl_file, resource.decl_line
        raise
    return _rewrap_secrets(inputs, checked)


def _mask_error(exc: StackwrightError, secrets: set[str]) -> None:
    """A provider checked revealed inputs and may quote a value it refused (a
    CloudFormation parameter outside its AllowedPattern): no secret in its words, as
    written or as ``repr`` escapes it."""
    exc.message = mask_message(exc.message, secrets)
    exc.args = (exc.message,)
    exc.hint = mask_message(exc.hint, secrets) if exc.hint else exc.hint
    exc.__cause__ = exc.__context__ = None


def _rewrap_secrets(original: Mapping[str, Any], checked: dict[str, Any]) -> dict[str, Any]:
    """The provider checked revealed inputs: mark their secrets again, at every depth
    (``environment={"X": password.result}`` stays secret inside the dict)."""
    return {key: remark_secrets(original.get(key), value) for key, value in checked.items()}


def _kept_by_ignore_changes(resource: Resource, inputs: Mapping[str, Any], old: ResourceState) -> tuple[str, ...]:
    """Says which declared values the plan leaves alone because ``ignore_changes`` lists
    them, although the recorded (or, refreshed, live) value differs: after drift, why
    `up` does not put them back."""
    notes = []
    for top in dict.fromkeys(key.split(".", 1)[0] for key in resource.resource_options.ignore_changes):
        if top in old.inputs and top in inputs and not is_unknown(inputs[top]) and inputs[top] != old.inputs[top]:
            notes.append(f"{top}: kept at {_short(old.inputs[top])}, not set to the declared "
                         f"{_short(inputs[top])}: ignore_changes lists it")
    return tuple(notes)


def _short(value: Any) -> str:
    text = json.dumps(to_json(masked(value)), sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


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
        p.errors.append(_protected(resource.urn, "replace", resource, result.replaces))
    dbr = resource.resource_options.delete_before_replace or result.delete_before_replace
    return Op.REPLACE, tuple(result.replaces), dbr


def _delete_dependents_first(steps: dict[str, Step], renamed: Mapping[str, str]) -> None:
    """A resource replaced delete-first can go only after the resources that use it are
    gone, and comes back before they do: a dependent that is itself replaced must then
    be deleted before it is created again too, whatever its own provider prefers (as
    Pulumi orders such chains). Otherwise the chain could not be ordered."""
    queue = [urn for urn, step in steps.items() if step.op is Op.REPLACE and step.delete_before_replace]
    if not queue:
        return
    dependents: dict[str, list[str]] = {}
    for urn, step in steps.items():
        for dep in step.old_deps:
            dependents.setdefault(renamed.get(dep, dep), []).append(urn)
    while queue:
        cause = queue.pop()
        for urn in dependents.get(cause, ()):
            step = steps[urn]
            if step.op is Op.REPLACE and not step.delete_before_replace:
                note = f"deleted before it is created again: it uses {urn_name(cause)}, which is replaced delete-first"
                steps[urn] = replace(step, delete_before_replace=True, notes=(*step.notes, note))
                queue.append(urn)


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


def option_diffs(
    resource: Resource, old: ResourceState, deps: tuple[str, ...], renamed: Mapping[str, str],
    recorded: Mapping[str, Any],
) -> tuple[PropertyDiff, ...]:
    """The options the program changed since the record was written: apply records
    them even when the provider has nothing to do. ``renamed`` maps the old URNs of
    records matched through aliases to their new ones, so a renamed dependency or
    parent is not a change; ``recorded`` is ``recorded_options(resource)``."""
    opts = resource.resource_options
    parent = resource.resource_parent.urn if resource.resource_parent else None
    if (old.parent == parent and old.protect == opts.protect and old.retain_on_delete == opts.retain_on_delete
            and old.options == recorded and tuple(old.deps) == deps):
        return ()  # as recorded; a renamed URN is never one the program declares, so none is missed
    old_parent = renamed.get(old.parent, old.parent) if old.parent else None
    old_deps = [renamed.get(d, d) for d in old.deps]
    pairs = [("parent", old_parent, parent), ("dependencies", old_deps, list(deps)),
             ("protect", old.protect, opts.protect),
             ("retain_on_delete", old.retain_on_delete, opts.retain_on_delete)]
    pairs += [(name, old.options.get(name, default), recorded.get(name, default))
              for name, default in OPTION_DEFAULTS.items()]
    return tuple(PropertyDiff(name, "update", was, now) for name, was, now in pairs if was != now)


_NO_DEPS: list[str] = []
_SAME = Op.SAME
"""A module constant: reading an attribute of an Enum class goes through ``EnumType.__getattr__``."""

OPTION_DEFAULTS: dict[str, Any] = {"ignore_changes": [], "delete_before_replace": False, "aliases": []}
"""The options kept in ``ResourceState.options``, and the value a record without one has."""


def recorded_options(resource: Resource) -> dict[str, Any]:
    """``ResourceState.options`` for ``resource``: only the options not at their defaults."""
    opts = resource.resource_options
    recorded: dict[str, Any] = {}
    if opts.ignore_changes:
        recorded["ignore_changes"] = list(opts.ignore_changes)
    if opts.delete_before_replace:
        recorded["delete_before_replace"] = opts.delete_before_replace
    aliases = resource.alias_urns()
    if aliases:
        recorded["aliases"] = aliases
    return recorded


def _plan_deletes(p: _Planning, only: set[str] | None = None) -> list[Step]:
    """Delete steps for recorded resources the program no longer declares; with
    ``only`` (``--target``), for those among them alone: the rest are not planned, and
    the program may have left them undeclared."""
    steps: list[Step] = []
    if len(p.claimed) == len(p.snapshot.resources):  # each record is claimed (by its URN or an alias)
        return steps
    for urn, old in p.snapshot.resources.items():
        if urn in p.claimed or (only is not None and urn not in only):
            continue
        if old.protect:
            p.errors.append(_protected(urn, "delete", None, (), imported=old.external, kind=p.kind))
        steps.append(make_step(
            urn=urn, type=old.type, op=Op.DELETE, old_inputs=old.inputs,
            old_outputs=old.outputs, old_id=old.id, parent=old.parent,
            protect=old.protect, retain_on_delete=old.retain_on_delete,
            old_deps=tuple(old.deps),
        ))
    return steps


def _contents_first(p: _Planning, steps: Mapping[str, Step], deletes: list[Step], *,
                    targeted: bool) -> list[Step]:
    """Deleting an object that holds others (``ResourceProvider.containment``: a
    Kubernetes namespace and what lives in it) deletes them with it. Each recorded
    resource within a scope a step deletes must then be deleted by the plan too, and
    goes first; its own delete step is judged by protection and policies as any
    other. One the plan keeps (still declared, replaced in the same scope, retained on
    delete, or left out by ``--target``) is an error naming both. Returns ``deletes``,
    those that must go first made to wait for nothing their holder's delete waits for."""
    holders = _holders(p, [*steps.values(), *deletes])
    if not holders:
        return deletes
    by_record: dict[str, Step] = {step.urn: step for step in deletes}
    for old_urn, new_urn in p.claimed.items():
        if new_urn in steps:
            by_record[old_urn] = steps[new_urn]
    taken: dict[str, list[str]] = {}
    kept: dict[str, list[str]] = {}
    for urn, record in p.snapshot.resources.items():
        handler = p.handler(record.type)
        if type(handler).containment is ResourceProvider.containment:
            continue
        for scope in handler.containment(record.type, record.id, record.inputs, record.outputs).within:
            holder = holders.get(scope)
            if holder is None or holder.urn == urn or by_record.get(urn) is holder:
                continue
            step = by_record.get(urn)
            if step is not None and _gone(step, handler, scope):
                taken.setdefault(urn, []).append(holder.urn)
            else:
                kept.setdefault(holder.urn, []).append(urn)
    by_urn = {step.urn: step for step in holders.values()}
    for holder_urn, urns in kept.items():
        p.errors.append(_kept_inside(p, by_urn[holder_urn], urns, targeted))
    if not taken:
        return deletes
    return [replace(step, old_deps=(*step.old_deps, *(h for h in taken[step.urn] if h not in step.old_deps)))
            if step.urn in taken else step for step in deletes]


def _holders(p: _Planning, steps: Iterable[Step]) -> dict[str, Step]:
    """The scopes whose holder a step of the plan deletes, each with that step."""
    held: dict[str, Step] = {}
    delete, replacing = Op.DELETE, Op.REPLACE  # read once: Enum attributes go through a hook
    for step in steps:
        if not (step.op is replacing or (step.op is delete and not step.retain_on_delete)):
            continue
        handler = p.handler(step.type)
        if type(handler).containment is ResourceProvider.containment or step.old_id is None:
            continue
        found = handler.containment(step.type, step.old_id, step.old_inputs or {}, step.old_outputs or {})
        held.update(dict.fromkeys(found.holds, step))
    return held


def _gone(step: Step, handler: ResourceProvider, scope: str) -> bool:
    """Whether the plan takes the recorded object of ``step`` out of ``scope``: it
    deletes it, or replaces it by one elsewhere."""
    if step.op is Op.DELETE:
        return not step.retain_on_delete
    if step.op is not Op.REPLACE:
        return False
    new: Containment = handler.containment(step.type, None, step.inputs or {}, step.old_outputs or {})
    return scope not in new.within


def _kept_inside(p: _Planning, holder: Step, urns: list[str], targeted: bool) -> PlanError:
    names = ", ".join(f"{urn_name(u)} ({p.snapshot.resources[u].type})" for u in sorted(urns, key=urn_name))
    declared = p.desired.resources.get(holder.urn)
    why = ("the plan replaces it, and deleting the old one" if holder.op is Op.REPLACE
           else "the plan deletes it, which")
    also = "; with --target, name them too" if targeted else ""
    return PlanError(
        f"{why} destroys what this stack keeps in it: {names}",
        resource=holder.urn, file=declared.decl_file if declared else None,
        line=declared.decl_line if declared else None,
        hint=(f"remove those from the program too (the plan then deletes them first, as protection and "
              f"policies allow), or keep {urn_name(holder.urn)}{also}"))


def _protected(urn: str, action: str, declared: Resource | None, keys: Iterable[str],
               imported: bool = False, kind: str = "up") -> PlanError:
    """``declared`` is the program's resource (where it is declared), None for a delete.
    ``kind``: a ``destroy`` has no change to undo, and no flag of its own lifts
    protection (only the program's option does)."""
    because = f" (because {', '.join(keys)} changed)" if keys else ""
    hint = (f"set protect=False and run `up` first if you really mean to {action} it, or undo the change")
    if kind == "destroy":
        hint = ("`destroy` never deletes a protected resource: remove protect=True from the program and run "
                "`stackwright up` first (it records only the option), then destroy; or destroy the others "
                "with `stackwright destroy --target NAME`")
    if imported:
        # `import` protects what it adopts until the program declares it.
        hint = (f"it was imported and the program does not declare it yet: add the code `import` printed; "
                f"`stackwright state rm --force {urn}` forgets it instead")
        if kind == "destroy":
            hint = (f"it was imported, and stays protected until the program declares it: declare it without "
                    f"protect=True and run `stackwright up` first, or forget it (the object stays) with "
                    f"`stackwright state rm --force {urn}`")
    return PlanError(
        f"resource is protected; the plan would {action} it{because}",
        resource=urn, file=declared.decl_file if declared else None,
        line=declared.decl_line if declared else None,
        hint=hint,
    )


def _combined(errors: list[StackwrightError]) -> StackwrightError:
    if len(errors) == 1:
        return errors[0]
    first = errors[0]
    rest = "; ".join(e.headline() for e in errors[1:])
    return PlanError(f"{first.headline()}; and {len(errors) - 1} more: {rest}", hint=first.hint)


@dataclass(frozen=True)
class _Targets:
    """What ``--target`` selects: the named resources, and the ones they need."""

    urns: set[str]
    needed: set[str]

    def only(self, steps: list[Step]) -> list[Step]:
        """Targeted steps plus the creates/updates they need; everything else is left out.
        Only these resources are planned at all, so a one-tenant preview costs one tenant."""
        return [s for s in steps if s.urn in self.urns or (s.urn in self.needed and s.op is not Op.DELETE)]


def _targeted(targets: set[str], desired: DesiredGraph, snapshot: Snapshot) -> _Targets:
    urns = resolve_targets(targets, [*desired.resources, *snapshot.resources], component_urns(desired, snapshot))
    graph: Graph[str] = Graph({urn: list(deps) for urn, deps in desired.deps.items()})
    return _Targets(urns, graph.closure(urns))


def component_urns(desired: DesiredGraph | None, snapshot: Snapshot) -> list[str]:
    """The components a target may name: those the program declares, and the parents
    recorded in state (so a component the program dropped can still be targeted)."""
    declared = list(desired.components) if desired is not None else []
    recorded = [row.parent for row in snapshot.resources.values() if row.parent]
    return list(dict.fromkeys(declared + recorded))


def resolve_targets(targets: Iterable[str], urns: Iterable[str], components: Iterable[str] = ()) -> set[str]:
    """The URNs ``targets`` name. A target is a URN or any tail of one that starts at a
    separator: the resource's name (``assets``), ``parent$name`` or ``type::name``
    (``s3:Bucket::assets``). A tail matching several resources is an error listing them.

    A target naming a component (its URN, a tail of it, or ``kind:name`` such as
    ``tenant:acme`` for a ``...:Tenant`` named ``acme``) names every resource under it."""
    known = list(dict.fromkeys(urns))
    groups = list(dict.fromkeys(components))
    found: set[str] = set()
    unknown: list[str] = []
    for target in targets:
        matches = named_by(target, known, groups)
        if matches:
            found.update(matches)
        else:
            unknown.append(target)
    if unknown:
        raise PlanError(
            f"--target names no resource of this stack: {', '.join(sorted(unknown))}",
            hint="`stackwright state ls` or `stackwright preview` lists the URNs",
        )
    return found


def named_by(target: str, urns: list[str], components: Sequence[str] = (), *,
             option: str = "--target ") -> list[str]:
    """The URNs one ``target`` names (see ``resolve_targets``); none when it names
    nothing. A tail that matches several resources is an error listing them, naming
    ``option`` (the command-line option or argument that gave it)."""
    matches = _matching(target, urns)
    _refuse_ambiguous(target, matches, option)
    if not matches:
        owners = _matching(target, list(components)) or _short_form(target, list(components))
        _refuse_ambiguous(target, owners, option)
        matches = _descendants(owners[0], urns) if owners else []
    return matches


def _matching(target: str, urns: list[str]) -> list[str]:
    return [target] if target in urns else [u for u in urns if u.endswith((":" + target, "$" + target))]


def _short_form(target: str, components: list[str]) -> list[str]:
    """``tenant:acme``: components whose type token ends in ``Tenant`` and whose name is ``acme``."""
    kind, _, name = target.partition(":")
    if not name or "::" in target:
        return []
    return [u for u in components if urn_parts(u)[2].rsplit(":", 1)[-1].lower() == kind.lower()
            and urn_parts(u)[3].rsplit("$", 1)[-1] == name]


def _descendants(component: str, urns: list[str]) -> list[str]:
    prefix = urn_parts(component)[3] + "$"
    return [u for u in urns if urn_parts(u)[3].startswith(prefix)]


def _refuse_ambiguous(target: str, matches: list[str], option: str = "--target ") -> None:
    if len(matches) > 1:
        raise PlanError(f"{option}{target!r} names {len(matches)} resources: {', '.join(matches)}",
                        hint="give more of the URN (type::name, parent$name) or the whole URN")
