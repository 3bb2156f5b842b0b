"""The Plan: a value saying exactly what apply will do.

A plan is computed from the desired graph and a state snapshot; apply executes its
steps and nothing else. Human-oriented fields (``decl``, diffs) explain; they never
change what apply does. It is frozen and hashable, and pins what it was computed from:
the state serial, the program and config digests, the provider versions. Its
sequences are tuples and its mappings ``FrozenDict``s (the constructors, ``make_step``
and so ``from_json`` make them so), so no step, input or output can be changed in
place either.

``Plan.to_json``/``Plan.from_json`` are its one serialization, complete and reversible
(secrets as ``{"$secret": ...}`` markers, for the holder of the plan to protect).
``Plan.view()`` is a separate, masked view for people and tools (docs/plan-json.md),
built from ``Step.to_json`` and ``Leftover.to_json``, the steps' part of that view.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import field, fields
from enum import Enum
from typing import Any

from stackwright.dataclass_methods import FrozenCompared, frozen_record, slotted_frozen_record
from stackwright.model.values import MASK, UNKNOWN, FrozenDict, Secret, from_json, frozen, masked, to_json
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
_EMPTY = FrozenDict()
_SAME = Op.SAME
"""Read per step as a module constant: an attribute of an Enum class is read through
``EnumType.__getattr__``'s hook, about four times slower than a plain class attribute."""


@slotted_frozen_record
class Step(FrozenCompared):
    """What will happen to one resource.

    ``inputs`` are the new inputs resolved as far as known at plan time (``UNKNOWN``
    where a dependency's output is computed during apply). ``deps`` are the URNs this
    step waits for; for deletes, the URNs that must be deleted first.

    Every `up` loads it: its methods are written, not generated (see
    stackwright.dataclass_methods, and ``make_step`` for ``__init__``); it behaves as
    ``@dataclass(frozen=True, slots=True)``.
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

    def __init__(self, urn: str, type: str, op: Op, inputs: Mapping[str, Any] | None = None,
                 old_inputs: Mapping[str, Any] | None = None, old_outputs: Mapping[str, Any] | None = None,
                 old_id: str | None = None, diffs: tuple[PropertyDiff, ...] = (),
                 replace_keys: tuple[str, ...] = (), deps: tuple[str, ...] = (), parent: str | None = None,
                 protect: bool = False, retain_on_delete: bool = False, delete_before_replace: bool = False,
                 previous_urn: str | None = None, decl: str | None = None, old_deps: tuple[str, ...] = (),
                 meta_changed: bool = False, option_diffs: tuple[PropertyDiff, ...] = (),
                 options: Mapping[str, Any] | None = None, warnings: tuple[str, ...] = (),
                 notes: tuple[str, ...] = ()) -> None:
        """Fills the slots while ``self`` is briefly a ``_StepDraft`` (see ``make_step``)."""
        draft: Any = self
        _set_attr(draft, "__class__", _StepDraft)
        draft.urn = urn
        draft.type = type
        draft.op = op
        draft.inputs = inputs if inputs is None or inputs.__class__ is FrozenDict else FrozenDict(inputs)
        draft.old_inputs = old_inputs if old_inputs is None or old_inputs.__class__ is FrozenDict else FrozenDict(old_inputs)
        draft.old_outputs = old_outputs if old_outputs is None or old_outputs.__class__ is FrozenDict else FrozenDict(old_outputs)
        draft.old_id = old_id
        draft.diffs = diffs
        draft.replace_keys = replace_keys
        draft.deps = deps
        draft.parent = parent
        draft.protect = protect
        draft.retain_on_delete = retain_on_delete
        draft.delete_before_replace = delete_before_replace
        draft.previous_urn = previous_urn
        draft.decl = decl
        draft.old_deps = old_deps
        draft.meta_changed = meta_changed
        draft.option_diffs = option_diffs
        draft.options = options if options.__class__ is FrozenDict else FrozenDict(options) if options else _EMPTY
        draft.warnings = warnings
        draft.notes = notes
        draft.__class__ = Step

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise TypeError("Step is final: it is filled through a twin class with its exact slots (make_step)")

    @property
    def changes(self) -> bool:
        # ``is not SAME`` first: hashing an Enum member (``in CHANGING``) runs Python code,
        # and a no-op preview asks this of every step.
        return (self.op is not _SAME and self.op in CHANGING) or self.previous_urn is not None or self.meta_changed

    @property
    def retained(self) -> bool:
        """A delete that keeps the object (``retain_on_delete``, or a data lookup the
        program dropped): apply forgets it and calls no provider."""
        return self.op is Op.DELETE and self.retain_on_delete

    @property
    def state_only(self) -> bool:
        """Only options changed: apply rewrites the record and calls no provider."""
        return self.op is _SAME and self.meta_changed

    def to_json(self, shown: Callable[[Any], Any] | None = None) -> dict[str, Any]:
        """The step in the masked view; ``shown`` (default: masked, then ``to_json``)
        gives the inputs' part of it (``Plan.digest`` leaves them to its encoder)."""
        shown = shown or _shown
        out: dict[str, Any] = {"urn": self.urn, "type": self.type, "op": self.op.value}
        if self.parent:
            out["parent"] = self.parent
        if self.previous_urn:
            out["previous_urn"] = self.previous_urn
        if self.inputs is not None:
            out["inputs"] = shown(self.inputs)
        if self.old_inputs is not None and self.op is not Op.SAME:
            out["old_inputs"] = shown(self.old_inputs)
        if self.diffs:
            out["diffs"] = [diff_json(d) for d in self.diffs]
        if self.option_diffs:
            out["options"] = [diff_json(d) for d in self.option_diffs]
        if self.replace_keys:
            out["replace_keys"] = list(self.replace_keys)
        out["deps"] = list(self.deps)
        if self.op is Op.REPLACE:
            out["delete_before_replace"] = self.delete_before_replace
        if self.retained:
            out["retain"] = True
        if self.notes:
            out["notes"] = list(self.notes)
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


def _shown(value: Any) -> Any:
    """A value as the masked view shows it."""
    return to_json(masked(value))


def _unchanged(value: Any) -> Any:
    return value


def _shown_json(value: Any) -> Any:
    """``json`` ``default`` hook that encodes a value as ``_shown`` would give it
    (same bytes): the encoder calls it only for what it cannot write itself, so the
    digest's body is not walked twice in Python per step before being encoded."""
    if value is UNKNOWN:
        return _UNKNOWN_JSON
    if isinstance(value, Secret):
        return MASK
    if isinstance(value, Mapping):
        return dict(value)
    return str(value)


_UNKNOWN_JSON: Any = {"$unknown": True}
"""``to_json(UNKNOWN)``, made once: the encoder only reads it."""


def diff_json(d: PropertyDiff) -> dict[str, Any]:
    """One property diff in the masked view (docs/plan-json.md); drift uses it too."""
    out: dict[str, Any] = {"path": d.path, "kind": d.kind}
    if d.kind != "add":
        out["old"] = to_json(masked(d.old))
    if d.kind != "delete":
        out["new"] = to_json(masked(d.new))
    if d.replaces:
        out["replaces"] = True
    return out


_StepDraft = type("_StepDraft", Step.__bases__, {"__slots__": Step.__slots__, "__setattr__": object.__setattr__,
                                                 "__delattr__": object.__delattr__})
"""``Step`` but for its frozen ``__setattr__``: with either of ``__setattr__`` and
``__delattr__`` inherited from a Python class, every store would look it up first."""
_new_object = object.__new__
_set_attr = object.__setattr__


def make_step(urn: str, type: str, op: Op, inputs: Mapping[str, Any] | None = None,
              old_inputs: Mapping[str, Any] | None = None, old_outputs: Mapping[str, Any] | None = None,
              old_id: str | None = None, diffs: tuple[PropertyDiff, ...] = (),
              replace_keys: tuple[str, ...] = (), deps: tuple[str, ...] = (), parent: str | None = None,
              protect: bool = False, retain_on_delete: bool = False, delete_before_replace: bool = False,
              previous_urn: str | None = None, decl: str | None = None, old_deps: tuple[str, ...] = (),
              meta_changed: bool = False, option_diffs: tuple[PropertyDiff, ...] = (),
              options: Mapping[str, Any] | None = None, warnings: tuple[str, ...] = (),
              notes: tuple[str, ...] = ()) -> Step:
    """``Step(...)``, faster: what the planner calls per resource.

    It fills the slots while the new object is of ``_StepDraft``, a twin of ``Step`` with
    the same base and slots but no frozen ``__setattr__``, where each store is a plain
    slot write (``object.__setattr__`` per field cost about a third of planning an
    unchanged resource), and skips ``type.__call__``, which packs keyword arguments into
    a dict first. ``Step.__init__`` does the same to ``self``."""
    step: Any = _new_object(_StepDraft)
    step.urn = urn
    step.type = type
    step.op = op
    step.inputs = inputs if inputs is None or inputs.__class__ is FrozenDict else FrozenDict(inputs)
    step.old_inputs = old_inputs if old_inputs is None or old_inputs.__class__ is FrozenDict else FrozenDict(old_inputs)
    step.old_outputs = old_outputs if old_outputs is None or old_outputs.__class__ is FrozenDict else FrozenDict(old_outputs)
    step.old_id = old_id
    step.diffs = diffs
    step.replace_keys = replace_keys
    step.deps = deps
    step.parent = parent
    step.protect = protect
    step.retain_on_delete = retain_on_delete
    step.delete_before_replace = delete_before_replace
    step.previous_urn = previous_urn
    step.decl = decl
    step.old_deps = old_deps
    step.meta_changed = meta_changed
    step.option_diffs = option_diffs
    step.options = options if options.__class__ is FrozenDict else FrozenDict(options) if options else _EMPTY
    step.warnings = warnings
    step.notes = notes
    step.__class__ = Step
    return step  # type: ignore[no-any-return]


# Every `up` loads the classes below: their methods are written, not generated (see
# stackwright.dataclass_methods); they behave as ``@dataclass(frozen=True)``.


@frozen_record
class Leftover(FrozenCompared):
    """The old object of a replacement that an earlier run created the new one for but
    did not get to delete (it was interrupted, or the delete failed). Only its pending
    record names it; apply deletes it once whatever used it has moved to the new one."""

    urn: str
    type: str
    id: str
    token: str
    """The pending record's token, cleared when the object is gone."""
    inputs: Mapping[str, Any] = field(default_factory=dict)

    def __init__(self, urn: str, type: str, id: str, token: str, inputs: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "urn", urn)
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "token", token)
        object.__setattr__(self, "inputs", _EMPTY if inputs is None else frozen(inputs))

    def to_json(self) -> dict[str, Any]:
        return {"urn": self.urn, "type": self.type, "id": self.id}


LEFTOVER_VERB = "delete-replaced"
STATE_ONLY_VERB = "update options"
"""What a step that only rewrites a record's options is called in progress and history."""
RETAINED_VERB = "delete (retained)"
"""What a delete that keeps the object (``Step.retained``) is called in progress and history."""
RETAINED_TEXT = "retained: left in the cloud"
"""What the text views say of such a delete."""


@frozen_record
class Plan(FrozenCompared):
    """The steps of one change to a stack and what they were planned from."""

    stack: str
    project: str
    lineage: str
    base_serial: int
    steps: tuple[Step, ...]
    outputs: Mapping[str, Any] = field(default_factory=dict)
    old_outputs: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "up"
    leftovers: tuple[Leftover, ...] = ()
    program_digest: str = ""
    """sha256 of the program's files when it was planned (``program.digest``)."""
    config_digest: str = ""
    """sha256 of the stack's config file when it was planned."""
    providers: Mapping[str, str] = field(default_factory=dict)
    """The provider versions it was planned with."""
    refreshed: bool = False
    """Planned against the live objects, read when it was made (``--refresh``, or what
    the last plain ``refresh`` found drifted), rather than the recorded state at
    ``base_serial``: its old values are what was read. Applying it reads them again,
    and the plan made from what is read then must be this one."""

    def __init__(self, stack: str, project: str, lineage: str, base_serial: int, steps: tuple[Step, ...],
                 outputs: Mapping[str, Any] | None = None, old_outputs: Mapping[str, Any] | None = None,
                 kind: str = "up", leftovers: tuple[Leftover, ...] = (), program_digest: str = "",
                 config_digest: str = "", providers: Mapping[str, str] | None = None,
                 refreshed: bool = False) -> None:
        object.__setattr__(self, "stack", stack)
        object.__setattr__(self, "project", project)
        object.__setattr__(self, "lineage", lineage)
        object.__setattr__(self, "base_serial", base_serial)
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "outputs", _EMPTY if outputs is None else frozen(outputs))
        object.__setattr__(self, "old_outputs", _EMPTY if old_outputs is None else frozen(old_outputs))
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "leftovers", leftovers)
        object.__setattr__(self, "program_digest", program_digest)
        object.__setattr__(self, "config_digest", config_digest)
        object.__setattr__(self, "providers", _EMPTY if providers is None else frozen(providers))
        object.__setattr__(self, "refreshed", refreshed)

    def __hash__(self) -> int:
        return hash(self.digest())

    def counts(self) -> dict[str, int]:
        """Steps by what they do, as the preview and history name it: by op, but a step
        that only changes options (``state_only``) is ``update options``, not ``same``;
        old halves of replacements are ``delete-replaced``."""
        counted = Counter(STATE_ONLY_VERB if s.meta_changed and s.op is _SAME
                          else s.op._value_ for s in self.steps)  # ``.value`` is a property: slow per step
        out = {op.value: counted.get(op.value, 0) for op in Op if counted.get(op.value)}
        if counted.get(STATE_ONLY_VERB):
            out[STATE_ONLY_VERB] = counted[STATE_ONLY_VERB]
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

    def view(self, shown: Callable[[Any], Any] | None = None) -> dict[str, Any]:
        """The documented ``--format json`` schema, secrets masked (docs/plan-json.md).
        ``shown``: see ``Step.to_json``."""
        out = {
            "schema": PLAN_SCHEMA,
            "stack": self.stack,
            "project": self.project,
            "lineage": self.lineage,
            "base_serial": self.base_serial,
            "kind": self.kind,
            "summary": self.counts(),
            "steps": [s.to_json(shown) for s in self.steps],
            "leftovers": [leftover.to_json() for leftover in self.leftovers],
            "outputs": to_json(masked(dict(self.outputs))),
        }
        if self.refreshed:
            out["refreshed"] = True
        return out

    def digest(self) -> str:
        """A content hash of what the plan does; secrets count only as markers, so the
        hash, which is logged, tells nothing about them."""
        body = json.dumps(self.view(_unchanged), sort_keys=True, separators=(",", ":"), default=_shown_json)
        return hashlib.sha256(body.encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        """Everything the plan holds, as JSON; ``from_json`` gives back an equal Plan."""
        out: dict[str, Any] = {"format": PLAN_FORMAT}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "steps":
                out["steps"] = [_record_json(step) for step in value]
            elif f.name == "leftovers":
                out["leftovers"] = [_record_json(leftover) for leftover in value]
            else:
                out[f.name] = _ENCODE.get(str(f.type), _same)(value)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        """The Plan ``to_json`` wrote. Raises KeyError, TypeError or ValueError on
        anything else."""
        if data.get("format") != PLAN_FORMAT:
            raise ValueError(f"not a plan of format {PLAN_FORMAT}")
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in _OPTIONAL and f.name not in data:
                continue  # written before the field existed: its default
            raw = data[f.name]
            if f.name == "steps":
                values["steps"] = tuple(_record_from(Step, item) for item in raw)
            elif f.name == "leftovers":
                values["leftovers"] = tuple(_record_from(Leftover, item) for item in raw)
            else:
                values[f.name] = _DECODE.get(str(f.type), _same)(raw)
        return cls(**values)


PLAN_FORMAT = 1
"""The version of ``Plan.to_json``'s form."""
_OPTIONAL = frozenset({"refreshed"})
"""Fields ``from_json`` may find missing (a plan written before they were added)."""


def _same(value: Any) -> Any:
    return value


def _diff_to_json(d: PropertyDiff) -> dict[str, Any]:
    return {"path": d.path, "kind": d.kind, "old": to_json(d.old), "new": to_json(d.new),
            "replaces": d.replaces}


def _diff_from_json(raw: Mapping[str, Any]) -> PropertyDiff:
    return PropertyDiff(str(raw["path"]), str(raw["kind"]), from_json(raw["old"]),
                        from_json(raw["new"]), bool(raw["replaces"]))


_ENCODE: dict[str, Any] = {
    "Op": lambda op: op.value,
    "tuple[PropertyDiff, ...]": lambda diffs: [_diff_to_json(d) for d in diffs],
    "tuple[str, ...]": list,
    "Mapping[str, Any]": to_json,
    "Mapping[str, Any] | None": to_json,
    "Mapping[str, str]": dict,
}
"""How a field is written, by its declared type: every field of Step, Leftover and
Plan is covered, so a field added later is serialized without being listed here."""

_DECODE: dict[str, Any] = {
    "Op": Op,
    "tuple[PropertyDiff, ...]": lambda raw: tuple(_diff_from_json(d) for d in raw),
    "tuple[str, ...]": tuple,
    "Mapping[str, Any]": from_json,
    "Mapping[str, Any] | None": lambda raw: None if raw is None else from_json(raw),
    "Mapping[str, str]": dict,
}


def _record_json(record: Step | Leftover) -> dict[str, Any]:
    return {f.name: _ENCODE.get(str(f.type), _same)(getattr(record, f.name)) for f in fields(record)}


def _record_from(cls: type[Any], raw: Mapping[str, Any]) -> Any:
    return cls(**{f.name: _DECODE.get(str(f.type), _same)(raw[f.name]) for f in fields(cls)})
