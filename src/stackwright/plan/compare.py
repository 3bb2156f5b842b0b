"""Comparing two plans of one stack: what applying one would do that the other does not say.

A saved plan and a plan confirmed at a prompt are both applied only if planning again
under the stack's lock gives the very same steps; this is where "the same" is defined.

A value the earlier plan left unknown ("known after apply") matches whatever value
planning gives now: within one stack's pinned state that is still unknown, so only a
value read from another stack (a ``StackReference`` to a stack applied since) can come
out known. Everything the earlier plan knew must come out the same, and so must the
steps: the only leeway (``settle``, for saved plans) is a step the earlier plan
updates, replaces or reads whose every difference from the recorded state lay in
such values, and which now comes out as recorded: it is left unchanged, and says so.
A value now known can never add a step, a replacement or a delete.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from stackwright.model.desired import DesiredGraph
from stackwright.model.resource import urn_name
from stackwright.model.stack_reference import stacks_read
from stackwright.model.values import to_json
from stackwright.plan.diff import diff_values
from stackwright.plan.plan import Op, Plan, Step

Reads = Callable[[str, str], Sequence[str]]
"""What a resource's input (by URN and the input's name) reads from other stacks, as
``network/dev output vpc_id``: named when a plan is refused over such a value."""


def reads_nothing(urn: str, key: str) -> Sequence[str]:
    return ()


def reads_of(desired: DesiredGraph) -> Reads:
    """``Reads`` from the graph a program run declared."""
    def reads(urn: str, key: str) -> Sequence[str]:
        resource = desired.resources.get(urn)
        if resource is None or not desired.stack_reads:
            return ()
        value = resource.read_id if key == "id" and resource.read_id is not None else resource.inputs.get(key)
        return stacks_read(value, desired.stack_reads)

    return reads


@dataclass(frozen=True)
class Comparison:
    """How ``now`` differs from ``saved`` (``compare``)."""

    problems: list[str] = field(default_factory=list)
    """What applying would do that ``saved`` does not say, in words."""
    settled: dict[str, Step] = field(default_factory=dict)
    """By URN: ``now``'s step, noted, for each step ``saved`` changes only for values it
    left unknown that came out as recorded (with ``settle`` only)."""


def compare(saved: Plan, now: Plan, reads: Reads = reads_nothing, *, settle: bool = False) -> Comparison:
    """Every way ``now`` differs from ``saved`` in what apply would do, in words
    (property paths, never values: they may be secret); ``settle``: see the module."""
    result = Comparison()
    mine = {s.urn: s for s in saved.steps}
    theirs = {s.urn: s for s in now.steps}
    out = result.problems
    out += [f"it would now also {VERB[s.op]} {_name(s)}" for s in now.steps if s.urn not in mine]
    out += [f"{_name(s)} is no longer part of the program's plan" for s in saved.steps if s.urn not in theirs]
    for urn in mine.keys() & theirs.keys():
        problems, settled = _step_differences(mine[urn], theirs[urn], reads, settle)
        out += problems
        if settled is not None:
            result.settled[urn] = settled
    out += [f"stack output {p or 'outputs'} would now differ"
            for p in _paths(dict(saved.outputs), dict(now.outputs))[0]]
    planned = {(o.urn, o.id, o.token) for o in saved.leftovers}
    left = {(o.urn, o.id, o.token) for o in now.leftovers}
    out += [f"it would now also delete the replaced object {i} of {urn_name(u)}" for u, i, _ in sorted(left - planned)]
    out += [f"the replaced object {i} of {urn_name(u)} is no longer left to delete"
            for u, i, _ in sorted(planned - left)]
    return result


def differences(saved: Plan, now: Plan) -> list[str]:
    """``compare``'s problems, leaving no leeway to steps."""
    return compare(saved, now).problems


VERB = {Op.CREATE: "create", Op.UPDATE: "update", Op.REPLACE: "replace", Op.DELETE: "delete",
        Op.SAME: "leave unchanged", Op.READ: "read"}
_COMPARED = ("type", "deps", "parent", "previous_urn", "replace_keys", "delete_before_replace",
             "protect", "retain_on_delete", "meta_changed")
_REPLACING = ("replace_keys", "delete_before_replace")
"""Compared fields that only a replacement sets."""
_SETTLES = frozenset({Op.UPDATE, Op.REPLACE, Op.READ})
"""What a saved step may do that turns out unneeded once its unknown values are known."""


def _step_differences(saved: Step, now: Step, reads: Reads, settle: bool) -> tuple[list[str], Step | None]:
    """The problems, or (``settle``) the step that stands for ``saved``'s, left unchanged."""
    paths, awaited = _paths(saved.inputs, now.inputs)
    if saved.op is not now.op:
        if settle and awaited and not paths and now.op is Op.SAME and saved.op in _SETTLES \
                and not _field_differences(saved, now, skip=_REPLACING):
            return [], replace(now, notes=(*now.notes, _settled_note(saved, awaited, reads)))
        because = f": {_came_known(awaited, now.urn, reads)}" if awaited else ""
        return [f"it would now {VERB[now.op]} {_name(now)} (the plan says {VERB[saved.op]}){because}"], None
    narrower = bool(awaited) and not paths and set(now.replace_keys) <= set(saved.replace_keys)
    out = _field_differences(saved, now, skip=("replace_keys",) if narrower else ())
    if paths:
        out.insert(0, f"{_name(now)}: inputs differ at {', '.join(paths)}{_read_from(paths, now.urn, reads)}")
    return out, None


def _field_differences(saved: Step, now: Step, skip: tuple[str, ...] = ()) -> list[str]:
    return [f"{_name(now)}: {name} differs" for name in _COMPARED
            if name not in skip and to_json(getattr(saved, name)) != to_json(getattr(now, name))]


def _settled_note(saved: Step, awaited: list[str], reads: Reads) -> str:
    return (f"left unchanged, although the plan says {VERB[saved.op]}: {_came_known(awaited, saved.urn, reads)} "
            "and came out as recorded")


def _came_known(awaited: list[str], urn: str, reads: Reads) -> str:
    """Which values the plan left unknown are known now, and where they were read."""
    verb = "is" if len(awaited) == 1 else "are"
    return f"{', '.join(awaited)}, left unknown by the plan, {verb} known now{_read_from(awaited, urn, reads)}"


def _read_from(paths: list[str], urn: str, reads: Reads) -> str:
    read = _stacks(paths, urn, reads)
    return f" (read from {', '.join(read)})" if read else ""


def _stacks(paths: list[str], urn: str, reads: Reads) -> list[str]:
    tops = dict.fromkeys(_top(p) for p in paths)
    return sorted({f"stack {name}" for top in tops for name in reads(urn, top)})


def _top(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]


_UNKNOWN_JSON = {"$unknown": True}


def _paths(saved: Any, now: Any) -> tuple[list[str], list[str]]:
    """Where two value trees differ, in their canonical JSON forms (tuples are lists),
    a value ``saved`` left unknown matching any; and where ``saved`` left a value
    unknown that ``now`` knows."""
    a, b = to_json(saved), to_json(now)
    if a == b:
        return [], []
    awaited: list[str] = []
    filled = _filled(a, b, "", awaited)
    differ = [] if filled == b else [_shown(d.path) for d in diff_values(filled, b)]
    return differ, [_shown(p) for p in awaited]


def _filled(saved: Any, now: Any, path: str, awaited: list[str]) -> Any:
    """``saved`` with each value it left unknown replaced by ``now``'s at that place,
    whose path ``awaited`` gets (paths as ``diff_values`` writes them)."""
    if saved == _UNKNOWN_JSON:
        if now != _UNKNOWN_JSON:
            awaited.append(path)
        return now
    if isinstance(saved, dict) and isinstance(now, dict):
        return {k: _filled(v, now[k], f"{path}.{k}" if path else str(k), awaited) if k in now else v
                for k, v in saved.items()}
    if isinstance(saved, list) and isinstance(now, list) and len(saved) == len(now):
        return [_filled(v, w, f"{path}[{i}]", awaited) for i, (v, w) in enumerate(zip(saved, now))]
    return saved


def _shown(path: str) -> str:
    return path.replace(".$secret", "") or "(all)"


def _name(step: Step) -> str:
    return f"{step.type} {urn_name(step.urn)}"
