"""The Plan: a value saying exactly what apply will do.

A plan is computed from the desired graph and a state snapshot; apply executes its
steps and nothing else. Human-oriented fields (``decl``, diffs) explain; they never
change what apply does.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from stackwright.model.values import masked, to_json
from stackwright.plan.diff import PropertyDiff

PLAN_SCHEMA = 1


class Op(str, Enum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    SAME = "same"
    READ = "read"

    def __str__(self) -> str:
        return self.value


CHANGING = frozenset({Op.CREATE, Op.UPDATE, Op.REPLACE, Op.DELETE, Op.READ})


@dataclass(frozen=True)
class Step:
    """What will happen to one resource.

    ``inputs`` are the new inputs resolved as far as known at plan time (``UNKNOWN``
    where a dependency's output is computed during apply). ``deps`` are the URNs this
    step waits for; for deletes, the URNs that must be deleted first.
    """

    urn: str
    type: str
    op: Op
    inputs: Mapping[str, Any] | None = None
    old_inputs: Mapping[str, Any] | None = None
    old_outputs: Mapping[str, Any] | None = None
    old_id: str | None = None
    diffs: tuple[PropertyDiff, ...] = ()
    replace_keys: tuple[str, ...] = ()
    deps: tuple[str, ...] = ()
    parent: str | None = None
    protect: bool = False
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    previous_urn: str | None = None
    decl: str | None = None
    old_deps: tuple[str, ...] = ()
    meta_changed: bool = False
    """Options or dependencies changed: state is rewritten, even when no provider call is."""
    option_diffs: tuple[PropertyDiff, ...] = ()
    """Which resource options changed (``protect``, ``depends_on``...), old to new."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """The options recorded besides ``protect`` and ``retain_on_delete`` (see
    ``ResourceState.options``)."""
    warnings: tuple[str, ...] = ()
    """What a reviewer must not miss (a stateful resource replaced as a side effect)."""
    notes: tuple[str, ...] = ()
    """What a provider explained about the change (e.g. a CloudFormation change set);
    for reviewers only, never read by apply."""

    @property
    def changes(self) -> bool:
        return self.op in CHANGING or self.previous_urn is not None or self.meta_changed

    @property
    def state_only(self) -> bool:
        """Only options changed: apply rewrites the record and calls no provider."""
        return self.op is Op.SAME and self.meta_changed

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"urn": self.urn, "type": self.type, "op": self.op.value}
        if self.parent:
            out["parent"] = self.parent
        if self.previous_urn:
            out["previous_urn"] = self.previous_urn
        if self.inputs is not None:
            out["inputs"] = to_json(masked(self.inputs))
        if self.old_inputs is not None and self.op is not Op.SAME:
            out["old_inputs"] = to_json(masked(self.old_inputs))
        if self.diffs:
            out["diffs"] = [_diff_json(d) for d in self.diffs]
        if self.option_diffs:
            out["options"] = [_diff_json(d) for d in self.option_diffs]
        if self.replace_keys:
            out["replace_keys"] = list(self.replace_keys)
        out["deps"] = list(self.deps)
        if self.op is Op.REPLACE:
            out["delete_before_replace"] = self.delete_before_replace
        if self.notes:
            out["notes"] = list(self.notes)
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


def _diff_json(d: PropertyDiff) -> dict[str, Any]:
    out: dict[str, Any] = {"path": d.path, "kind": d.kind}
    if d.kind != "add":
        out["old"] = to_json(masked(d.old))
    if d.kind != "delete":
        out["new"] = to_json(masked(d.new))
    if d.replaces:
        out["replaces"] = True
    return out


@dataclass(frozen=True)
class Leftover:
    """The old object of a replacement that an earlier run created the new one for but
    did not get to delete (it was interrupted, or the delete failed). Only its pending
    record names it; apply deletes it once whatever used it has moved to the new one."""

    urn: str
    type: str
    id: str
    token: str
    """The pending record's token, cleared when the object is gone."""
    inputs: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"urn": self.urn, "type": self.type, "id": self.id}


LEFTOVER_VERB = "delete-replaced"
STATE_ONLY_VERB = "update options"
"""What a step that only rewrites a record's options is called in progress and history."""


@dataclass(frozen=True)
class Plan:
    stack: str
    project: str
    lineage: str
    base_serial: int
    steps: tuple[Step, ...]
    outputs: Mapping[str, Any] = field(default_factory=dict)
    old_outputs: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "up"
    leftovers: tuple[Leftover, ...] = ()

    def counts(self) -> dict[str, int]:
        counted = Counter(s.op.value for s in self.steps)
        out = {op.value: counted.get(op.value, 0) for op in Op if counted.get(op.value)}
        if self.leftovers:
            out[LEFTOVER_VERB] = len(self.leftovers)
        return out

    def changing_steps(self) -> list[Step]:
        return [s for s in self.steps if s.changes]

    @property
    def has_changes(self) -> bool:
        return any(s.changes for s in self.steps) or bool(self.leftovers) or self.outputs_change()

    def outputs_change(self) -> bool:
        return dict(self.outputs) != dict(self.old_outputs)

    def to_json(self) -> dict[str, Any]:
        """The documented ``--json`` schema (see docs/plan-json.md)."""
        return {
            "schema": PLAN_SCHEMA,
            "stack": self.stack,
            "project": self.project,
            "lineage": self.lineage,
            "base_serial": self.base_serial,
            "kind": self.kind,
            "summary": self.counts(),
            "steps": [s.to_json() for s in self.steps],
            "leftovers": [leftover.to_json() for leftover in self.leftovers],
            "outputs": to_json(masked(dict(self.outputs))),
        }

    def digest(self) -> str:
        """A content hash of what the plan does (secrets included only as markers)."""
        body = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(body.encode()).hexdigest()
