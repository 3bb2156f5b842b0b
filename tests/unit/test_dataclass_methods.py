"""Classes that write their methods (stackwright.dataclass_methods) behave as the
``@dataclass`` they replace: the same equality, hashing, repr, frozenness, pickling,
copying, and ``fields``/``replace``/``asdict``."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import dataclass, field
from typing import Any

import pytest

from stackwright.dataclass_methods import Compared, FrozenCompared, frozen_record, slotted_frozen_record
from stackwright.model.values import FrozenDict


@dataclass
class Generated:
    name: str
    items: list[int] = field(default_factory=list)
    hidden: int = field(default=0, repr=False)


@dataclass(init=False, repr=False, eq=False)
class Written(Compared):
    name: str
    items: list[int] = field(default_factory=list)
    hidden: int = field(default=0, repr=False)

    def __init__(self, name: str, items: list[int] | None = None, hidden: int = 0) -> None:
        self.name = name
        self.items = [] if items is None else items
        self.hidden = hidden


@dataclass(frozen=True, slots=True)
class FrozenGenerated:
    value: Any
    note: str = ""


@frozen_record
class FrozenWritten(FrozenCompared):
    __slots__ = ("value", "note")
    value: Any
    note: str

    def __init__(self, value: Any, note: str = "") -> None:
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "note", note)


@slotted_frozen_record
class SlottedWritten(FrozenCompared):
    value: Any
    note: str = ""

    def __init__(self, value: Any, note: str = "") -> None:
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "note", note)


def _shown(text: str) -> str:
    """A repr without the class's name, to compare the two spellings."""
    return text.split("(", 1)[1]


def test_equality_and_repr_are_the_generated_ones() -> None:
    nan = float("nan")
    assert _shown(repr(Written("a", [1]))) == _shown(repr(Generated("a", [1])))
    assert Written("a", [1]) == Written("a", [1]) and Written("a") != Written("b")
    assert FrozenWritten(nan) == FrozenWritten(nan) and FrozenGenerated(nan) == FrozenGenerated(nan)  # identity first
    assert Written("a") != Generated("a") and Written("a").__eq__("a") is NotImplemented
    with pytest.raises(TypeError, match="unhashable"):
        hash(Written("a"))


def test_a_recursive_value_shows_as_dots() -> None:
    loop = Written("a")
    loop.items.append(loop)  # type: ignore[arg-type]
    assert repr(loop) == "Written(name='a', items=[...])"


@pytest.mark.parametrize("cls", [FrozenWritten, SlottedWritten])
def test_frozen_ones_refuse_changes_and_hash_by_value(cls: Any) -> None:
    value = cls(("x", 1), "n")
    assert hash(value) == hash(cls(("x", 1), "n")) == hash(FrozenGenerated(("x", 1), "n"))
    assert _shown(repr(value)) == _shown(repr(FrozenGenerated(("x", 1), "n")))
    for change in (lambda: setattr(value, "note", "m"), lambda: delattr(value, "note"),
                   lambda: setattr(value, "other", 1)):
        with pytest.raises(dataclasses.FrozenInstanceError):
            change()
    assert not hasattr(value, "__dict__")


def test_a_frozen_record_must_inherit_its_frozenness() -> None:
    class Loose:
        value: int

    for decorator in (frozen_record, slotted_frozen_record):
        with pytest.raises(TypeError, match="FrozenCompared"):
            decorator(Loose)


def test_a_slotted_one_keeps_its_defaults_in_its_fields() -> None:
    assert [(f.name, f.default) for f in dataclasses.fields(SlottedWritten)] == [
        ("value", dataclasses.MISSING), ("note", "")]
    assert SlottedWritten.__slots__ == ("value", "note") and SlottedWritten(1).note == ""


@pytest.mark.parametrize("value", [Written("a", [1], hidden=3), FrozenWritten({"k": [1]}, "n"),
                                   SlottedWritten({"k": [1]}, "n")])
def test_they_copy_pickle_and_replace_as_dataclasses(value: Any) -> None:
    assert pickle.loads(pickle.dumps(value)) == value
    assert copy.copy(value) == value and copy.deepcopy(value) == value
    assert dataclasses.replace(value) == value and dataclasses.is_dataclass(value)
    first = dataclasses.fields(value)[0].name
    assert dataclasses.replace(value, **{first: "other"}) != value
    assert list(dataclasses.asdict(value)) == [f.name for f in dataclasses.fields(value)]


def test_fields_keep_their_defaults_for_schemas() -> None:
    """The project schema builds its pydantic model from ``fields()``: defaults included."""
    written = {f.name: (f.default, f.default_factory) for f in dataclasses.fields(Written)}
    generated = {f.name: (f.default, f.default_factory) for f in dataclasses.fields(Generated)}
    assert written == generated


WRITTEN = ("stackwright.state.records", "stackwright.providers.protocol", "stackwright.workflow.gateway",
           "stackwright.model.context", "stackwright.model.policy", "stackwright.model.desired",
           "stackwright.workflow.environments", "stackwright.workflow.policies", "stackwright.workflow.gate",
           "stackwright.program.project", "stackwright.operations.session", "stackwright.operations.update",
           "stackwright.operations.drift_note", "stackwright.operations.keyring",
           "stackwright.model.resource", "stackwright.providers.synthetic", "stackwright.engine.retry",
           "stackwright.plan.diff", "stackwright.plan.links", "stackwright.plan.plan",
           "stackwright.program.project_files", "stackwright.program.workspace",
           "stackwright.workflow.multistack", "stackwright.workflow.shards", "stackwright.state.open_operation",
           "stackwright.workflow.workspace")
"""The modules whose classes write their methods."""


def _written_classes() -> list[type]:
    import gc
    import importlib

    for name in WRITTEN:
        importlib.import_module(name)
    gc.collect()  # ``slotted_frozen_record`` replaces the class it is given: the first one goes
    found, todo = [], [Compared]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("stackwright.") and dataclasses.is_dataclass(cls):
            found.append(cls)
    return found


def test_every_written_init_takes_every_field() -> None:
    """A field declared on such a class must be a parameter of its ``__init__``, in
    order, with the declared default (``None`` standing for a default factory): a field
    added to the declaration alone would be missing from every instance."""
    import inspect

    classes = _written_classes()
    assert {c.__module__ for c in classes} == set(WRITTEN)
    for cls in classes:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]  # type: ignore[misc]
        declared = [f for f in dataclasses.fields(cls) if f.init]
        assert [p.name for p in params] == [f.name for f in declared], cls
        for param, item in zip(params, declared):
            if item.default is not dataclasses.MISSING:
                assert param.default == item.default, (cls, item.name)
            elif item.default_factory is not dataclasses.MISSING:
                assert param.default is None, (cls, item.name)


def test_every_written_init_stores_each_argument_in_its_own_field() -> None:
    """Each argument lands in its own field, and a field with a default factory gets a
    fresh value of it per instance when left out (or given None)."""
    for cls in _written_classes():
        declared = [f for f in dataclasses.fields(cls) if f.init]
        given = [_given(f) for f in declared]
        made = cls(*given)
        assert [getattr(made, f.name) for f in declared] == given, cls
        required = [_Marker(f.name) for f in declared
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        first, second = cls(*required), cls(*required)
        for item in declared:
            if item.default_factory is not dataclasses.MISSING:
                fresh = item.default_factory()
                same = fresh if fresh == item.default_factory() else type(fresh)  # a Random is equal to itself only
                assert (getattr(first, item.name) if same is fresh else type(getattr(first, item.name))) == same, \
                    (cls, item.name)
                made_first = getattr(first, item.name)
                if isinstance(made_first, (list, dict, set)) and not isinstance(made_first, FrozenDict):
                    assert made_first is not getattr(second, item.name), (cls, item.name)
            elif item.default is not dataclasses.MISSING:
                assert getattr(first, item.name) == item.default, (cls, item.name)


def _given(item: dataclasses.Field[Any]) -> Any:
    """A distinct value for the field: a distinct dict for a mapping (a plan's classes
    keep theirs as a ``FrozenDict``, equal to the dict given)."""
    return {item.name: _Marker(item.name)} if "Mapping" in str(item.type) else _Marker(item.name)


class _Marker:
    """A distinct value per field, equal only to itself."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"
