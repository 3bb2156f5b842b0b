"""``Step`` is built through its slots (``plan.make_step`` and its written ``__init__``),
not a generated ``__init__``: it must still take the same arguments, fill the same
defaults and stay a frozen value."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from stackwright.model.values import FrozenDict
from stackwright.plan.plan import Op, Step


def test_a_step_takes_every_field_by_name_or_position_with_the_declared_defaults() -> None:
    names = [f.name for f in dataclasses.fields(Step)]
    assert list(inspect.signature(Step.__init__).parameters)[1:] == names
    step = Step("urn", "t:T", Op.UPDATE, {"a": 1}, deps=("other",))
    assert (step.urn, step.type, step.op, step.inputs, step.deps) == ("urn", "t:T", Op.UPDATE, {"a": 1}, ("other",))
    assert step.diffs == () and step.previous_urn is None and step.options == {} and not step.meta_changed
    with pytest.raises(TypeError, match="cannot be changed"):
        Step("u", "t", Op.SAME).options["protect"] = True  # type: ignore[index]
    with pytest.raises(TypeError, match="op"):
        Step("u", "t")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword"):
        Step("u", "t", Op.SAME, colour="red")  # type: ignore[call-arg]


def test_a_step_stays_a_frozen_value() -> None:
    step = Step("u", "t", Op.SAME, deps=("a",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.op = Op.DELETE  # type: ignore[misc]
    assert dataclasses.replace(step, op=Op.DELETE) == Step("u", "t", Op.DELETE, deps=("a",))
    assert step == Step("u", "t", Op.SAME, deps=("a",)) and step != dataclasses.replace(step, decl="x:1")


def test_make_step_builds_the_step_the_constructor_builds_and_a_step_cannot_be_subclassed() -> None:
    from stackwright.plan.plan import make_step

    init = list(inspect.signature(Step.__init__).parameters.values())[1:]
    assert list(inspect.signature(make_step).parameters.values()) == init
    made = make_step(urn="u", type="t", op=Op.SAME, inputs={"a": 1}, deps=("d",), decl="f.py:3")
    assert type(made) is Step and made == Step("u", "t", Op.SAME, {"a": 1}, deps=("d",), decl="f.py:3")
    assert made.options == {} and type(made.inputs) is type(made.options) is FrozenDict
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.urn = "other"  # type: ignore[misc]
    with pytest.raises(TypeError, match="op"):
        make_step(urn="u", type="t")
    with pytest.raises(TypeError, match="final"):
        type("Special", (Step,), {})
