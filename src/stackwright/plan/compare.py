"""Comparing two plans of one stack: what applying one would do that the other does not say.

A saved plan and a plan confirmed at a prompt are both applied only if planning again
under the stack's lock gives the very same steps; this is where "the same" is defined.
"""

from __future__ import annotations

from typing import Any

from stackwright.model.resource import urn_name
from stackwright.model.values import to_json
from stackwright.plan.diff import diff_values
from stackwright.plan.plan import Op, Plan, Step


def differences(saved: Plan, now: Plan) -> list[str]:
    """Every way ``now`` differs from ``saved`` in what apply would do, in words
    (property paths, never values: they may be secret)."""
    mine = {s.urn: s for s in saved.steps}
    theirs = {s.urn: s for s in now.steps}
    out = [f"it would now also {VERB[s.op]} {_name(s)}" for s in now.steps if s.urn not in mine]
    out += [f"{_name(s)} is no longer part of the program's plan" for s in saved.steps if s.urn not in theirs]
    for urn in mine.keys() & theirs.keys():
        out.extend(_step_differences(mine[urn], theirs[urn]))
    out += [f"stack output {p or 'outputs'} would now differ"
            for p in _paths(dict(saved.outputs), dict(now.outputs))]
    planned = {(o.urn, o.id, o.token) for o in saved.leftovers}
    left = {(o.urn, o.id, o.token) for o in now.leftovers}
    out += [f"it would now also delete the replaced object {i} of {urn_name(u)}" for u, i, _ in sorted(left - planned)]
    out += [f"the replaced object {i} of {urn_name(u)} is no longer left to delete"
            for u, i, _ in sorted(planned - left)]
    return out


VERB = {Op.CREATE: "create", Op.UPDATE: "update", Op.REPLACE: "replace", Op.DELETE: "delete",
        Op.SAME: "leave unchanged", Op.READ: "read"}
_COMPARED = ("type", "deps", "parent", "previous_urn", "replace_keys", "delete_before_replace",
             "protect", "retain_on_delete", "meta_changed")


def _step_differences(saved: Step, now: Step) -> list[str]:
    if saved.op is not now.op:
        return [f"it would now {VERB[now.op]} {_name(now)} (the plan says {VERB[saved.op]})"]
    out = [f"{_name(now)}: {name} differs" for name in _COMPARED
           if to_json(getattr(saved, name)) != to_json(getattr(now, name))]
    paths = _paths(saved.inputs, now.inputs)
    if paths:
        out.insert(0, f"{_name(now)}: inputs differ at {', '.join(paths)}")
    return out


def _paths(saved: Any, now: Any) -> list[str]:
    """Where two value trees differ, in their canonical JSON forms (tuples are lists)."""
    a, b = to_json(saved), to_json(now)
    if a == b:
        return []
    return [d.path.replace(".$secret", "") or "(all)" for d in diff_values(a, b)]


def _name(step: Step) -> str:
    return f"{step.type} {urn_name(step.urn)}"
